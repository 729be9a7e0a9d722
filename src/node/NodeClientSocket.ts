/**
 * A lean client transport over a Node `net.Socket` (or `tls.TLSSocket`), for
 * the client's hot path: the socket's own 'data', 'drain', 'error', 'end'
 * and 'close' events drive the connection, whose callers complete from the
 * 'data' handler. `@effect/platform-node`'s adapter (`fromDuplex`) is general
 * (paused streams pulled by a fiber, TLS upgrades, any Duplex); a client
 * connection needs only: connect, read every chunk, write, wait for drain,
 * destroy.
 *
 * The dialed `Socket` is still a full `effect/socket` `Socket` (its reader
 * and writer the platform's, built and connecting only if its reader is
 * acquired); the client finds the lean path on it
 * (`ClientTransport.dialLean`), so a `Dialer` that wraps `NodeClient`'s
 * keeps it.
 *
 * @since 0.1.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import type * as Net from "node:net"
import type * as ClientTransport from "../ClientTransport.ts"
import * as NodeSpin from "./NodeSpin.ts"

// The socket's listeners are shared by every connection (one function each,
// not five closures per socket): each finds its transport on the socket.
const transportKey = Symbol.for("quasizero/NodeClientSocket/transport")
type Owned = Net.Socket & { [transportKey]: NodeTransport }

function onData(this: Owned, chunk: Uint8Array): void {
  this[transportKey].data(chunk)
}
function onDrain(this: Owned): void {
  this[transportKey].drain()
}
function onError(this: Owned, cause: Error & { readonly syscall?: string }): void {
  const during = cause.syscall === "write" ? "write" : "read"
  this[transportKey].fail(
    new Socket.SocketError({
      reason: during === "write" ? new Socket.SocketWriteError({ cause }) : new Socket.SocketReadError({ cause })
    }),
    during
  )
}
function onEnd(this: Owned): void {
  this[transportKey].fail(new Socket.SocketError({ reason: new Socket.SocketCloseError({ code: 1000 }) }), "read")
}
function onClose(this: Owned, hadError: boolean): void {
  this[transportKey].fail(
    new Socket.SocketError({ reason: new Socket.SocketCloseError({ code: hadError ? 1006 : 1000 }) }),
    "read"
  )
}

/** The transport of one connected socket. */
class NodeTransport implements ClientTransport.Transport {
  private readonly conn: Net.Socket
  private readonly handler: ClientTransport.Handler
  private readonly spinMicros: number
  private done = false

  constructor(conn: Net.Socket, handler: ClientTransport.Handler, spinMicros: number) {
    this.conn = conn
    this.handler = handler
    this.spinMicros = spinMicros
    ;(conn as Owned)[transportKey] = this
    conn.on("data", onData)
    conn.on("drain", onDrain)
    conn.on("error", onError)
    conn.on("end", onEnd)
    conn.on("close", onClose)
  }

  // Only requests are written, so a reply is outstanding: poll for it (see `NodeSpin`).
  write(bytes: Uint8Array): boolean {
    const ok = this.conn.write(bytes)
    NodeSpin.afterWrite(this.spinMicros)
    return ok
  }

  destroy(): void {
    if (this.done) return
    this.done = true
    this.conn.destroy()
  }

  // A view, not the `Buffer`: the reply payloads the decoder cuts out of it
  // are then plain `Uint8Array` views, much cheaper than `Buffer#subarray`.
  data(chunk: Uint8Array): void {
    if (!this.done) this.handler.onData(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
  }

  drain(): void {
    if (!this.done) this.handler.onDrain()
  }

  fail(error: Socket.SocketError, during: "read" | "write"): void {
    if (this.done) return
    this.done = true
    this.handler.onError(error, during)
    this.conn.destroy()
  }
}

/**
 * The lean `Open` for sockets made by `connect`, connected once `event`
 * (`"connect"`, or `"secureConnect"` for TLS) fires. The socket is destroyed
 * by the scope's finalizer, added before the socket exists. `spinMicros`
 * (0: off) keeps the event loop polling that long after each write.
 *
 * @internal
 */
export const open = (
  connect: () => Net.Socket,
  event: "connect" | "secureConnect",
  spinMicros = 0
): ClientTransport.Open =>
(handler) =>
  Effect.flatMap(Effect.scope, (scope) => {
    let conn: Net.Socket | undefined
    return Effect.andThen(
      Scope.addFinalizer(scope, Effect.sync(() => conn?.destroy())),
      Effect.callback<ClientTransport.Transport, Socket.SocketError>((resume) => {
        const socket = connect() as Connecting
        conn = socket
        socket[connectingKey] = { event, handler, spinMicros, resume }
        // `on`, not `once` (its wrapper is one more allocation per dial): each removes both.
        socket.on("error", onConnectFailed)
        socket.on(event, onConnected)
      })
    )
  })

// A dial in progress, on its socket: the two connect listeners are shared
// functions (a dial burst then allocates no closures for them).
const connectingKey = Symbol.for("quasizero/NodeClientSocket/connecting")
type Connecting = Net.Socket & {
  [connectingKey]?: {
    readonly event: "connect" | "secureConnect"
    readonly handler: ClientTransport.Handler
    readonly spinMicros: number
    readonly resume: (effect: Effect.Effect<ClientTransport.Transport, Socket.SocketError>) => void
  } | undefined
}

function onConnectFailed(this: Connecting, cause: Error): void {
  const dial = this[connectingKey]
  if (dial === undefined) return
  this[connectingKey] = undefined
  this.off("error", onConnectFailed)
  this.off(dial.event, onConnected)
  dial.resume(Effect.fail(new Socket.SocketError({ reason: new Socket.SocketOpenError({ kind: "Unknown", cause }) })))
}
function onConnected(this: Connecting): void {
  const dial = this[connectingKey]
  if (dial === undefined) return
  this[connectingKey] = undefined
  this.off("error", onConnectFailed)
  this.off(dial.event, onConnected)
  dial.resume(Effect.succeed(new NodeTransport(this, dial.handler, dial.spinMicros)))
}
