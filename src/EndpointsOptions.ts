/**
 * The options of a multi-endpoint client (`Client.make({ endpoints })`),
 * their defaults and validation, and its per-endpoint stats. Re-exported by
 * `Client`.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Balancer from "./Balancer.ts"
import type { Stats } from "./Client.ts"
import { ClientError, InvalidOption } from "./ClientError.ts"
import { type Options, type ResolvedOptions, resolveOptions } from "./ClientOptions.ts"
import type * as ClientTracing from "./ClientTracing.ts"
import * as Request from "./Request.ts"
import * as Resolver from "./Resolver.ts"

/**
 * Options of a multi-endpoint client: `Client.Options` (applied to each
 * endpoint's pool; `retry` to the whole call, across endpoints) plus:
 *
 * - `endpoints`: the addresses (`host:port`), or a `Resolver`
 *   (`Client.resolver`, `NodeResolver.dns`) re-run on its schedule;
 * - `balancer`: `Client.leastInFlight` (default), `Client.roundRobin` or
 *   `Client.keyAffinity(...)`;
 * - `health.eject`: while an endpoint is ejected, the delays between its
 *   probes (input: the last error). Default: 250 ms doubling up to 10 s,
 *   jittered. A schedule that ends starts over after one second;
 * - `health.probe`: the request a probe sends; any reply (an error reply
 *   too) proves the endpoint alive. Default: code 0 with no payload (a Go
 *   or quasizero server answers "unknown command code 0").
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { Schedule } from "effect"
 * const options: Client.EndpointsOptions = {
 *   endpoints: ["10.0.0.1:7475", "10.0.0.2:7475", "10.0.0.3:7475"],
 *   balancer: Client.keyAffinity({ metadata: "tenant" }),
 *   health: { eject: Schedule.spaced("1 second") },
 *   requestTimeout: "2 seconds",
 *   retry: Schedule.recurs(2)
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface EndpointsOptions extends Options, ClientTracing.TracingOptions {
  readonly endpoints: ReadonlyArray<string> | Resolver.Resolver
  readonly balancer?: Balancer.Balancer | undefined
  readonly health?: {
    readonly eject?: Schedule.Schedule<unknown, ClientError> | undefined
    readonly probe?: Request.Request | undefined
  } | undefined
}

/**
 * One endpoint in `Client.stats` of a multi-endpoint client: its pool's
 * `Stats` plus its health and counters.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const up = (stats: Client.Stats) => (stats.endpoints ?? []).filter((e) => e.state === "up").length
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface EndpointStats extends Stats {
  readonly address: string
  readonly state: "up" | "ejected" | "draining"
  /** Calls sent to this endpoint (pipelines count once), ever. */
  readonly calls: number
  /** Of those, calls that failed with a `ClientError`. */
  readonly errors: number
  /** Times it was ejected. */
  readonly ejections: number
}

/**
 * Default `health.eject`: 250 ms doubling up to 10 s, ±20 % jitter.
 *
 * @since 0.2.0
 * @internal
 */
export const defaultEject: Schedule.Schedule<unknown, ClientError> = Schedule.exponential("250 millis", 2).pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(10)))),
  Schedule.jittered
)

const defaultProbe = Request.makeUnsafe(0)

/**
 * `EndpointsOptions` checked, with their defaults applied (`resolved`: the
 * per-endpoint `Client.Options`); fails with `InvalidOption` naming the
 * first bad one.
 *
 * @since 0.2.0
 * @internal
 */
export const resolveEndpointsOptions = (options: EndpointsOptions, label: string): Effect.Effect<{
  readonly resolved: ResolvedOptions
  readonly balancer: Balancer.Balancer
  readonly ejectSchedule: Schedule.Schedule<unknown, ClientError>
  readonly probeRequest: Request.Request
}, ClientError> =>
  Effect.gen(function*() {
    const resolved = yield* resolveOptions(options, label)
    const invalid = (option: string, value: unknown, expected: string) =>
      Effect.fail(
        new ClientError({
          reason: new InvalidOption({ address: label, option, value, expected, maybeProcessed: false })
        })
      )
    const source = options.endpoints
    if (!Resolver.isResolver(source) && (!Array.isArray(source) || source.some((a) => typeof a !== "string"))) {
      return yield* invalid("endpoints", source, "an array of addresses or a Client.Resolver")
    }
    const balancer = options.balancer ?? Balancer.leastInFlight
    if (!["LeastInFlight", "RoundRobin", "KeyAffinity"].includes((balancer as Balancer.Balancer)?._tag)) {
      return yield* invalid("balancer", balancer, "a Client.Balancer")
    }
    const ejectSchedule = options.health?.eject ?? defaultEject
    if (!Schedule.isSchedule(ejectSchedule)) return yield* invalid("health.eject", ejectSchedule, "a Schedule")
    return { resolved, balancer, ejectSchedule, probeRequest: options.health?.probe ?? defaultProbe }
  })
