/**
 * The multi-endpoint client (`Client.make({ endpoints })`): one
 * single-endpoint client (its own pool, today's semantics) per address, a
 * `Balancer` choosing the endpoint of each call, health (ejection and
 * probing) and discovery (a `Resolver` re-run on a schedule). Internal to
 * `Client`; the options and stats are re-exported by it.
 *
 * Invariants:
 * - an endpoint is `"up"` (a balancing candidate), `"ejected"` (out of the
 *   candidates; one probe fiber sleeps the `health.eject` schedule and calls
 *   `health.probe`, whose reply, error reply included, readmits it),
 *   `"draining"` (gone from the resolver's answer: no new call, closed once
 *   its in-flight calls are done) or `"closed"` (final);
 * - a call that fails with a connect error, a closed connection or a request
 *   timeout ejects its endpoint at once, so the next calls go elsewhere;
 * - when no endpoint is up, calls go to the ejected ones in turn (they fail
 *   fast with their connect error, or succeed and readmit the endpoint);
 * - `retry` wraps the whole pick-and-call, so a call that failed with
 *   `maybeProcessed: false` is retried on another endpoint (the failed one
 *   was ejected); a call with `maybeProcessed: true` is never replayed.
 *
 * @since 0.2.0
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import * as Balancer from "./Balancer.ts"
import type { Client, ResponseBatch } from "./Client.ts"
import { ClientError, ConnectFailed, NoEndpoint } from "./ClientError.ts"
import type { ResolvedOptions } from "./ClientOptions.ts"
import * as ClientTracing from "./ClientTracing.ts"
import * as Command from "./Command.ts"
import { type Dialer, Dialers } from "./Dialer.ts"
import { type EndpointsOptions, type EndpointStats, resolveEndpointsOptions } from "./EndpointsOptions.ts"
import type * as Request from "./Request.ts"
import * as Resolver from "./Resolver.ts"

/** @since 0.2.0 @internal */
export const callsTotal = Metric.counter("quasizero_client_calls_total", {
  description: "Calls sent, per endpoint (pipelines count once)",
  incremental: true
})
/** @since 0.2.0 @internal */
export const errorsTotal = Metric.counter("quasizero_client_errors_total", {
  description: "Calls failed with a ClientError, per endpoint",
  incremental: true
})
/** @since 0.2.0 @internal */
export const ejectionsTotal = Metric.counter("quasizero_client_ejections_total", {
  description: "Endpoints ejected after a connect error, a broken connection or a request timeout",
  incremental: true
})

/** Errors that say the endpoint, not the call, is the problem. */
const ejects = (error: ClientError): boolean => {
  const tag = error.reason._tag
  return tag === "ConnectFailed" || tag === "ConnectTimeout" || tag === "ConnectionClosed"
    || tag === "RequestTimeout"
}

type Service = Client["Service"]

class Endpoint implements Balancer.Node {
  readonly address: string
  readonly client: Service
  readonly scope: Scope.Closeable
  state: "up" | "ejected" | "draining" | "closed" = "up"
  inflight = 0
  calls = 0
  errors = 0
  ejections = 0
  /** Bumped on each ejection: a call that started before it cannot readmit. */
  epoch = 0
  // What the metrics have been told so far (they are updated in batches:
  // a metric update costs ~0.2 µs, a fair part of a call).
  flushedCalls = 0
  flushedErrors = 0
  readonly callsMetric: Metric.Metric<number, unknown>
  readonly errorsMetric: Metric.Metric<number, unknown>
  readonly ejectionsMetric: Metric.Metric<number, unknown>
  constructor(address: string, client: Service, scope: Scope.Closeable) {
    this.address = address
    this.client = client
    this.scope = scope
    const attributes = { endpoint: address }
    this.callsMetric = Metric.withAttributes(callsTotal, attributes)
    this.errorsMetric = Metric.withAttributes(errorsTotal, attributes)
    this.ejectionsMetric = Metric.withAttributes(ejectionsTotal, attributes)
  }
  flush(services: Context.Context<never>): void {
    if (this.calls !== this.flushedCalls) {
      this.callsMetric.updateUnsafe(this.calls - this.flushedCalls, services)
      this.flushedCalls = this.calls
    }
    if (this.errors !== this.flushedErrors) {
      this.errorsMetric.updateUnsafe(this.errors - this.flushedErrors, services)
      this.flushedErrors = this.errors
    }
  }
}

/** How often the per-endpoint call and error counts reach the metrics. */
const flushInterval = Duration.seconds(1)

/**
 * Builds a multi-endpoint client; `build` is the single-endpoint client
 * constructor (`Client.make` without `retry`).
 *
 * @since 0.2.0
 * @internal
 */
export const make = Effect.fnUntraced(function*(
  options: EndpointsOptions,
  build: (dialer: Dialer["Service"], resolved: ResolvedOptions) => Effect.Effect<Service, ClientError, Scope.Scope>
) {
  const dialers = yield* Dialers
  const source = options.endpoints
  const label = Resolver.isResolver(source) ? "(resolved endpoints)" : source.join(",")
  const { balancer, ejectSchedule, probeRequest, resolved } = yield* resolveEndpointsOptions(options, label)
  const perEndpoint: ResolvedOptions = { ...resolved, retry: undefined }
  const floorless: ResolvedOptions = { ...perEndpoint, pool: { ...perEndpoint.pool, initialSize: 0 } }

  const scope = yield* Scope.fork(yield* Effect.scope)
  const services = yield* Effect.context<never>()
  const endpoints = new Map<string, Endpoint>()
  const picker = Balancer.makePicker<Endpoint>(balancer)
  let fallback = 0

  const resolveFailed = (cause: unknown) =>
    new ClientError({ reason: new ConnectFailed({ address: label, cause, maybeProcessed: false }) })
  const noEndpoint = Exit.fail(new ClientError({ reason: new NoEndpoint({ address: label, maybeProcessed: false }) }))

  // -- health ----------------------------------------------------------------

  const readmit = (endpoint: Endpoint) => {
    if (endpoint.state !== "ejected") return
    endpoint.state = "up"
    picker.add(endpoint)
  }

  const probe = (endpoint: Endpoint, first: ClientError) =>
    Effect.gen(function*() {
      let error = first
      let step = yield* Schedule.toStepWithSleep(ejectSchedule)
      while (endpoint.state === "ejected") {
        if (Exit.isFailure(yield* Effect.exit(step(error)))) {
          yield* Effect.sleep(Duration.seconds(1))
          step = yield* Schedule.toStepWithSleep(ejectSchedule)
          continue
        }
        if (endpoint.state !== "ejected") return
        const epoch = endpoint.epoch
        const exit = yield* Effect.exit(endpoint.client.call(probeRequest))
        if (Exit.isSuccess(exit)) {
          if (endpoint.epoch === epoch) readmit(endpoint)
          return
        }
        const failure = Cause.findErrorOption(exit.cause)
        if (failure._tag === "Some") error = failure.value
      }
    })

  const eject = (endpoint: Endpoint, error: ClientError): Effect.Effect<void> => {
    if (endpoint.state !== "up") return Effect.void
    endpoint.state = "ejected"
    endpoint.ejections++
    endpoint.epoch++
    endpoint.ejectionsMetric.updateUnsafe(1, services)
    picker.remove(endpoint)
    // A probe belongs to no caller's trace (its fiber would inherit `make`'s span).
    return Effect.asVoid(
      Effect.forkIn(Effect.provideService(probe(endpoint, error), Tracer.DisablePropagation, true), scope)
    )
  }

  const close = (endpoint: Endpoint): Effect.Effect<void> => {
    if (endpoint.state === "closed") return Effect.void
    endpoint.state = "closed"
    endpoint.flush(services)
    picker.remove(endpoint)
    if (endpoints.get(endpoint.address) === endpoint) endpoints.delete(endpoint.address)
    return Effect.asVoid(Effect.forkIn(Scope.close(endpoint.scope, Exit.void), scope))
  }

  // -- calls -----------------------------------------------------------------

  const pick = (request: Request.Request | undefined): Endpoint | undefined => {
    const endpoint = picker.pick(request)
    if (endpoint !== undefined) return endpoint
    // None up: try the ejected ones in turn.
    const ejected: Array<Endpoint> = []
    for (const e of endpoints.values()) if (e.state === "ejected") ejected.push(e)
    if (ejected.length === 0) return undefined
    return ejected[fallback++ % ejected.length]
  }

  const settle = (endpoint: Endpoint, epoch: number, exit: Exit.Exit<unknown, ClientError>): Effect.Effect<void> => {
    endpoint.inflight--
    let effect: Effect.Effect<void> = Effect.void
    if (Exit.isSuccess(exit)) {
      if (endpoint.state === "ejected" && endpoint.epoch === epoch) readmit(endpoint)
    } else {
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "Some") {
        endpoint.errors++
        if (ejects(error.value)) effect = eject(endpoint, error.value)
      }
    }
    if (endpoint.state === "draining" && endpoint.inflight === 0) return Effect.andThen(effect, close(endpoint))
    return effect
  }

  const send = <A>(
    request: Request.Request | undefined,
    f: (client: Service) => Effect.Effect<A, ClientError>
  ): Effect.Effect<A, ClientError> =>
    Effect.suspend(() => {
      const endpoint = pick(request)
      if (endpoint === undefined) return noEndpoint
      endpoint.inflight++
      endpoint.calls++
      const epoch = endpoint.epoch
      return Effect.onExit(f(endpoint.client), (exit) => settle(endpoint, epoch, exit))
    })

  const callOnce = (request: Request.Request) => send(request, (client) => client.call(request))
  const pipelineOnce = (requests: ReadonlyArray<Request.Request>): Effect.Effect<ResponseBatch, ClientError> =>
    requests.length === 0 ? Effect.succeed([]) : send(requests[0], (client) => client.pipeline(requests))

  const retryOptions = resolved.retry === undefined ? undefined : {
    schedule: resolved.retry,
    while: (error: ClientError) => !error.maybeProcessed
  }
  const call = retryOptions === undefined
    ? callOnce
    : (request: Request.Request) => Effect.retry(callOnce(request), retryOptions)
  const pipeline = retryOptions === undefined
    ? pipelineOnce
    : (requests: ReadonlyArray<Request.Request>) => Effect.retry(pipelineOnce(requests), retryOptions)

  // -- discovery -------------------------------------------------------------

  // Opens one endpoint's pool. One whose first connections fail is added
  // ejected (with no floor: its pool opens connections on demand), so that
  // one server down does not fail the whole client.
  const add = (address: string): Effect.Effect<ClientError | undefined> =>
    Effect.gen(function*() {
      const existing = endpoints.get(address)
      if (existing !== undefined) {
        if (existing.state === "draining") {
          existing.state = "up"
          picker.add(existing)
        }
        return undefined
      }
      const dialer = yield* dialers.dialer(address)
      const endpointScope = yield* Scope.fork(scope)
      const built = yield* Effect.exit(Scope.provide(build(dialer, perEndpoint), endpointScope))
      let client: Service
      let error: ClientError | undefined
      if (Exit.isSuccess(built)) {
        client = built.value
      } else {
        const failure = Cause.findErrorOption(built.cause)
        if (failure._tag === "None") return yield* Effect.failCause(built.cause as Cause.Cause<never>)
        error = failure.value
        client = yield* Scope.provide(build(dialer, floorless), endpointScope)
      }
      if (endpoints.has(address)) {
        yield* Scope.close(endpointScope, Exit.void)
        return undefined
      }
      // Traced per endpoint: each attempt is a span naming its endpoint.
      const wrapped = ClientTracing.wrap(address, options, client.call, client.pipeline)
      if (wrapped.call !== client.call) client = { ...client, call: wrapped.call, pipeline: wrapped.pipeline }
      const endpoint = new Endpoint(address, client, endpointScope)
      endpoints.set(address, endpoint)
      picker.add(endpoint)
      if (error !== undefined) yield* eject(endpoint, error)
      return error
    }).pipe(Effect.catch((error: ClientError) => Effect.succeed(error)))

  const reconcile = (addresses: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const wanted = new Set(addresses)
      for (const endpoint of Array.from(endpoints.values())) {
        if (wanted.has(endpoint.address) || endpoint.state === "draining") continue
        endpoint.state = "draining"
        picker.remove(endpoint)
        if (endpoint.inflight === 0) yield* close(endpoint)
      }
      return yield* Effect.forEach(wanted, add, { concurrency: "unbounded" })
    })

  const flushAll = Effect.sync(() => {
    for (const endpoint of endpoints.values()) endpoint.flush(services)
  })
  yield* Scope.addFinalizer(
    scope,
    Effect.sync(() => {
      for (const endpoint of endpoints.values()) {
        endpoint.flush(services)
        endpoint.state = "closed"
      }
      picker.nodes.length = 0
    })
  )
  yield* Effect.forkIn(Effect.repeat(Effect.andThen(Effect.sleep(flushInterval), flushAll), Schedule.forever), scope)

  const resolver = Resolver.isResolver(source) ? source : Resolver.staticResolver(source)
  const first = yield* Effect.mapError(resolver.resolve, resolveFailed)
  const errors = yield* Effect.onError(reconcile(first), () => Scope.close(scope, Exit.void))
  const firstError = errors.find((e) => e !== undefined)
  if (firstError !== undefined && errors.every((e) => e !== undefined)) {
    yield* Scope.close(scope, Exit.void)
    return yield* Effect.fail(firstError)
  }
  if (Resolver.isResolver(source)) {
    yield* Effect.forkIn(
      Effect.gen(function*() {
        const step = yield* Schedule.toStepWithSleep(resolver.schedule)
        while (true) {
          if (Exit.isFailure(yield* Effect.exit(step(undefined)))) return
          const exit = yield* Effect.exit(resolver.resolve)
          if (Exit.isSuccess(exit)) yield* reconcile(exit.value)
          else yield* Effect.logDebug("quasizero: endpoint resolution failed", exit.cause)
        }
      }),
      scope
    )
  }

  const service: Service = {
    address: label,
    call,
    pipeline,
    run: (command, ...[input, metadata]) =>
      Effect.flatMap(
        Command.request(command, input as Command.Input<typeof command>, metadata),
        (request) => Effect.flatMap(call(request), (response) => Command.decodeResponse(command, response))
      ),
    stats: Effect.gen(function*() {
      yield* flushAll
      let open = 0
      let idle = 0
      let inflight = 0
      let waiting = 0
      const list: Array<EndpointStats> = []
      for (const endpoint of Array.from(endpoints.values())) {
        if (endpoint.state === "closed") continue
        const s = yield* endpoint.client.stats
        open += s.open
        idle += s.idle
        inflight += s.inflight
        waiting += s.waiting
        list.push({
          ...s,
          address: endpoint.address,
          state: endpoint.state,
          calls: endpoint.calls,
          errors: endpoint.errors,
          ejections: endpoint.ejections
        })
      }
      return { open, idle, inflight, waiting, endpoints: list }
    })
  }
  return service
})
