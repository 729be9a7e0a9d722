/**
 * A pooled quasizero client, byte-compatible with Go's bsm/quasizero server.
 * Replies come in request order on each connection and order is the only
 * correlation, so a connection that saw an I/O error, a protocol error or a
 * request timeout is closed and never reused (unlike Go, which puts a broken
 * connection back into its pool). Requests that may have reached the server
 * are never replayed; those that provably did not (`maybeProcessed: false`)
 * may be retried with the `retry` schedule.
 *
 * A `Client` is a `Pool` of connections (`Pool.makeWithStrategy`, with
 * `concurrency` = `maxInFlight`): several concurrent callers share one
 * connection (multiplexing; their requests are written coalesced and answered
 * in order), and a new connection opens only when every open one is full.
 * The transport is a `Dialer` service (`NodeClient.layerDialer` on Node;
 * `NodeClient.layer` gives the whole `Client`); the client itself imports
 * only `effect`.
 *
 * Gotchas:
 * - interrupting a call does not cancel it on the server: a written request
 *   keeps its place in its connection's FIFO and its reply is dropped (so
 *   the connection stays usable); a request still queued is sent anyway;
 * - with multiplexing, replies on a connection come in request order, so a
 *   slow request delays the calls queued behind it on the same connection
 *   (set `maxInFlight: 1` for one request per connection, like Go).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Pool from "effect/Pool"
import * as Scope from "effect/Scope"
import * as ClientConnection from "./ClientConnection.ts"
import { AcquireTimeout, ClientError, ConnectFailed, ConnectTimeout, PoolClosed } from "./ClientError.ts"
import { config, type Options, type ResolvedOptions, resolveOptions } from "./ClientOptions.ts"
import { reaper } from "./ClientReaper.ts"
import * as Command from "./Command.ts"
import { Dialer } from "./Dialer.ts"
import type * as Request from "./Request.ts"
import type * as Response from "./Response.ts"

export * from "./ClientError.ts"

export * from "./ClientOptions.ts"
export {
  /**
   * @since 0.1.0
   * @category services
   */
  Dialer
} from "./Dialer.ts"

// -----------------------------------------------------------------------------
// service
// -----------------------------------------------------------------------------

/**
 * Replies of a pipeline, in request order (Go's `ResponseBatch`).
 *
 * @example
 * ```ts
 * import { Client, Response } from "quasizero"
 * const texts = (batch: Client.ResponseBatch) => batch.map(Response.text)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type ResponseBatch = ReadonlyArray<Response.Response>

/**
 * A snapshot of the pool.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { Effect } from "effect"
 * const open = Client.Client.use((client) => client.stats).pipe(
 *   Effect.map((stats) => stats.open)
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** Connections open. */
  readonly open: number
  /** Connections with no request in flight. */
  readonly idle: number
  /** Requests written or queued on the connections and not yet answered. */
  readonly inflight: number
  /** Callers waiting for a connection. */
  readonly waiting: number
}

/**
 * The client service. `call` and `pipeline` are the hot path: plain
 * functions, no span per call.
 *
 * @example
 * ```ts
 * import { Client, Request, Response } from "quasizero"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const client = yield* Client.Client
 *   const res = yield* client.call(Request.makeUnsafe(2, { payload: "hi" }))
 *   return Response.text(res) // "hi"
 * })
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class Client extends Context.Service<Client, {
  /** The server address (from the `Dialer`). */
  readonly address: string
  /** Sends one request on a pooled connection; the reply's `errorMessage` is data. */
  readonly call: (request: Request.Request) => Effect.Effect<Response.Response, ClientError>
  /** Sends the requests in one write on one connection; replies in order. */
  readonly pipeline: (requests: ReadonlyArray<Request.Request>) => Effect.Effect<ResponseBatch, ClientError>
  /**
   * Runs a typed command: encodes the input, calls, and decodes the reply;
   * fails with the command's own typed error when the server sent one.
   */
  readonly run: <I, A, E>(
    command: Command.Command<I, A, E>,
    ...args: Command.RunArgs<I>
  ) => Effect.Effect<A, E | Command.CommandError | ClientError>
  /** Pool statistics. */
  readonly stats: Effect.Effect<Stats>
}>()("quasizero/Client") {}

type Connection = ClientConnection.Connection

/**
 * Builds a client in the current scope: opens `pool.initialSize` connections
 * (failing with their `ConnectFailed` / `ConnectTimeout` when the server is
 * down), then serves calls. Closing the scope fails every pending call with
 * `PoolClosed` and closes every connection.
 *
 * @example
 * ```ts
 * import { Client, Request } from "quasizero"
 * import { NodeClient } from "quasizero/node"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const client = yield* Client.make({ pool: { maxCap: 4 } })
 *   return yield* client.call(Request.makeUnsafe(1))
 * }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialer({ host: "127.0.0.1", port: 7475 })))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: Options | undefined
) => Effect.Effect<Client["Service"], ClientError, Scope.Scope | Dialer> = Effect.fn("Quasizero.Client.make")(
  function*(options?: Options | undefined) {
    const dialer = yield* Dialer
    const resolved = yield* resolveOptions(options, dialer.address)
    // `retry` also covers opening the first `pool.initialSize` connections, so
    // a client may start before its server (every connect error has
    // `maybeProcessed: false`); each attempt builds a fresh pool.
    return yield* resolved.retry === undefined
      ? build(dialer, resolved)
      : Effect.retry(build(dialer, resolved), { schedule: resolved.retry, while: (e) => !e.maybeProcessed })
  }
)

const build = Effect.fnUntraced(
  function*(dialer: Dialer["Service"], resolved: ResolvedOptions) {
    const address = dialer.address
    // The client's own scope, closed at once if `make` fails.
    const scope = yield* Scope.fork(yield* Effect.scope)
    const clock = yield* Clock.Clock
    const { initialSize, maxCap, idleTimeout, reapInterval } = resolved.pool

    let closed = false
    let pool: Pool.Pool<Connection, ClientError> | undefined
    const connections = new Set<Connection>()

    const onClose = (connection: Connection): Effect.Effect<void> =>
      closed || pool === undefined
        ? Effect.void
        // Forked: invalidating an idle connection closes its scope, which
        // waits for the fiber that is running this.
        : Effect.asVoid(Effect.forkIn(Pool.invalidate(pool, connection), scope, { startImmediately: true }))
    const connectionConfig: ClientConnection.Config = {
      address,
      maxFrameSize: resolved.maxFrameSize,
      requestTimeout: resolved.requestTimeout,
      onClose
    }

    const connectFailed = (cause: unknown) =>
      new ClientError({ reason: new ConnectFailed({ address, cause, maybeProcessed: false }) })
    const connectTimedOut = Effect.fail(
      new ClientError({
        reason: new ConnectTimeout({ address, timeout: resolved.connectTimeout, maybeProcessed: false })
      })
    )
    const connect = Effect.mapError(
      Effect.flatMap(dialer.dial, (socket) => ClientConnection.make(socket, connectionConfig)),
      connectFailed
    )
    const open = Duration.isZero(resolved.connectTimeout)
      ? connect
      : Effect.timeoutOrElse(connect, { duration: resolved.connectTimeout, orElse: () => connectTimedOut })

    // The first `initialSize` connections settle `ready`: `make` fails fast
    // with the first one's error.
    const ready = Deferred.makeUnsafe<void, ClientError>()
    let initialPending = initialSize
    const settle = (exit: Exit.Exit<Connection, ClientError>) =>
      Effect.sync(() => {
        if (initialPending === 0) return
        if (Exit.isFailure(exit)) {
          initialPending = 0
          Deferred.doneUnsafe(ready, Exit.failCause(exit.cause))
        } else if (--initialPending === 0) Deferred.doneUnsafe(ready, Exit.void)
      })
    const acquire = Effect.onExit(
      Effect.tap(open, (connection) => {
        connections.add(connection)
        return Effect.addFinalizer(() => Effect.sync(() => connections.delete(connection)))
      }),
      settle
    )

    const created = yield* Scope.provide(
      Pool.makeWithStrategy({
        acquire,
        min: initialSize,
        max: maxCap,
        concurrency: resolved.maxInFlight,
        strategy: reaper(idleTimeout, reapInterval, clock)
      }),
      scope
    )
    pool = created
    // Added after the pool's own finalizer, so it runs first: pending calls
    // fail with PoolClosed and release their connections, then the pool
    // shuts down.
    yield* Scope.addFinalizer(
      scope,
      Effect.suspend(() => {
        closed = true
        return Effect.forEach(Array.from(connections), (c) => c.shutdown(), { discard: true })
      })
    )
    if (initialSize > 0) yield* Effect.onError(Deferred.await(ready), () => Scope.close(scope, Exit.void))

    const poolClosed = Effect.fail(new ClientError({ reason: new PoolClosed({ address, maybeProcessed: false }) }))
    const acquireTimedOut = Effect.fail(
      new ClientError({
        reason: new AcquireTimeout({ address, timeout: resolved.acquireTimeout, maybeProcessed: false })
      })
    )
    const get = Duration.isZero(resolved.acquireTimeout)
      ? Pool.get(created)
      : Effect.timeoutOrElse(Pool.get(created), { duration: resolved.acquireTimeout, orElse: () => acquireTimedOut })
    // Pool interrupts its waiters when it shuts down: report that as PoolClosed.
    const onWaitFailure = (cause: Cause.Cause<ClientError>) =>
      closed && Cause.hasInterruptsOnly(cause) ? poolClosed : Effect.failCause(cause)

    // Runs `f` on a connection with a free slot. A connection is leased for
    // as long as `f` runs, so the pool's `concurrency` bounds its requests.
    const use = <A>(f: (connection: Connection) => Effect.Effect<A, ClientError>): Effect.Effect<A, ClientError> =>
      Effect.suspend(() => {
        if (closed) return poolClosed
        const state = created.state
        if (state.waiters.size === 0 && state.availableHead?.exit._tag === "Success") return Pool.use(created, f)
        return Effect.catchCause(Effect.scoped(Effect.flatMap(get, f)), onWaitFailure)
      })

    // A connection found closed before anything was written on it has not
    // been invalidated yet: drop it and try another one.
    const callOnce = (request: Request.Request): Effect.Effect<Response.Response, ClientError> =>
      use((connection) =>
        connection.state === "open"
          ? connection.call(request)
          : Effect.andThen(Pool.invalidate(created, connection), callOnce(request))
      )
    const pipelineOnce = (requests: ReadonlyArray<Request.Request>): Effect.Effect<ResponseBatch, ClientError> =>
      use((connection) =>
        connection.state === "open"
          ? connection.pipeline(requests)
          : Effect.andThen(Pool.invalidate(created, connection), pipelineOnce(requests))
      )
    const pipelineAny = (requests: ReadonlyArray<Request.Request>): Effect.Effect<ResponseBatch, ClientError> =>
      requests.length === 0 ? Effect.succeed([]) : pipelineOnce(requests)

    const retry = resolved.retry
    const retryOptions = retry === undefined ? undefined : {
      schedule: retry,
      while: (error: ClientError) => !error.maybeProcessed
    }

    const call = retryOptions === undefined
      ? callOnce
      : (request: Request.Request) => Effect.retry(callOnce(request), retryOptions)

    return Client.of({
      address,
      call,
      pipeline: retryOptions === undefined
        ? pipelineAny
        : (requests) => Effect.retry(pipelineAny(requests), retryOptions),
      run: (command, ...[input, metadata]) =>
        Effect.flatMap(
          Command.request(command, input as Command.Input<typeof command>, metadata),
          (request) => Effect.flatMap(call(request), (response) => Command.decodeResponse(command, response))
        ),
      stats: Effect.map(Pool.stats(created), (stats) => {
        let inflight = 0
        for (const connection of connections) inflight += connection.inflightCount + connection.queuedCount
        return { open: connections.size, idle: stats.idle, inflight, waiting: stats.pending }
      })
    })
  }
)

/**
 * The client as a layer; needs a `Dialer` (`NodeClient.layerDialer`).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { NodeClient } from "quasizero/node"
 * import { Layer } from "effect"
 * const ClientLive = Client.layer({ requestTimeout: "5 seconds" }).pipe(
 *   Layer.provide(NodeClient.layerDialer({ host: "127.0.0.1", port: 7475 }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options | undefined): Layer.Layer<Client, ClientError, Dialer> =>
  Layer.effect(Client)(make(options))

/**
 * The client as a layer reading its options from `Config` (default:
 * `Client.config`, the `QUASIZERO_*` environment variables).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { Config } from "effect"
 * const ClientLive = Client.layerConfig({
 *   ...Client.config,
 *   requestTimeout: Config.succeed("2 seconds")
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Wrap<Options> = config
): Layer.Layer<Client, ClientError | Config.ConfigError, Dialer> =>
  Layer.effect(Client)(Effect.flatMap(Config.unwrap(options), make))

// -----------------------------------------------------------------------------
// accessors
// -----------------------------------------------------------------------------

/**
 * Sends one request with the `Client` in context.
 *
 * @example
 * ```ts
 * import { Client, Request } from "quasizero"
 * const pong = Client.call(Request.makeUnsafe(1))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const call = (request: Request.Request): Effect.Effect<Response.Response, ClientError, Client> =>
  Client.use((client) => client.call(request))

/**
 * Sends requests in one write on one connection with the `Client` in
 * context; replies in order.
 *
 * @example
 * ```ts
 * import { Client, Request } from "quasizero"
 * const both = Client.pipeline([Request.makeUnsafe(1), Request.makeUnsafe(2, { payload: "x" })])
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const pipeline = (
  requests: ReadonlyArray<Request.Request>
): Effect.Effect<ResponseBatch, ClientError, Client> => Client.use((client) => client.pipeline(requests))

/**
 * Runs a typed command with the `Client` in context: the decoded success, the
 * command's own typed error, a `CommandError` (schema mismatch, or an error
 * reply that is not the command's), or a `ClientError` (transport).
 *
 * @example
 * ```ts
 * import { Client, Command } from "quasizero"
 * import { Schema } from "effect"
 * const Echo = Command.make("Echo", { code: 2, payload: Schema.String, success: Schema.String })
 * const hello = Client.run(Echo, "hello") // Effect<string, CommandError | ClientError, Client>
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const run = <I, A, E>(
  command: Command.Command<I, A, E>,
  ...args: Command.RunArgs<I>
): Effect.Effect<A, E | Command.CommandError | ClientError, Client> =>
  Client.use((client) => client.run(command, ...args))
