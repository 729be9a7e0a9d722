/**
 * Node listeners for `Server`: TCP (IPv4/IPv6, port 0 for an ephemeral port),
 * Unix sockets and TLS, on `@effect/platform-node`'s sockets. Each layer
 * provides the `SocketServer` the server runs on, the control that stops
 * accepting when a graceful shutdown starts, and the hook that applies
 * `tcpKeepAlive` to accepted sockets. Nagle is off (`noDelay`) by default:
 * request/response traffic must not wait for ACKs. `spin` (off by default)
 * keeps the event loop polling briefly after each reply (see `NodeSpin`).
 *
 * @since 0.1.0
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as SocketServer from "effect/socket/SocketServer"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Tls from "node:tls"
import * as Options_ from "../Options.ts"
import * as Server from "../Server.ts"
import * as NodeListener from "./NodeListener.ts"
import * as NodeSpin from "./NodeSpin.ts"

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
  /**
   * Spin before park: after writing replies, keep the event loop polling for
   * this long (at most 1 ms) instead of sleeping in `epoll_wait`, so the next
   * request of a waiting caller finds the process awake. Trades CPU for
   * latency; helps on VMs with one caller waiting on one reply (see the
   * README's "Spin before park"). Default: 0 (off).
   */
  readonly spin?: Options_.DurationInput | undefined
}

// `spin` in microseconds, or the layer's typed error naming it.
const spinMicros = (options: Options): Result.Result<number, Server.ServerError> =>
  Result.mapError(
    NodeSpin.resolveMicros(options.spin),
    (invalid) => new Server.ServerError({ reason: new Server.InvalidOption(invalid) })
  )

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
 * real port when `port` is 0) is `Server.address`. A bad `spin` fails the
 * layer with `ServerError { reason: InvalidOption }`.
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
 * // spin 50 µs after each reply: less latency for one waiting caller, more CPU
 * const Spinning = NodeServer.layer({ host: "127.0.0.1", port: 7701, spin: "50us" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError | Server.ServerError> => {
  const listen = listenOptions(options)
  return listener(options, { listen, connectionEvent: "connection", createServer: () => Net.createServer(listen) })
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
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError | Server.ServerError> => {
  const listen = listenOptions(options)
  const { spin: _, ...tls } = options
  return listener(options, {
    listen,
    connectionEvent: "secureConnection",
    createServer: () => {
      const server = Tls.createServer({ ...tls, ...listen })
      // A failed handshake concerns that client only.
      server.on("tlsClientError", (_error, socket) => socket.destroy())
      return server
    }
  })
}

// The listener, its stop-accepting control and the per-connection setup, as one layer.
const listener = (
  where: Options,
  options: Parameters<typeof NodeListener.make>[0]
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError | Server.ServerError> =>
  Layer.merge(
    Layer.effectContext(
      Effect.fromResult(spinMicros(where)).pipe(
        Effect.flatMap((spin) => NodeListener.make({ ...options, spinMicros: spin })),
        Effect.map(({ socketServer, stopAccepting }) =>
          Context.make(SocketServer.SocketServer, socketServer).pipe(
            Context.add(Server.ListenerControl, { stopAccepting })
          )
        )
      )
    ),
    setup
  )

// -----------------------------------------------------------------------------
// config
// -----------------------------------------------------------------------------

/**
 * Where to listen, as `layerConfig` reads it: `Options` plus the TLS key and
 * certificate as files (PEM). With both files the listener is TLS.
 *
 * @example
 * ```ts
 * import { NodeServer } from "quasizero/node"
 * const tls: NodeServer.ConfigOptions = { port: 7702, tlsKeyFile: "key.pem", tlsCertFile: "cert.pem" }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface ConfigOptions extends Options {
  readonly tlsKeyFile?: string | undefined
  readonly tlsCertFile?: string | undefined
}

const configError = (message: string, cause?: unknown) =>
  new Config.ConfigError(new ConfigProvider.SourceError(cause === undefined ? { message } : { message, cause }))

/**
 * `QUASIZERO_PORT`: a TCP port, `0` for an ephemeral one (what
 * `quasizero serve --port` takes).
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import { NodeServer } from "quasizero/node"
 * const provider = ConfigProvider.fromEnv({ env: { QUASIZERO_PORT: "7701" } })
 * Effect.runSync(NodeServer.portConfig.parse(provider)) // 7701
 * ```
 *
 * @since 0.2.0
 * @category config
 */
export const portConfig: Config.Config<number> = Options_.count("QUASIZERO_PORT").pipe(
  Config.mapEffect((port) =>
    port <= 65535
      ? Effect.succeed(port)
      : Effect.fail(configError(`QUASIZERO_PORT: expected a port in [0, 65535], got ${port}`))
  )
)

/**
 * The listener from the environment, with the defaults of
 * `quasizero serve`: `QUASIZERO_HOST` (default `127.0.0.1`) and
 * `QUASIZERO_PORT` (default 7701; 0 = ephemeral), or `QUASIZERO_PATH` for
 * a Unix socket (not with HOST or PORT); TLS when both
 * `QUASIZERO_TLS_KEY_FILE` and `QUASIZERO_TLS_CERT_FILE` are set (one
 * without the other is an error); `QUASIZERO_SPIN` is `spin` (default off).
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import { NodeServer } from "quasizero/node"
 * const provider = ConfigProvider.fromEnv({ env: { QUASIZERO_HOST: "0.0.0.0", QUASIZERO_PORT: "7701" } })
 * Effect.runSync(NodeServer.config.parse(provider)) // { host: "0.0.0.0", port: 7701 }
 * ```
 *
 * @since 0.2.0
 * @category config
 */
export const config: Config.Config<ConfigOptions> = Config.all({
  host: Options_.optional(Config.String("QUASIZERO_HOST")),
  port: Options_.optional(portConfig),
  path: Options_.optional(Config.String("QUASIZERO_PATH")),
  tlsKeyFile: Options_.optional(Config.String("QUASIZERO_TLS_KEY_FILE")),
  tlsCertFile: Options_.optional(Config.String("QUASIZERO_TLS_CERT_FILE")),
  spin: Options_.optional(Options_.duration("QUASIZERO_SPIN"))
}).pipe(
  Config.mapEffect(
    ({ host, path, port, spin, tlsCertFile, tlsKeyFile }): Effect.Effect<ConfigOptions, Config.ConfigError> => {
      const spun = NodeSpin.resolveMicros(spin)
      if (Result.isFailure(spun)) {
        return Effect.fail(configError(`QUASIZERO_SPIN: expected ${spun.failure.expected}, got ${String(spin)}`))
      }
      if ((tlsKeyFile === undefined) !== (tlsCertFile === undefined)) {
        return Effect.fail(
          configError("QUASIZERO_TLS_KEY_FILE and QUASIZERO_TLS_CERT_FILE go together: set both or neither")
        )
      }
      const tls: ConfigOptions = {
        ...(tlsKeyFile === undefined ? {} : { tlsKeyFile, tlsCertFile }),
        ...(spin === undefined ? {} : { spin })
      }
      if (path !== undefined) {
        if (host !== undefined || port !== undefined) {
          return Effect.fail(configError("QUASIZERO_PATH (a Unix socket) excludes QUASIZERO_HOST and QUASIZERO_PORT"))
        }
        if (path.length === 0) return Effect.fail(configError('QUASIZERO_PATH: expected a socket path, got ""'))
        return Effect.succeed({ path, ...tls })
      }
      return Effect.succeed({ host: host ?? "127.0.0.1", port: port ?? 7701, ...tls })
    }
  )
)

const readPem = (variable: string, file: string) =>
  Effect.try({
    try: () => Fs.readFileSync(file),
    catch: (cause) => configError(`${variable}: cannot read ${file}: ${(cause as Error).message}`, cause)
  })

/**
 * A listener configured from the environment (`config`: `QUASIZERO_HOST`,
 * `QUASIZERO_PORT`, `QUASIZERO_PATH`, `QUASIZERO_TLS_KEY_FILE`,
 * `QUASIZERO_TLS_CERT_FILE`, `QUASIZERO_SPIN`), as the client has `QUASIZERO_ADDRESS`. An
 * unreadable key or certificate file is a `ConfigError` naming it.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Handlers, Server } from "quasizero"
 * import { NodeServer } from "quasizero/node"
 * // QUASIZERO_HOST=0.0.0.0 QUASIZERO_PORT=7701 QUASIZERO_TIMEOUT=5s
 * const ServerLive = Server.layerConfig().pipe(
 *   Layer.provide(Handlers.layer({ 1: () => Effect.succeed("PONG") })),
 *   Layer.provide(NodeServer.layerConfig())
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Wrap<ConfigOptions> = config
): Layer.Layer<SocketServer.SocketServer, SocketServer.SocketServerError | Server.ServerError | Config.ConfigError> =>
  Layer.unwrap(Effect.gen(function*() {
    const { tlsCertFile, tlsKeyFile, ...where } = yield* Config.unwrap(options)
    if (tlsKeyFile === undefined || tlsCertFile === undefined) return layer(where)
    const key = yield* readPem("QUASIZERO_TLS_KEY_FILE", tlsKeyFile)
    const cert = yield* readPem("QUASIZERO_TLS_CERT_FILE", tlsCertFile)
    return layerTls({ ...where, key, cert })
  }))
