/**
 * Node listeners for `Server`: TCP (IPv4/IPv6, port 0 for an ephemeral port),
 * Unix sockets and TLS, on `@effect/platform-node`'s sockets. Each layer
 * provides the `SocketServer` the server runs on, the control that stops
 * accepting when a graceful shutdown starts, and the hook that applies
 * `tcpKeepAlive` to accepted sockets. Nagle is off (`noDelay`) by default:
 * request/response traffic must not wait for ACKs.
 *
 * @since 0.1.0
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SocketServer from "effect/socket/SocketServer"
import * as Net from "node:net"
import * as Tls from "node:tls"
import * as Server from "../Server.ts"
import * as NodeListener from "./NodeListener.ts"

/**
 * Listener options: `port` + `host` for TCP, or `path` for a Unix socket.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly path?: string | undefined
  readonly backlog?: number | undefined
  /** Disable Nagle's algorithm on accepted sockets. Default: true. */
  readonly noDelay?: boolean | undefined
  /** Let several processes listen on one port (Linux, Node >= 22.12). Default: false. */
  readonly reusePort?: boolean | undefined
}

const setup = Layer.succeed(Server.ConnectionSetup)({
  apply: ({ tcpKeepAlive }) =>
    Effect.map(Effect.serviceOption(NodeSocket.NetSocket), (socket) => {
      if (socket._tag === "Some") socket.value.setKeepAlive(true, tcpKeepAlive)
    })
})

const listenOptions = (options: Options): Net.ServerOpts & Net.ListenOptions => {
  // allowHalfOpen: a client may send its requests, then shut down its write
  // side and wait for the replies (as Go's server allows). Node would
  // otherwise end our side at once on the client's FIN, losing every reply
  // not written yet; the connection loop closes the socket after the replies.
  const out: Net.ServerOpts & Net.ListenOptions = { noDelay: options.noDelay ?? true, allowHalfOpen: true }
  if (options.path !== undefined) out.path = options.path
  else {
    out.port = options.port ?? 0
    if (options.host !== undefined) out.host = options.host
  }
  if (options.backlog !== undefined) out.backlog = options.backlog
  if (options.reusePort === true) out.reusePort = true
  return out
}

/**
 * A TCP or Unix-socket listener for `Server.layer`. The bound address (the
 * real port when `port` is 0) is `Server.address`.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Handlers, Server } from "quasizero"
 * import { NodeServer } from "quasizero/node"
 * const ServerLive = Server.layer().pipe(
 *   Layer.provide(Handlers.layer({ 1: () => Effect.succeed("PONG") })),
 *   Layer.provide(NodeServer.layer({ host: "127.0.0.1", port: 7701 }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError> => {
  const listen = listenOptions(options)
  return listener({ listen, connectionEvent: "connection", createServer: () => Net.createServer(listen) })
}

/**
 * A TLS listener: `Options` plus Node's `tls.TlsOptions` (`key`, `cert`, ...).
 *
 * @example
 * ```ts
 * import { NodeServer } from "quasizero/node"
 * declare const key: string, cert: string
 * const TlsLive = NodeServer.layerTls({ port: 7702, key, cert })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTls = (
  options: Options & Tls.TlsOptions
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError> => {
  const listen = listenOptions(options)
  return listener({
    listen,
    connectionEvent: "secureConnection",
    createServer: () => {
      const server = Tls.createServer({ ...options, ...listen })
      // A failed handshake concerns that client only.
      server.on("tlsClientError", (_error, socket) => socket.destroy())
      return server
    }
  })
}

// The listener, its stop-accepting control and the per-connection setup, as one layer.
const listener = (
  options: Parameters<typeof NodeListener.make>[0]
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError> =>
  Layer.merge(
    Layer.effectContext(
      Effect.map(NodeListener.make(options), ({ socketServer, stopAccepting }) =>
        Context.make(SocketServer.SocketServer, socketServer).pipe(
          Context.add(Server.ListenerControl, { stopAccepting })
        ))
    ),
    setup
  )
