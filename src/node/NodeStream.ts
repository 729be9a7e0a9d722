/**
 * A lean `effect/socket` `Socket` over an accepted Node `net.Socket`, for
 * the server's hot path. `@effect/platform-node`'s adapter (`fromDuplex`)
 * is general (TLS upgrades, any Duplex, late open); a server connection is
 * already open and needs only: pull every chunk that arrived, write, wait for
 * drain, close. Chunks arrive by 'data' and queue until pulled; past a
 * high-water mark of queued bytes the socket is paused (backpressure), and a
 * pull resumes it. `DirectSocket` is the same over plain callbacks, for the
 * server's direct path (`ServerConnection.DirectAccept`): no Effect at all
 * until a write must wait for its drain.
 *
 * @since 0.1.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Socket from "effect/socket/Socket"
import type * as Net from "node:net"
import type * as ServerConnection from "../ServerConnection.ts"
import * as NodeSpin from "./NodeSpin.ts"

type Batch = ReadonlyArray<Uint8Array>
type Resume = (effect: Effect.Effect<Batch, Socket.SocketError>) => void

const highWaterMark = 256 * 1024

/** How long a closed connection keeps discarding input while waiting for the peer's FIN. */
const lingerMillis = 2_000

const discard = () => {}

// Destroying a socket whose kernel buffer still holds unread input makes Linux
// answer with a reset, and a reset can destroy replies the peer has not read
// yet: the error reply before a framing close, the last replies of a graceful
// shutdown. So close the way HTTP servers do: FIN after the pending writes,
// keep reading (and dropping) what still arrives, and destroy once the peer
// has closed its side too, or after a short linger. This is a socket-level
// timer, like SO_LINGER, not a protocol timeout: it only bounds how long a
// peer that never closes keeps a closed connection's handle.
const lingeringClose = (conn: Net.Socket): void => {
  if (conn.destroyed) return
  if (conn.readableEnded) {
    conn.destroySoon()
    return
  }
  conn.on("data", discard)
  conn.once("end", () => conn.destroy())
  const timer = setTimeout(() => conn.destroy(), lingerMillis)
  timer.unref()
  conn.once("close", () => clearTimeout(timer))
  conn.resume()
  if (!conn.writableEnded) conn.end()
}

// Built when it happens: an Error made per connection up front holds its stack (~1 KiB) for the connection's life.
const peerGone = () =>
  Exit.fail(
    new Socket.SocketError({
      reason: new Socket.SocketWriteError({ cause: new Error("the peer closed the connection before the reply") })
    })
  )

const closed = (code: number) => new Socket.SocketError({ reason: new Socket.SocketCloseError({ code }) })

// Allocated only when a write must wait.
const awaitDrain = (conn: Net.Socket) =>
  Effect.callback<void, Socket.SocketError>((resume) => {
    const done = (failure?: Error) => {
      conn.off("drain", onDrain)
      conn.off("close", onGone)
      conn.off("error", onFailed)
      resume(
        failure === undefined
          ? Exit.void
          : Exit.fail(new Socket.SocketError({ reason: new Socket.SocketWriteError({ cause: failure }) }))
      )
    }
    const onDrain = () => done()
    const onGone = () => done(new Error("socket closed"))
    const onFailed = (cause: Error) => done(cause)
    conn.on("drain", onDrain)
    conn.on("close", onGone)
    conn.on("error", onFailed)
    return Effect.sync(() => {
      conn.off("drain", onDrain)
      conn.off("close", onGone)
      conn.off("error", onFailed)
    })
  })

/**
 * Wraps an open socket. Its reader attaches listeners when acquired; closing
 * the reader's scope destroys the socket, closing the writer's ends it
 * gracefully (after pending writes). `spinMicros` (0: off) keeps the event
 * loop polling that long after each reply write (see `NodeSpin`).
 *
 * @since 0.1.0
 */
export const make = (conn: Net.Socket, options?: { readonly spinMicros?: number | undefined }): Socket.Socket => {
  const spinMicros = options?.spinMicros ?? 0
  let chunks: Array<Uint8Array> = []
  let queued = 0
  let error: Socket.SocketError | undefined
  let waiter: Resume | undefined

  // The one place a parked pull is resumed: data first, then the error.
  const deliver = () => {
    const resume = waiter
    if (resume === undefined) return
    if (chunks.length > 0) {
      waiter = undefined
      const batch = chunks
      chunks = []
      queued = 0
      resume(Exit.succeed(batch))
    } else if (error !== undefined) {
      waiter = undefined
      resume(Exit.fail(error))
    }
  }
  const onData = (chunk: Uint8Array) => {
    chunks.push(chunk)
    queued += chunk.length
    if (queued > highWaterMark && waiter === undefined) conn.pause()
    deliver()
  }
  const onEnd = () => {
    error ??= closed(1000)
    deliver()
  }
  const onError = (cause: Error) => {
    error ??= new Socket.SocketError({ reason: new Socket.SocketReadError({ cause }) })
    chunks = []
    deliver()
  }
  const onClose = (hadError: boolean) => {
    error ??= closed(hadError ? 1006 : 1000)
    deliver()
  }
  // Allocated once: a pull parked when its fiber is interrupted must not keep the waiter.
  const forget = Effect.sync(() => {
    waiter = undefined
  })
  const pull = Effect.callback<Batch, Socket.SocketError>((resume) => {
    if (chunks.length > 0 || error !== undefined) {
      waiter = resume
      return deliver()
    }
    waiter = resume
    if (conn.isPaused()) conn.resume()
    return forget
  })

  const reader = Effect.acquireRelease(
    Effect.sync((): Socket.Reader<Uint8Array> => {
      conn.on("data", onData)
      conn.on("end", onEnd)
      conn.on("error", onError)
      conn.on("close", onClose)
      conn.resume()
      return { pull: pull as Socket.Reader<Uint8Array>["pull"], upgrade: Socket.SocketUpgradeError.unsupported }
    }),
    () =>
      Effect.sync(() => {
        conn.off("data", onData)
        conn.off("end", onEnd)
        conn.off("close", onClose)
        error ??= closed(1006)
        deliver()
        lingeringClose(conn)
      })
  )

  const write = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> => {
    if (Socket.isCloseEvent(chunk)) {
      conn.destroy()
      return Exit.void
    }
    // A write on a socket the peer already closed would wait for a 'drain' that never comes.
    if (conn.destroyed || conn.writableEnded) return peerGone()
    const ok = conn.write(chunk)
    NodeSpin.afterWrite(spinMicros)
    return ok ? Exit.void : awaitDrain(conn)
  }
  const writer = Effect.acquireRelease(
    Effect.succeed<Socket.Writer>({
      write,
      writeAll: (all) => {
        if (conn.destroyed || conn.writableEnded) return peerGone()
        conn.cork()
        let ok = true
        for (const chunk of all) ok = conn.write(chunk) && ok
        conn.uncork()
        NodeSpin.afterWrite(spinMicros)
        return ok ? Exit.void : awaitDrain(conn)
      }
    }),
    () => Effect.sync(() => conn.writableEnded || conn.end())
  )
  return Socket.make({ reader, writer })
}

// The direct socket's listeners are shared by every socket: Node calls them
// with `this` bound to the socket, whose sink sits under a symbol. No closure
// per connection.
const sinkKey = Symbol.for("quasizero/NodeStream/sink")
type WithSink = Net.Socket & { [sinkKey]?: ServerConnection.DirectSink | undefined }
function onDirectData(this: WithSink, chunk: Uint8Array) {
  this[sinkKey]?.data(chunk)
}
function onDirectEnd(this: WithSink) {
  this[sinkKey]?.end()
}
function onDirectError(this: WithSink, cause: Error) {
  this[sinkKey]?.failed(new Socket.SocketError({ reason: new Socket.SocketReadError({ cause }) }))
}
function onDirectClose(this: WithSink, hadError: boolean) {
  this[sinkKey]?.failed(closed(hadError ? 1006 : 1000))
}

/**
 * An accepted socket for the server's direct path: events go to the
 * connection's `DirectSink`, writes return an `Exit` unless they must wait
 * for the drain. `close` detaches the sink and closes lingeringly (as the
 * `Socket` reader's release does).
 *
 * @since 0.3.0
 * @internal
 */
export class DirectSocket implements ServerConnection.DirectSocket {
  readonly conn: Net.Socket
  /** 0: off; else the event loop polls that long after each reply write (see `NodeSpin`). */
  readonly spinMicros: number
  constructor(conn: Net.Socket, spinMicros = 0) {
    this.conn = conn
    this.spinMicros = spinMicros
  }
  start(sink: ServerConnection.DirectSink): void {
    const conn = this.conn as WithSink
    conn[sinkKey] = sink
    conn.on("data", onDirectData)
    conn.on("end", onDirectEnd)
    conn.on("error", onDirectError)
    conn.on("close", onDirectClose)
    conn.resume()
  }
  write(bytes: Uint8Array): Effect.Effect<void, Socket.SocketError> {
    const conn = this.conn
    // A write on a socket the peer already closed would wait for a 'drain' that never comes.
    if (conn.destroyed || conn.writableEnded) return peerGone()
    const ok = conn.write(bytes)
    NodeSpin.afterWrite(this.spinMicros)
    return ok ? Exit.void : awaitDrain(conn)
  }
  pause(): void {
    this.conn.pause()
  }
  resume(): void {
    if (this.conn.isPaused()) this.conn.resume()
  }
  destroy(): void {
    this.conn.destroy()
  }
  setKeepAlive(millis: number): void {
    this.conn.setKeepAlive(true, millis)
  }
  close(): void {
    const conn = this.conn as WithSink
    conn[sinkKey] = undefined
    conn.off("data", onDirectData)
    conn.off("end", onDirectEnd)
    conn.off("close", onDirectClose)
    lingeringClose(conn)
  }
}
