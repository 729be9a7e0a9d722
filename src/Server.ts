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
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as SocketServer from "effect/socket/SocketServer"
import * as Handlers from "./Handlers.ts"
import * as ServerConnection from "./ServerConnection.ts"
import type { ServerError } from "./ServerError.ts"
import { config, type Options, type ResolvedOptions, resolveOptions } from "./ServerOptions.ts"
import * as ServerPull from "./ServerPull.ts"
import * as ServerSweeper from "./ServerSweeper.ts"

export * from "./ServerError.ts"
export * from "./ServerOptions.ts"

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
  /** Bytes held right now in frames and unsent replies, counted against `maxBufferedBytes`. */
  readonly bufferedBytes: () => number
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
  const buffers = { held: 0 }
  let draining = false
  let drained: Deferred.Deferred<void> | undefined

  const onClosed = (conn: ServerConnection.Connection) => {
    connections.delete(conn)
    if (drained !== undefined && connections.size === 0) Deferred.doneUnsafe(drained, Effect.void)
  }

  const { accept, shared } = ServerConnection.make({
    options: resolved,
    handlers,
    admit: (conn) => {
      if (draining) return "draining"
      if (connections.size >= resolved.maxConnections) return "full"
      connections.add(conn)
      return "admitted"
    },
    onClosed,
    open: () => connections.size,
    isDraining: () => draining,
    buffers,
    context: yield* Effect.context<never>(),
    clock: yield* Clock.Clock
  })
  const serve = ServerPull.make(shared, setup)
  const sweeper = ServerSweeper.make(shared)

  // Forked before the accept fiber: deadlines still apply while the server drains.
  yield* Effect.forkScoped(sweeper(connections))
  // A listener that can hand sockets to a callback gets one: no fiber per idle connection.
  const direct = (socketServer as Partial<ServerConnection.DirectAccept>)[ServerConnection.DirectAcceptTypeId]
  yield* Effect.forkScoped(direct !== undefined ? direct.run(accept) : socketServer.run(serve))

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
      // A direct connection closes when its batch fiber ends; none may outlive the server.
      for (const conn of connections) conn.interrupt()
    })
  )

  return Server.of({
    address: socketServer.address,
    connections: () => connections.size,
    bufferedBytes: () => buffers.held,
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
