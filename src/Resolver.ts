/**
 * Discovery for a multi-endpoint client: where the endpoints are. A
 * `Resolver` is an effect returning the current addresses and a `Schedule`
 * on which it is run again; endpoints that appear are added, endpoints that
 * disappear are drained (their in-flight calls finish, no new call goes to
 * them) and closed. A resolution that fails keeps the current set. DNS
 * (A/AAAA, a Kubernetes headless Service) is `NodeResolver.dns`.
 * Re-exported by `Client`.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"

const TypeId = "~quasizero/Resolver"

/**
 * Where the endpoints are: `resolve` gives the addresses (`host:port`, as the
 * client's `Dialers` understand them), re-run after each delay of
 * `schedule`.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { Effect } from "effect"
 * const resolver: Client.Resolver = Client.resolver(Effect.succeed(["10.0.0.1:7475"]), { every: "30 seconds" })
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Resolver {
  readonly [TypeId]: typeof TypeId
  readonly resolve: Effect.Effect<ReadonlyArray<string>, unknown>
  readonly schedule: Schedule.Schedule<unknown, unknown>
}

/**
 * Whether `u` is a `Resolver`.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * Client.isResolver(["a:1"]) // false
 * ```
 *
 * @since 0.2.0
 * @category guards
 */
export const isResolver = (u: unknown): u is Resolver => typeof u === "object" && u !== null && TypeId in u

/**
 * A resolver from a user effect: `resolve` returns the addresses, re-run on
 * `schedule` (or `every` a fixed interval; default every 30 seconds).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { Effect, Schedule } from "effect"
 * const fromRegistry = Client.resolver(Effect.succeed(["10.0.0.1:7475", "10.0.0.2:7475"]), {
 *   schedule: Schedule.spaced("10 seconds")
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const resolver = (
  resolve: Effect.Effect<ReadonlyArray<string>, unknown>,
  options?: {
    readonly schedule?: Schedule.Schedule<unknown, unknown> | undefined
    readonly every?: Duration.Input | undefined
  } | undefined
): Resolver => ({
  [TypeId]: TypeId,
  resolve,
  schedule: options?.schedule ?? Schedule.spaced(options?.every ?? Duration.seconds(30))
})

/**
 * A fixed list: resolved once, never again.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const fixed = Client.staticResolver(["10.0.0.1:7475", "10.0.0.2:7475"])
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const staticResolver = (addresses: ReadonlyArray<string>): Resolver => ({
  [TypeId]: TypeId,
  resolve: Effect.succeed(addresses),
  schedule: Schedule.recurs(0)
})
