/**
 * A pooled quasizero client, byte-compatible with Go's bsm/quasizero server.
 * Replies come in request order on each connection and order is the only
 * correlation, so a connection that saw an I/O error, a protocol error or a
 * request timeout is closed and never reused (unlike Go, which puts a broken
 * connection back into its pool). Requests that may have reached the server
 * are never replayed; those that provably did not (`maybeProcessed: false`)
 * may be retried with the `retry` schedule.
 *
 * A `Client` is a pool of connections (`ClientPool`): several concurrent
 * callers share one connection (multiplexing; their requests are written
 * coalesced and answered in order). A call goes to a connection with nothing
 * outstanding, else to the least loaded one with a free slot (`maxInFlight`);
 * a new connection opens only when every open one is full, and the pool
 * keeps `initialSize` open, redialing on a backoff after an outage. The
 * transport is a `Dialer` service (`NodeClient.layerDialer` on Node;
 * `NodeClient.layer` gives the whole `Client`); the client itself imports
 * only `effect`.
 *
 * Gotchas:
 * - interrupting a call does not cancel it on the server: a request already
 *   queued on a connection is still sent and may be processed; its reply is
 *   read and dropped, and until then it keeps its slot on that connection
 *   (so abandoned calls cannot pile up on one connection). A call
 *   interrupted while it waits for a slot is never sent;
 * - with multiplexing, replies on a connection come in request order, so a
 *   slow request delays the calls queued behind it on the same connection
 *   (set `maxInFlight: 1` for one request per connection, like Go);
 * - `requestTimeout` defaults to 60 seconds: set it a bit above your slowest
 *   handler.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { build } from "./ClientBuild.ts"
import type { ClientError } from "./ClientError.ts"
import { config, type Options, resolveOptions } from "./ClientOptions.ts"
import { Client, type ResponseBatch } from "./ClientService.ts"
import * as ClientTracing from "./ClientTracing.ts"
import * as Command from "./Command.ts"
import { Dialer, type Dialers } from "./Dialer.ts"
import * as Endpoints from "./Endpoints.ts"
import type * as EndpointsOptions from "./EndpointsOptions.ts"
import type * as Request from "./Request.ts"
import type * as Response from "./Response.ts"

export * from "./ClientError.ts"

export * from "./ClientRemoteError.ts"

export * from "./ClientOptions.ts"
export {
  /**
   * @since 0.1.0
   * @category services
   */
  Dialer,
  /**
   * @since 0.2.0
   * @category services
   */
  Dialers
} from "./Dialer.ts"

export * from "./Balancer.ts"

export * from "./Resolver.ts"

export {
  /**
   * @since 0.2.0
   * @category models
   */
  type TracingOptions
} from "./ClientTracing.ts"

export {
  /**
   * @since 0.2.0
   * @category models
   */
  type EndpointsOptions,
  /**
   * @since 0.2.0
   * @category models
   */
  type EndpointStats
} from "./EndpointsOptions.ts"

export * from "./ClientService.ts"

/**
 * Builds a client in the current scope: opens `pool.initialSize` connections
 * (failing with their `ConnectFailed` / `ConnectTimeout` when the server is
 * down), then serves calls. Closing the scope fails every pending call with
 * `PoolClosed` and closes every connection.
 *
 * With `endpoints` (a list of addresses or a `Resolver`) it builds a
 * multi-endpoint client instead, which needs `Dialers` (one `Dialer` per
 * address: `NodeClient.layerDialers`): one pool per endpoint, a `balancer`,
 * ejection of failing endpoints and discovery (see `EndpointsOptions`). It
 * fails only when no endpoint can be opened; one that cannot starts ejected.
 *
 * @example
 * ```ts
 * import { Client, Request } from "quasizero"
 * import { NodeClient } from "quasizero/node"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const client = yield* Client.make({ pool: { maxCap: 4 }, requestTimeout: "2 seconds" })
 *   return yield* client.call(Request.makeUnsafe(1))
 * }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialer({ host: "127.0.0.1", port: 7475 })))
 *
 * const many = Effect.gen(function*() {
 *   const client = yield* Client.make({ endpoints: ["127.0.0.1:7475", "127.0.0.1:7476"] })
 *   return yield* client.call(Request.makeUnsafe(1))
 * }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialers))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: {
  (options: EndpointsOptions.EndpointsOptions): Effect.Effect<Client["Service"], ClientError, Scope.Scope | Dialers>
  (
    options?: (Options & ClientTracing.TracingOptions) | undefined
  ): Effect.Effect<Client["Service"], ClientError, Scope.Scope | Dialer>
} = Effect.fn("Quasizero.Client.make")(
  function*(options?: (Options & ClientTracing.TracingOptions) | EndpointsOptions.EndpointsOptions | undefined) {
    if (options !== undefined && "endpoints" in options && options.endpoints !== undefined) {
      return yield* Endpoints.make(options as EndpointsOptions.EndpointsOptions, build)
    }
    const dialer = yield* Dialer
    const resolved = yield* resolveOptions(options, dialer.address)
    // `retry` also covers opening the first `pool.initialSize` connections, so
    // a client may start before its server (every connect error has
    // `maybeProcessed: false`); each attempt builds a fresh pool.
    const client = yield* resolved.retry === undefined
      ? build(dialer, resolved)
      : Effect.retry(build(dialer, resolved), { schedule: resolved.retry, while: (e) => !e.maybeProcessed })
    return traced(client, options)
  }
) as any

// The client with trace propagation / client spans around `call` and
// `pipeline` (see `TracingOptions`); `run` goes through the traced `call`.
const traced = (client: Client["Service"], options: ClientTracing.TracingOptions | undefined): Client["Service"] => {
  const wrapped = ClientTracing.wrap(client.address, options, client.call, client.pipeline)
  if (wrapped.call === client.call) return client
  const call = wrapped.call
  return Client.of({
    ...client,
    call,
    pipeline: wrapped.pipeline,
    run: (command, ...[input, metadata]) =>
      Effect.flatMap(
        Command.request(command, input as Command.Input<typeof command>, metadata),
        (request) => Effect.flatMap(call(request), (response) => Command.decodeResponse(command, response))
      )
  })
}

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
 * // several endpoints: needs `Dialers` instead
 * const ClusterLive = Client.layer({ endpoints: ["10.0.0.1:7475", "10.0.0.2:7475"] }).pipe(
 *   Layer.provide(NodeClient.layerDialers)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: {
  (options: EndpointsOptions.EndpointsOptions): Layer.Layer<Client, ClientError, Dialers>
  (options?: (Options & ClientTracing.TracingOptions) | undefined): Layer.Layer<Client, ClientError, Dialer>
} = (options?: Options | undefined): Layer.Layer<Client, ClientError, any> =>
  Layer.effect(Client)(make(options as Options))

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
