/**
 * The client's transport: a `Dialer` service that opens a socket. Re-exported
 * by `Client`; `NodeClient` provides TCP, Unix and TLS dialers.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Socket from "effect/socket/Socket"
import type { ClientError } from "./ClientError.ts"

/**
 * The transport: how to open one connection. `dial` runs in the
 * connection's scope and yields a `Socket`; the client then acquires the
 * socket's `reader` (a Node socket connects at that moment) and `writer`.
 * `address` names the server in errors. Go's `NewClientDialer` is a custom
 * `Dialer`.
 *
 * **Details**
 *
 * `NodeClient.layerDialer({ host, port })` / `{ path }` dial TCP / Unix sockets and
 * `NodeClient.layerDialerTls` dials TLS. For anything else (a proxy, a tunnel, a
 * test transport) provide a `Dialer` whose `dial` builds the socket: e.g. open
 * a `Duplex` through an HTTP `CONNECT` proxy and wrap it with
 * `NodeSocket.fromDuplex`, or use `NodeSocket.makeTls({ socket, ... })` over
 * an already-connected stream. `connectTimeout` covers `dial` and the
 * connect.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { NodeSocket } from "@effect/platform-node"
 * import { Layer } from "effect"
 *
 * // TLS by hand (NodeClient.layerDialerTls does the same):
 * const TlsDialer = Layer.succeed(Client.Dialer)({
 *   address: "db.internal:7475",
 *   dial: NodeSocket.makeTls({ host: "db.internal", port: 7475, servername: "db.internal" })
 * })
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class Dialer extends Context.Service<Dialer, {
  readonly address: string
  readonly dial: Effect.Effect<Socket.Socket, Socket.SocketError, Scope.Scope>
}>()("quasizero/Client/Dialer") {}

/**
 * A `Dialer` per address, for a multi-endpoint client
 * (`Client.make({ endpoints })`): `dialer(address)` builds the dialer of one
 * endpoint (`NodeClient.layerDialers` parses `host:port` / `unix:/path` and
 * dials TCP / Unix sockets).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { NodeClient } from "quasizero/node"
 * import { Effect, Layer } from "effect"
 * const Dialers = Layer.succeed(Client.Dialers)({
 *   dialer: (address) => NodeClient.make(NodeClient.parseAddress(address) ?? {}).pipe(Effect.orDie)
 * })
 * ```
 *
 * @since 0.2.0
 * @category services
 */
export class Dialers extends Context.Service<Dialers, {
  readonly dialer: (address: string) => Effect.Effect<Dialer["Service"], ClientError>
}>()("quasizero/Client/Dialers") {}
