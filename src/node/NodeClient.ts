/**
 * Node dialers for `Client`: TCP, Unix sockets and TLS, on
 * `@effect/platform-node`'s `NodeSocket`. Nagle is off (`noDelay`) by
 * default: request/response traffic must not wait for ACKs. `spin` (off by
 * default) keeps the event loop polling briefly after each request write
 * (see `NodeSpin`).
 *
 * @since 0.1.0
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Net from "node:net"
import * as Tls from "node:tls"
import * as Client from "../Client.ts"
import * as ClientTransport from "../ClientTransport.ts"
import * as Options_ from "../Options.ts"
import * as NodeClientSocket from "./NodeClientSocket.ts"
import * as NodeSpin from "./NodeSpin.ts"

/**
 * Where to connect: `host` + `port` for TCP, or `path` for a Unix socket.
 *
 * @example
 * ```ts
 * import { NodeClient } from "quasizero/node"
 * const tcp: NodeClient.Options = { host: "127.0.0.1", port: 7475 }
 * const unix: NodeClient.Options = { path: "/run/quasizero.sock" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly path?: string | undefined
  /** Disable Nagle's algorithm. Default: true. */
  readonly noDelay?: boolean | undefined
  /**
   * Spin before park: after writing requests, keep the event loop polling for
   * this long (at most 1 ms) instead of sleeping in `epoll_wait`, so the reply
   * finds the process awake. Trades CPU for latency; helps on VMs with one
   * caller waiting on one reply (see the README's "Spin before park").
   * Default: 0 (off).
   */
  readonly spin?: Options_.DurationInput | undefined
}

const formatAddress = (options: Options): string => {
  if (options.path !== undefined) return `unix:${options.path}`
  const host = options.host ?? "localhost"
  return `${host.includes(":") ? `[${host}]` : host}:${options.port}`
}

const connectOptions = (options: Options): Net.NetConnectOpts => {
  const noDelay = options.noDelay ?? true
  if (options.path !== undefined) return { path: options.path }
  return options.host === undefined
    ? { port: options.port!, noDelay }
    : { host: options.host, port: options.port!, noDelay }
}

const invalid = (options: Options, option: string, value: unknown, expected: string) =>
  new Client.ClientError({
    reason: new Client.InvalidOption({
      address: formatAddress(options),
      option,
      value,
      expected,
      maybeProcessed: false
    })
  })

// Checks where to connect, and resolves `spin` to microseconds.
const check = (options: Options): Effect.Effect<number, Client.ClientError> => {
  if (options.path !== undefined) {
    if (typeof options.path !== "string" || options.path.length === 0) {
      return Effect.fail(invalid(options, "path", options.path, "a non-empty socket path"))
    }
  } else {
    const port = options.port
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
      return Effect.fail(invalid(options, "port", port, "an integer in [1, 65535]"))
    }
  }
  const spin = NodeSpin.resolveMicros(options.spin)
  return Result.isSuccess(spin)
    ? Effect.succeed(spin.success)
    : Effect.fail(invalid(options, spin.failure.option, spin.failure.value, spin.failure.expected))
}

/**
 * The `Dialer` for TCP or a Unix socket; fails with `InvalidOption` on a bad
 * port, path or `spin`.
 *
 * @example
 * ```ts
 * import { NodeClient } from "quasizero/node"
 * import { Effect } from "effect"
 * const dialer = Effect.runSync(NodeClient.make({ host: "127.0.0.1", port: 7475 }))
 * dialer.address // "127.0.0.1:7475"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Client.Dialer["Service"], Client.ClientError> =>
  Effect.map(
    check(options),
    (spinMicros) =>
      Client.Dialer.of({ address: formatAddress(options), dial: dialNet(connectOptions(options), spinMicros) })
  )

// A `Socket` carrying the lean transport the client uses (see
// `NodeClientSocket`); the platform's own is built only if its reader or
// writer is used, not on every dial.
const dialNet = (options: Net.NetConnectOpts, spinMicros: number) =>
  ClientTransport.dialLean(
    NodeSocket.makeNet(options),
    NodeClientSocket.open(() => Net.createConnection(options), "connect", spinMicros)
  )

const dialTls = (options: Tls.ConnectionOptions, spinMicros: number) =>
  ClientTransport.dialLean(
    NodeSocket.makeTls(options),
    NodeClientSocket.open(() => Tls.connect(options), "secureConnect", spinMicros)
  )

/**
 * The `Client` over TCP (`{ host, port }`) or a Unix socket (`{ path }`):
 * `Options` (where) plus `Client.Options` (how). The module's main layer.
 *
 * @example
 * ```ts
 * import { Client, Request } from "quasizero"
 * import { NodeClient } from "quasizero/node"
 * import { Effect } from "effect"
 * const program = Client.call(Request.makeUnsafe(1)).pipe(
 *   Effect.provide(NodeClient.layer({ host: "127.0.0.1", port: 7475, requestTimeout: "1 second" }))
 * )
 * const UnixLive = NodeClient.layer({ path: "/run/quasizero.sock" })
 * // several replicas, balanced (see `Client.EndpointsOptions`):
 * const ClusterLive = NodeClient.layer({ endpoints: ["10.0.0.1:7475", "10.0.0.2:7475"] })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: (Options & Client.Options & Client.TracingOptions) | Client.EndpointsOptions
): Layer.Layer<Client.Client, Client.ClientError> => {
  if ("endpoints" in options && options.endpoints !== undefined) {
    return Client.layer(options).pipe(Layer.provide(layerDialers))
  }
  const [clientOptions, where] = splitClientOptions(options as Options & Client.Options & Client.TracingOptions)
  return Client.layer(clientOptions).pipe(Layer.provide(layerDialer(where)))
}

// The keys of `Client.Options` (from its defaults table, so a new client
// option needs no change here), apart from where and how to connect.
const clientKeys = new Set([...Object.keys(Client.defaults), "tracing"])
const splitClientOptions = <O extends object>(options: O & Client.Options): [Client.Options, O] => {
  const client: Record<string, unknown> = {}
  const rest: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options)) (clientKeys.has(key) ? client : rest)[key] = value
  return [client as Client.Options, rest as O]
}

/**
 * The `Client` over TLS: `Options`, Node's `tls.ConnectionOptions`
 * (`servername`, `ca`, `rejectUnauthorized`, ...) and `Client.Options`.
 *
 * @example
 * ```ts
 * import { NodeClient } from "quasizero/node"
 * declare const ca: string
 * const ClientLive = NodeClient.layerTls({ host: "db.internal", port: 7476, ca, requestTimeout: "2 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTls = (
  options: Options & Tls.ConnectionOptions & Client.Options
): Layer.Layer<Client.Client, Client.ClientError> => {
  const [clientOptions, tls] = splitClientOptions<Options & Tls.ConnectionOptions>(options)
  return Client.layer(clientOptions).pipe(Layer.provide(layerDialerTls(tls)))
}

/**
 * Only the `Dialer` for TCP (`{ host, port }`) or a Unix socket (`{ path }`),
 * for `Client.make` / `Client.layer`.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { NodeClient } from "quasizero/node"
 * import { Layer } from "effect"
 * const ClientLive = Client.layer().pipe(Layer.provide(NodeClient.layerDialer({ host: "127.0.0.1", port: 7475 })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerDialer = (options: Options): Layer.Layer<Client.Dialer, Client.ClientError> =>
  Layer.effect(Client.Dialer)(Effect.suspend(() => make(options)))

/**
 * Only the `Dialer` for TLS: `Options` plus Node's `tls.ConnectionOptions`.
 *
 * @example
 * ```ts
 * import { NodeClient } from "quasizero/node"
 * declare const ca: string
 * const TlsDialer = NodeClient.layerDialerTls({ host: "db.internal", port: 7476, ca })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerDialerTls = (
  options: Options & Tls.ConnectionOptions
): Layer.Layer<Client.Dialer, Client.ClientError> =>
  Layer.effect(Client.Dialer)(Effect.suspend(() => {
    const { noDelay: _, spin: __, ...tls } = options
    return Effect.map(
      check(options),
      (spinMicros) =>
        Client.Dialer.of({
          address: formatAddress(options),
          dial: dialTls({ ...tls, ...connectOptions(options) } as Tls.ConnectionOptions, spinMicros)
        })
    )
  }))

/**
 * The former name of `layer`.
 *
 * @deprecated use `NodeClient.layer` (it now provides the `Client`); the dialer alone is `layerDialer`.
 * @since 0.1.0
 * @category layers
 */
export const layerClient: (options: Options & Client.Options) => Layer.Layer<Client.Client, Client.ClientError> = layer

/**
 * Parses `host:port`, `[ipv6]:port`, `unix:/path` or `/path` into `Options`;
 * `undefined` when the text is none of these.
 *
 * @example
 * ```ts
 * import { NodeClient } from "quasizero/node"
 * NodeClient.parseAddress("127.0.0.1:7475") // { host: "127.0.0.1", port: 7475 }
 * NodeClient.parseAddress("unix:/tmp/q.sock") // { path: "/tmp/q.sock" }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const parseAddress = (address: string): Options | undefined => {
  if (address.startsWith("unix:")) return address.length > 5 ? { path: address.slice(5) } : undefined
  if (address.startsWith("/")) return { path: address }
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address)
  if (match === null) return undefined
  const port = Number(match[3])
  if (port < 1 || port > 65535) return undefined
  const host = match[1] ?? match[2]!
  return host.length === 0 ? { port } : { host, port }
}

/**
 * The server address from `QUASIZERO_ADDRESS` (`host:port`, `unix:/path`).
 *
 * @example
 * ```ts
 * import { NodeClient } from "quasizero/node"
 * import { Effect } from "effect"
 * const where = Effect.runSync(NodeClient.addressConfig.pipe(Effect.orDie))
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const addressConfig: Config.Config<Options> = Config.String("QUASIZERO_ADDRESS").pipe(
  Config.mapEffect((text) => {
    const parsed = parseAddress(text)
    return parsed === undefined
      ? Effect.fail(
        new Config.ConfigError(
          new ConfigProvider.SourceError({
            message: `QUASIZERO_ADDRESS: expected host:port or unix:/path, got ${JSON.stringify(text)}`
          })
        )
      )
      : Effect.succeed(parsed)
  })
)

/**
 * A `Client` layer configured from the environment: `QUASIZERO_ADDRESS` and
 * `QUASIZERO_SPIN` (the dialer's `spin`, default off) plus `Client.config`
 * (`QUASIZERO_POOL_MAX_CAP`, `QUASIZERO_REQUEST_TIMEOUT`, ...), durations and
 * sizes in the grammar of `Options` (`2s`, `1m30s`, `16MiB`).
 *
 * @example
 * ```ts
 * import { Client, Request } from "quasizero"
 * import { NodeClient } from "quasizero/node"
 * import { Effect } from "effect"
 * // QUASIZERO_ADDRESS=127.0.0.1:7475 QUASIZERO_REQUEST_TIMEOUT=2s QUASIZERO_MAX_FRAME_SIZE=4MiB
 * const program = Client.call(Request.makeUnsafe(1)).pipe(Effect.provide(NodeClient.layerConfig()))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Wrap<Client.Options> = Client.config
): Layer.Layer<Client.Client, Client.ClientError | Config.ConfigError> =>
  Client.layerConfig(options).pipe(
    Layer.provide(
      Layer.effect(Client.Dialer)(Effect.flatMap(
        Config.all({ where: addressConfig, spin: Options_.optional(Options_.duration("QUASIZERO_SPIN")) }),
        ({ spin, where }) => make(spin === undefined ? where : { ...where, spin })
      ))
    )
  )

/**
 * `Dialers` for a multi-endpoint client: each address (`host:port`,
 * `[ipv6]:port`, `unix:/path`) is parsed with `parseAddress` and dialed over
 * TCP / a Unix socket; an address that does not parse fails with
 * `InvalidOption`.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { NodeClient } from "quasizero/node"
 * import { Layer } from "effect"
 * const ClientLive = Client.layer({ endpoints: ["127.0.0.1:7475", "127.0.0.1:7476"] }).pipe(
 *   Layer.provide(NodeClient.layerDialers)
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerDialers: Layer.Layer<Client.Dialers> = Layer.succeed(Client.Dialers)({
  dialer: (address) => {
    const options = parseAddress(address)
    return options === undefined
      ? Effect.fail(
        new Client.ClientError({
          reason: new Client.InvalidOption({
            address,
            option: "endpoints",
            value: address,
            expected: "host:port or unix:/path",
            maybeProcessed: false
          })
        })
      )
      : make(options)
  }
})
