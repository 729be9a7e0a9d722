/**
 * The client service: its shape (`call`, `pipeline`, `run`, `stats`), the
 * `Stats` snapshot and `ResponseBatch`. Re-exported by `Client`, which builds
 * it (`Client.make`).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { ClientError } from "./ClientError.ts"
import type * as Command from "./Command.ts"
import type * as EndpointsOptions from "./EndpointsOptions.ts"
import type * as Request from "./Request.ts"
import type * as Response from "./Response.ts"

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
  /** A multi-endpoint client's endpoints (the figures above are their sums). */
  readonly endpoints?: ReadonlyArray<EndpointsOptions.EndpointStats> | undefined
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
