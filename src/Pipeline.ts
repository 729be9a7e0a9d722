/**
 * Go's `Pipeline` as an immutable value: `call` adds a request, `reset`
 * empties it, `exec` sends every request in one write on one connection and
 * returns the replies in request order (a `ResponseBatch`).
 *
 * Unlike Go's mutable `*Pipeline`, `call` and `reset` return a new pipeline
 * and never change the one they are given, so a pipeline can be built once
 * and executed many times, or shared between fibers. Adding a request is O(1)
 * (the requests are a persistent list); `exec` lays them out once.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Predicate from "effect/Predicate"
import * as Client from "./Client.ts"
import type * as Request from "./Request.ts"

const TypeId = "~quasizero/Pipeline"

/**
 * An immutable list of requests to send together.
 *
 * @example
 * ```ts
 * import { Pipeline, Request } from "quasizero"
 * const p = Pipeline.make(Request.makeUnsafe(1), Request.makeUnsafe(2, { payload: "x" }))
 * p.size // 2
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Pipeline extends Pipeable, Iterable<Request.Request> {
  readonly [TypeId]: typeof TypeId
  /** Number of requests. */
  readonly size: number
}

class PipelineImpl implements Pipeline {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly size: number
  // The last request and the pipeline before it (a persistent list).
  readonly last: Request.Request | undefined
  readonly previous: PipelineImpl | undefined
  constructor(last: Request.Request | undefined, previous: PipelineImpl | undefined) {
    this.last = last
    this.previous = previous
    this.size = previous === undefined ? 0 : previous.size + 1
  }
  toArray(): Array<Request.Request> {
    const out: Array<Request.Request> = []
    out.length = this.size
    let node: PipelineImpl | undefined = this.previous
    let last = this.last
    for (let i = this.size - 1; i >= 0; i--) {
      out[i] = last!
      last = node!.last
      node = node!.previous
    }
    return out
  }
  [Symbol.iterator](): Iterator<Request.Request> {
    return this.toArray()[Symbol.iterator]()
  }
  pipe() {
    return pipeArguments(this, arguments)
  }
}

/**
 * The empty pipeline.
 *
 * @example
 * ```ts
 * import { Pipeline } from "quasizero"
 * Pipeline.empty.size // 0
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const empty: Pipeline = new PipelineImpl(undefined, undefined)

/**
 * `true` for a `Pipeline`.
 *
 * @example
 * ```ts
 * import { Pipeline } from "quasizero"
 * Pipeline.isPipeline(Pipeline.empty) // true
 * ```
 *
 * @since 0.1.0
 * @category guards
 */
export const isPipeline = (u: unknown): u is Pipeline => Predicate.hasProperty(u, TypeId)

/**
 * Returns a pipeline with `request` added at the end (Go's `Pipeline.Call`).
 *
 * @example
 * ```ts
 * import { Pipeline, Request } from "quasizero"
 * const p = Pipeline.empty.pipe(Pipeline.call(Request.makeUnsafe(1)), Pipeline.call(Request.makeUnsafe(1)))
 * p.size // 2
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const call: {
  (request: Request.Request): (self: Pipeline) => Pipeline
  (self: Pipeline, request: Request.Request): Pipeline
} = dual(2, (self: Pipeline, request: Request.Request): Pipeline => new PipelineImpl(request, self as PipelineImpl))

/**
 * A pipeline of the given requests.
 *
 * @example
 * ```ts
 * import { Pipeline, Request } from "quasizero"
 * const p = Pipeline.make(Request.makeUnsafe(1), Request.makeUnsafe(1))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (...requests: ReadonlyArray<Request.Request>): Pipeline => fromIterable(requests)

/**
 * A pipeline of the requests of an iterable, in order.
 *
 * @example
 * ```ts
 * import { Pipeline, Request } from "quasizero"
 * const p = Pipeline.fromIterable([1, 2, 3].map(() => Request.makeUnsafe(1)))
 * p.size // 3
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromIterable = (requests: Iterable<Request.Request>): Pipeline => {
  let out = empty
  for (const request of requests) out = call(out, request)
  return out
}

/**
 * The empty pipeline (Go's `Pipeline.Reset`; `self` is unchanged).
 *
 * @example
 * ```ts
 * import { Pipeline, Request } from "quasizero"
 * Pipeline.reset(Pipeline.make(Request.makeUnsafe(1))).size // 0
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const reset = (_self: Pipeline): Pipeline => empty

/**
 * The requests, in order.
 *
 * @example
 * ```ts
 * import { Pipeline, Request } from "quasizero"
 * Pipeline.requests(Pipeline.make(Request.makeUnsafe(7)))[0]!.code // 7
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const requests = (self: Pipeline): ReadonlyArray<Request.Request> => (self as PipelineImpl).toArray()

/**
 * Sends every request in one write on one connection of the given client;
 * succeeds with the replies in request order (Go's `Pipeline.Exec`). An empty
 * pipeline succeeds with `[]` without touching a connection.
 *
 * @example
 * ```ts
 * import { Client, Pipeline, Request } from "quasizero"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const client = yield* Client.Client
 *   const batch = yield* Pipeline.make(Request.makeUnsafe(1), Request.makeUnsafe(1)).pipe(Pipeline.execWith(client))
 *   return batch.length // 2
 * })
 * ```
 *
 * @since 0.1.0
 * @category execution
 */
export const execWith: {
  (client: Client.Client["Service"]): (self: Pipeline) => Effect.Effect<Client.ResponseBatch, Client.ClientError>
  (self: Pipeline, client: Client.Client["Service"]): Effect.Effect<Client.ResponseBatch, Client.ClientError>
} = dual(
  2,
  (self: Pipeline, client: Client.Client["Service"]): Effect.Effect<Client.ResponseBatch, Client.ClientError> =>
    client.pipeline(requests(self))
)

/**
 * `execWith` on the `Client` in context.
 *
 * @example
 * ```ts
 * import { Pipeline, Request } from "quasizero"
 * const program = Pipeline.exec(Pipeline.make(Request.makeUnsafe(1), Request.makeUnsafe(2, { payload: "x" })))
 * ```
 *
 * @since 0.1.0
 * @category execution
 */
export const exec = (self: Pipeline): Effect.Effect<Client.ResponseBatch, Client.ClientError, Client.Client> =>
  Client.Client.use((client) => client.pipeline(requests(self)))
