/**
 * What a client connection needs from its socket, as callbacks: bytes in
 * (`onData`), writes out as plain calls, a failure once. Internal to `Client`.
 *
 * The connection completes its callers from `onData` itself, so a reply
 * reaches its caller with no fiber hand-off. A platform dialer may attach a
 * lean `Open` to the `Socket` it dials (`dialLean`: `NodeClient` does, over
 * the Node socket's own events); any other `Socket` (a custom `Dialer`, the
 * test kit's) is adapted by `fromSocket`: one fiber pulls, writes run as
 * effects.
 *
 * @since 0.1.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"

/** The connection's side: called by the transport, never after `destroy`. @internal */
export interface Handler {
  /** Bytes read, in order. */
  onData(chunk: Uint8Array): void
  /** A `write` that returned false has completed: writing may go on. */
  onDrain(): void
  /** The socket failed or the peer closed it; called at most once. */
  onError(error: Socket.SocketError, during: "read" | "write"): void
}

/** The socket's side. @internal */
export interface Transport {
  /** Hands bytes to the socket; false: write again only after `onDrain`. */
  write(bytes: Uint8Array): boolean
  /** Closes the socket now; no callback after it. Idempotent. */
  destroy(): void
}

/** Opens (connects) a transport in the current scope; closing the scope destroys it. @internal */
export type Open = (handler: Handler) => Effect.Effect<Transport, Socket.SocketError, Scope.Scope>

const OpenKey: unique symbol = Symbol.for("quasizero/ClientTransport/Open") as never

/** `socket` with a lean `open` the client uses instead of its reader and writer. @internal */
export const withOpen = (socket: Socket.Socket, open: Open): Socket.Socket =>
  Object.assign(Object.create(socket) as Socket.Socket, { [OpenKey]: open })

/**
 * A dialed socket carrying a lean `open` the client uses instead of its
 * reader and writer. Those are the platform socket's (`platform`), built
 * only when first used (by a `Dialer` or test that reads the socket itself):
 * the client's dials never pay for it. One small object per dial.
 */
class LeanSocket implements Socket.Socket {
  readonly [Socket.TypeId]: typeof Socket.TypeId = Socket.TypeId
  readonly [OpenKey]: Open
  private readonly make: Effect.Effect<Socket.Socket>
  private built: Socket.Socket | undefined

  constructor(make: Effect.Effect<Socket.Socket>, open: Open) {
    this.make = make
    this[OpenKey] = open
  }

  // One platform socket for the reader and the writer alike.
  private get platform(): Effect.Effect<Socket.Socket> {
    const built = this.built
    if (built !== undefined) return Effect.succeed(built)
    return Effect.map(this.make, (socket) => this.built ??= socket)
  }

  get reader(): Socket.Socket["reader"] {
    return Effect.flatMap(this.platform, (socket) => socket.reader)
  }

  get writer(): Socket.Socket["writer"] {
    return Effect.flatMap(this.platform, (socket) => socket.writer)
  }
}

/**
 * A dial of sockets with a lean `open`, whose own reader and writer are
 * those of the socket `platform` makes (made only when they are used). @internal
 */
export const dialLean = (platform: Effect.Effect<Socket.Socket>, open: Open): Effect.Effect<Socket.Socket> =>
  Effect.sync(() => new LeanSocket(platform, open))

/** The transport for a dialed socket: its lean `Open` when it has one, else `fromSocket`. @internal */
export const open = (socket: Socket.Socket): Open => (socket as { [OpenKey]?: Open })[OpenKey] ?? fromSocket(socket)

const closeEvent = new Socket.CloseEvent(1000)

/**
 * Adapts any `Socket`: acquires its reader (a Node socket connects then) and
 * writer, forks one fiber into the scope that pulls and feeds `onData`, and
 * runs each write as an effect (synchronously when it completes at once).
 *
 * @internal
 */
export const fromSocket = (socket: Socket.Socket): Open => (handler) =>
  Effect.gen(function*() {
    const pull = yield* Socket.readerBytes(socket)
    const writer = yield* socket.writer
    const scope = yield* Effect.scope
    const services = yield* Effect.context<never>()
    const run = Effect.runForkWith(services)
    let destroyed = false
    const loop: Effect.Effect<void> = Effect.matchEffect(pull, {
      onFailure: (error) =>
        Effect.sync(() => {
          if (!destroyed) handler.onError(error, "read")
        }),
      onSuccess: (chunks) =>
        Effect.suspend(() => {
          for (let i = 0; i < chunks.length; i++) {
            if (destroyed) return Effect.void
            handler.onData(chunks[i]!)
          }
          return loop
        })
    })
    yield* Effect.forkScoped(loop)
    // Set while a write runs inside `write`: its completion is then its return value.
    let writing = false
    let failed = false
    const written = {
      onFailure: (error: Socket.SocketError) =>
        Effect.sync(() => {
          if (writing) failed = true
          if (!destroyed) handler.onError(error, "write")
        }),
      onSuccess: () =>
        Effect.sync(() => {
          if (!writing && !destroyed) handler.onDrain()
        })
    }
    const transport: Transport = {
      write: (bytes) => {
        writing = true
        failed = false
        const fiber = run(Effect.matchEffect(writer.write(bytes), written))
        writing = false
        if (fiber.pollUnsafe() !== undefined) return !failed
        Fiber.runIn(fiber, scope)
        return false
      },
      destroy: () => {
        if (destroyed) return
        destroyed = true
        run(Effect.ignore(writer.write(closeEvent)))
      }
    }
    return transport
  })
