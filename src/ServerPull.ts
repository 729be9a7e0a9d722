/**
 * The generic path of a server connection, for a `SocketServer` without the
 * `DirectAccept` capability (an in-memory one in tests, any other
 * transport): a fiber per connection pulls each batch from an `effect/socket`
 * `Socket` and runs `ServerBatch.step` and `ServerDrive.drive` on it, as the
 * direct path does from a data handler. The connection's scope owns the
 * socket. Internal to `Server`.
 *
 * @since 0.1.0
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Socket from "effect/socket/Socket"
import * as Batch from "./ServerBatch.ts"
import { Connection, type Shared } from "./ServerConnection.ts"
import * as Drive from "./ServerDrive.ts"
import * as Errors from "./ServerError.ts"
import { isExitFast } from "./ServerHandler.ts"

/** @internal */
export const make = (
  shared: Shared,
  setup: { readonly apply: (options: { readonly tcpKeepAlive: number }) => Effect.Effect<void> }
) => {
  // The generic path: a fiber per connection pulls the batches.
  const loop = Effect.fnUntraced(function*(conn: Connection, socket: Socket.Socket) {
    const pull = yield* Socket.readerBytes(socket)
    const writer = yield* socket.writer
    conn.io = {
      write: writer.write,
      destroy: () => {
        const closed = writer.write(new Socket.CloseEvent(1000))
        if (!isExitFast(closed)) shared.runFork(Effect.ignore(closed))
      }
    }
    // Interrupted (shutdownTimeout) while replies wait: they are written; the
    // writer's release then ends the socket after them.
    yield* Effect.addFinalizer(() => Effect.sync(() => Batch.flushLeftovers(conn)))
    // A batch that had to wait for its data starts a new fairness budget (a
    // microtask queued before the pull runs only if the pull suspends).
    let pullWaited = false
    const markWaited = () => {
      pullWaited = true
    }
    while (true) {
      conn.phase = Batch.Reading
      pullWaited = false
      queueMicrotask(markWaited)
      const batch = yield* pull
      if (pullWaited) conn.work = 0
      Batch.begin(conn, batch)
      if ((yield* Drive.drive(conn, Batch.step(conn))) === Batch.Finish) {
        return yield* shared.metrics.report(Batch.finishReason(conn))
      }
      if (shared.isDraining()) return
    }
  })

  const serveConnection = Effect.fnUntraced(function*(socket: Socket.Socket) {
    const conn = new Connection(shared, shared.clock.currentTimeMillisUnsafe())
    const admitted = shared.admit(conn)
    if (admitted !== "admitted") {
      // The reader must be opened for the socket to be closed when the scope ends.
      yield* socket.reader
      if (admitted === "full") {
        yield* shared.metrics.report(new Errors.ConnectionLimit({ limit: shared.options.maxConnections }))
      }
      return
    }
    conn.fiber = yield* Effect.withFiber((fiber) => Effect.succeed(fiber))
    shared.metrics.opened(shared.open())
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        Batch.release(conn)
        shared.onClosed(conn)
        shared.metrics.closed(shared.open())
      })
    )
    if (shared.options.tcpKeepAlive > 0) yield* setup.apply({ tcpKeepAlive: shared.options.tcpKeepAlive })
    const outcome = yield* Effect.result(loop(conn, socket))
    // Timed out: the sweeper closed it and reported (the socket may fail first).
    if (outcome._tag === "Success" || conn.timedOut !== undefined) return
    const error = outcome.failure
    // EOF (close code 1000) is how a connection normally ends.
    if (error.reason._tag === "SocketCloseError" && error.reason.code === 1000) return
    yield* shared.metrics.report(new Errors.SocketFailure({ error }))
  })

  // The handlers' services are provided once per connection, not per request.
  return (socket: Socket.Socket) =>
    Effect.updateContext(
      Effect.scoped(serveConnection(socket)),
      (context: Context.Context<never>) => Context.merge(context, shared.frames.handlers.context)
    )
}
