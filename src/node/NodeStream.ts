/**
 * A lean `effect/socket` `Socket` over an accepted Node `net.Socket`, for
 * the server's hot path. `@effect/platform-node`'s adapter (`fromDuplex`)
 * is general (TLS upgrades, any Duplex, late open); a server connection is
 * already open and needs only: pull every chunk that arrived, write, wait for
 * drain, close. Chunks arrive by 'data' and queue until pulled; past a
 * high-water mark of queued bytes the socket is paused (backpressure), and a
 * pull resumes it. It also has the server's `DirectRead` capability: a chunk
 * arriving while the loop is parked with nothing queued goes straight to the
 * loop's synchronous handler.
 *
 * @since 0.1.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Socket from "effect/socket/Socket"
import type * as Net from "node:net"
import { type DirectRead, DirectReadTypeId } from "../ServerConnection.ts"
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
  // The server's direct path (see `ServerConnection.DirectRead`): a chunk that
  // arrives while the loop is parked with nothing queued is answered right
  // here, in the data handler, with no fiber hop; the pull resumes only when
  // the loop has work the handler could not finish.
  const control: DirectRead[typeof DirectReadTypeId] = { direct: undefined }
  const onData = (chunk: Uint8Array) => {
    const direct = control.direct
    if (direct !== undefined && waiter !== undefined && chunks.length === 0) {
      const batch = direct(chunk)
      if (batch === undefined) return
      const resume = waiter
      waiter = undefined
      return resume(Exit.succeed(batch))
    }
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
        control.direct = undefined
        error ??= closed(1006)
        deliver()
        lingeringClose(conn)
      })
  )

  const awaitDrain = Effect.callback<void, Socket.SocketError>((resume) => {
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
  const write = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> => {
    if (Socket.isCloseEvent(chunk)) {
      conn.destroy()
      return Exit.void
    }
    // A write on a socket the peer already closed would wait for a 'drain' that never comes.
    if (conn.destroyed || conn.writableEnded) return peerGone()
    const ok = conn.write(chunk)
    NodeSpin.afterWrite(spinMicros)
    return ok ? Exit.void : awaitDrain
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
        return ok ? Exit.void : awaitDrain
      }
    }),
    () => Effect.sync(() => conn.writableEnded || conn.end())
  )
  const socket: Socket.Socket & DirectRead = Object.assign(Socket.make({ reader, writer }), {
    [DirectReadTypeId]: control
  })
  return socket
}
