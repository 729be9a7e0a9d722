/**
 * The quasizero server: serves a `Handlers` map over any `SocketServer`
 * (TCP, Unix or TLS from `NodeServer`, or an in-memory one in tests), with Go
 * quasizero's semantics — one reply per request, in request order, pipelined
 * requests of one read batch answered with one socket write — and the
 * timeouts, limits and graceful shutdown Go leaves out.
 *
 * Building the layer starts serving; closing its scope stops accepting, lets
 * requests already read finish and flush (bounded by `shutdownTimeout`), then
 * closes every connection.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as SocketServer from "effect/socket/SocketServer"
import * as Handlers from "./Handlers.ts"
import * as ServerConnection from "./ServerConnection.ts"
import { InvalidOption, ServerError } from "./ServerError.ts"
import * as Wire from "./Wire.ts"

export * from "./ServerError.ts"

// -----------------------------------------------------------------------------
// options
// -----------------------------------------------------------------------------

/**
 * Server options. Durations are `Duration.Input`; 0 or undefined disables.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** A frame that has started must complete, and a pending write must drain, within it. Default: disabled. */
  readonly timeout?: Duration.Input | undefined
  /** Close a connection that sent no request for this long (Go ignores its IdleTimeout). Default: disabled. */
  readonly idleTimeout?: Duration.Input | undefined
  /** SO_KEEPALIVE period, applied by the platform layer (`NodeServer`). Default: disabled. */
  readonly tcpKeepAlive?: Duration.Input | undefined
  /** Largest accepted frame body, in bytes. Default: 16 MiB (Go's limit). */
  readonly maxFrameSize?: number | undefined
  /** Connections beyond this are closed on accept. Default: unlimited. */
  readonly maxConnections?: number | undefined
  /** Handlers run at once per connection; replies stay in request order. Default: 1 (Go). */
  readonly concurrency?: number | undefined
  /** How long a closing server waits for requests already read. Default: 10 seconds. */
  readonly shutdownTimeout?: Duration.Input | undefined
  /** Called with every connection error (they are also logged at debug level). */
  readonly onError?: ((error: ServerError) => Effect.Effect<void>) | undefined
  /** Per-request tracing spans (`quasizero.request`). Default: false, they cost. */
  readonly spans?: boolean | undefined
  /**
   * Per-request metrics: requests by code and the handler duration histogram.
   * Default: false; connection, request and error counts are always kept.
   */
  readonly requestMetrics?: boolean | undefined
}

/**
 * Options with every default applied and durations in milliseconds (0 = off).
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedOptions {
  readonly timeout: number
  readonly idleTimeout: number
  readonly tcpKeepAlive: number
  readonly maxFrameSize: number
  readonly maxConnections: number
  readonly concurrency: number
  readonly shutdownTimeout: number
  readonly onError: ((error: ServerError) => Effect.Effect<void>) | undefined
  readonly spans: boolean
  readonly requestMetrics: boolean
}

const invalid = (option: string, value: unknown, expected: string): ServerError =>
  new ServerError({ reason: new InvalidOption({ option, value, expected }) })

const millis = (
  option: string,
  value: Duration.Input | undefined,
  fallback: number
): Effect.Effect<number, ServerError> => {
  if (value === undefined) return Effect.succeed(fallback)
  const decoded = Duration.fromInput(value)
  if (decoded._tag === "None" || Duration.isNegative(decoded.value)) {
    return Effect.fail(invalid(option, value, "a non-negative duration"))
  }
  return Effect.succeed(Duration.toMillis(decoded.value))
}

const count = (
  option: string,
  value: number | undefined,
  fallback: number,
  min: number
): Effect.Effect<number, ServerError> => {
  if (value === undefined) return Effect.succeed(fallback)
  if (value === Infinity || (Number.isSafeInteger(value) && value >= min)) return Effect.succeed(value)
  return Effect.fail(invalid(option, value, `an integer >= ${min}`))
}

/**
 * Validates options and applies defaults, once, when the server is built.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "quasizero"
 * const resolved = Effect.runSync(Server.resolveOptions({ timeout: "5 seconds" }))
 * resolved.timeout // 5000
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveOptions = Effect.fnUntraced(function*(options: Options = {}) {
  const maxFrameSize = yield* count("maxFrameSize", options.maxFrameSize, Wire.defaultMaxFrameSize, 1)
  if (maxFrameSize > 2 ** 31 - 1) return yield* invalid("maxFrameSize", maxFrameSize, "at most 2^31 - 1 bytes")
  return {
    timeout: yield* millis("timeout", options.timeout, 0),
    idleTimeout: yield* millis("idleTimeout", options.idleTimeout, 0),
    tcpKeepAlive: yield* millis("tcpKeepAlive", options.tcpKeepAlive, 0),
    maxFrameSize,
    maxConnections: yield* count("maxConnections", options.maxConnections, Infinity, 1),
    concurrency: yield* count("concurrency", options.concurrency, 1, 1),
    shutdownTimeout: yield* millis("shutdownTimeout", options.shutdownTimeout, 10_000),
    onError: options.onError,
    spans: options.spans === true,
    requestMetrics: options.requestMetrics === true
  } satisfies ResolvedOptions
})

// -----------------------------------------------------------------------------
// service
// -----------------------------------------------------------------------------

/**
 * A platform hook for each accepted connection, run in the connection's
 * context: `apply` sets socket options (`NodeServer` sets TCP keep-alive).
 * The default does nothing, so the server runs on any `SocketServer`.
 *
 * @since 0.1.0
 * @category services
 */
export const ConnectionSetup = Context.Reference<{
  readonly apply: (options: { readonly tcpKeepAlive: number }) => Effect.Effect<void>
}>("quasizero/Server/ConnectionSetup", { defaultValue: () => ({ apply: () => Effect.void }) })

/**
 * A platform hook for graceful shutdown: `stopAccepting` closes the listening
 * socket while accepted connections keep running (`NodeServer` provides it).
 * The default does nothing; a draining server then closes new connections as
 * they arrive.
 *
 * @since 0.1.0
 * @category services
 */
export const ListenerControl = Context.Reference<{ readonly stopAccepting: Effect.Effect<void> }>(
  "quasizero/Server/ListenerControl",
  { defaultValue: () => ({ stopAccepting: Effect.void }) }
)

/**
 * A running server.
 *
 * @since 0.1.0
 * @category services
 */
export class Server extends Context.Service<Server, {
  /** The bound address (the real port when listening on port 0). */
  readonly address: NetAddress.SocketAddress
  /** Connections open right now. */
  readonly connections: () => number
  /** The options in force. */
  readonly options: ResolvedOptions
}>()("quasizero/Server") {}

/**
 * Starts serving; the server lives until the enclosing scope closes, then
 * shuts down gracefully.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "quasizero"
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const server = yield* Server.make({ idleTimeout: "5 minutes" })
 *   yield* Effect.log(`serving on ${JSON.stringify(server.address)}`)
 *   yield* Effect.never
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("Quasizero.Server.make")(function*(options?: Options) {
  const resolved = yield* resolveOptions(options)
  const socketServer = yield* SocketServer.SocketServer
  const handlers = yield* Handlers.Handlers
  const setup = yield* ConnectionSetup
  const listener = yield* ListenerControl
  const connections = new Set<ServerConnection.Connection>()
  let draining = false
  let drained: Deferred.Deferred<void> | undefined

  const onClosed = (conn: ServerConnection.Connection) => {
    connections.delete(conn)
    if (drained !== undefined && connections.size === 0) Deferred.doneUnsafe(drained, Effect.void)
  }

  const serve = ServerConnection.make({
    options: resolved,
    handlers,
    setup,
    admit: (conn) => {
      if (draining) return "draining"
      if (connections.size >= resolved.maxConnections) return "full"
      connections.add(conn)
      return "admitted"
    },
    onClosed,
    open: () => connections.size,
    isDraining: () => draining,
    context: yield* Effect.context<never>(),
    clock: yield* Clock.Clock
  })

  yield* Effect.forkScoped(socketServer.run(serve))

  // Added after the accept fiber, so it runs before that fiber is interrupted.
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      draining = true
      // New clients are refused at connect time: nothing they send can be lost.
      yield* listener.stopAccepting
      if (connections.size === 0) return
      drained = Deferred.makeUnsafe<void>()
      // Idle connections have no request to finish: close them now.
      for (const conn of connections) if (conn.isIdle()) conn.interrupt()
      yield* Deferred.await(drained).pipe(Effect.timeoutOption(resolved.shutdownTimeout))
      const stuck = Array.from(connections, (conn) => conn.fiber).filter((f) => f !== undefined)
      if (stuck.length > 0) {
        yield* Effect.logDebug(`quasizero: interrupting ${stuck.length} connection(s) after shutdownTimeout`)
        yield* Fiber.interruptAll(stuck)
      }
    })
  )

  return Server.of({
    address: socketServer.address,
    connections: () => connections.size,
    options: resolved
  })
})

/**
 * The server as a layer: needs a `SocketServer` (see `NodeServer.layer`) and
 * the `Handlers`.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Handlers, Server } from "quasizero"
 * import { NodeServer } from "quasizero/node"
 *
 * const Main = Server.layer({ timeout: "10 seconds" }).pipe(
 *   Layer.provide(Handlers.layer({ 1: () => Effect.succeed("PONG") })),
 *   Layer.provide(NodeServer.layer({ port: 7701 }))
 * )
 * NodeRuntime.runMain(Layer.launch(Main))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<Server, ServerError, SocketServer.SocketServer | Handlers.Handlers> =>
  Layer.effect(Server, make(options))

/**
 * Server options read from the environment: `QUASIZERO_TIMEOUT`,
 * `QUASIZERO_IDLE_TIMEOUT`, `QUASIZERO_TCP_KEEP_ALIVE`,
 * `QUASIZERO_MAX_FRAME_SIZE`, `QUASIZERO_MAX_CONNECTIONS`,
 * `QUASIZERO_CONCURRENCY`, `QUASIZERO_SHUTDOWN_TIMEOUT` (all optional).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  timeout: Config.option(Config.Duration("QUASIZERO_TIMEOUT")),
  idleTimeout: Config.option(Config.Duration("QUASIZERO_IDLE_TIMEOUT")),
  tcpKeepAlive: Config.option(Config.Duration("QUASIZERO_TCP_KEEP_ALIVE")),
  maxFrameSize: Config.option(Config.Int("QUASIZERO_MAX_FRAME_SIZE")),
  maxConnections: Config.option(Config.Int("QUASIZERO_MAX_CONNECTIONS")),
  concurrency: Config.option(Config.Int("QUASIZERO_CONCURRENCY")),
  shutdownTimeout: Config.option(Config.Duration("QUASIZERO_SHUTDOWN_TIMEOUT"))
}).pipe(
  Config.map((o): Options => {
    const out: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(o)) if (value._tag === "Some") out[key] = value.value
    return out as Options
  })
)

/**
 * `layer` with options from `Config` (by default `Server.config`, the
 * `QUASIZERO_*` environment variables).
 *
 * @example
 * ```ts
 * import { Server } from "quasizero"
 * const ServerLive = Server.layerConfig() // QUASIZERO_TIMEOUT=5s etc.
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Wrap<Options> = config
): Layer.Layer<Server, ServerError | Config.ConfigError, SocketServer.SocketServer | Handlers.Handlers> =>
  Layer.effect(Server, Effect.flatMap(Config.unwrap(options), make))

// -----------------------------------------------------------------------------
// accessors
// -----------------------------------------------------------------------------

/**
 * The TCP port of a server address (the real one when listening on port 0);
 * `undefined` for a Unix socket or an in-memory server.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "quasizero"
 * const port = Server.Server.use((server) => Effect.succeed(Server.portOf(server.address)))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const portOf = (address: NetAddress.SocketAddress): number | undefined =>
  NetAddress.isInetAddress(address) ? address.port : undefined

/**
 * The TCP port of the `Server` in context, with no narrowing by hand. Dies
 * when the server does not listen on TCP (a Unix socket, an in-memory
 * transport): that is a mistake of the program, not a runtime condition.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "quasizero"
 * const program = Effect.gen(function*() {
 *   const port = yield* Server.port // e.g. the ephemeral port of NodeServer.layer({ port: 0 })
 *   yield* Effect.log(`listening on ${port}`)
 * })
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const port: Effect.Effect<number, never, Server> = Server.use((server) => {
  const found = portOf(server.address)
  return found === undefined
    ? Effect.die(new Error(`Server.port: the server does not listen on TCP (${JSON.stringify(server.address)})`))
    : Effect.succeed(found)
})
