/**
 * The client's `initialSize` floor, opened up front by `make`. Internal to
 * `Client`.
 *
 * Not `Effect.forEach` with a concurrency: that forks a fiber per element,
 * which here would only wait for the dial's own fiber (`Pool.start`); each
 * fiber that suspends costs Effect an `AsyncResource` besides, and a burst
 * of dials turns all of it into young generation V8 keeps.
 *
 * @since 0.1.0
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type { Connection } from "./ClientConnection.ts"
import type { ClientError } from "./ClientError.ts"
import type { Pool } from "./ClientPool.ts"

/**
 * Opens `count` connections, at most `concurrency` dials at once; fails with
 * the first failed dial (the others under way are interrupted, none more is
 * started). Interrupting it interrupts the dials under way.
 *
 * @internal
 */
export const fill = (pool: Pool, count: number, concurrency: number): Effect.Effect<void, ClientError> =>
  Effect.callback((resume) => {
    const running = new Set<Fiber.Fiber<Connection, ClientError>>()
    let started = 0
    let finished = 0
    let failure: Exit.Exit<never, ClientError> | undefined
    // Set while `next` starts dials: one that ends at once must not recurse.
    let starting = false
    const done = (exit: Exit.Exit<Connection, ClientError>) => {
      finished++
      if (exit._tag === "Failure" && failure === undefined) {
        failure = exit as Exit.Exit<never, ClientError>
        for (const fiber of running) fiber.interruptUnsafe()
        resume(failure)
      }
      if (!starting) next()
    }
    const next = () => {
      starting = true
      while (failure === undefined && started < count && started - finished < concurrency) {
        started++
        const fiber = pool.start(done)
        if (fiber !== undefined && fiber.pollUnsafe() === undefined) {
          running.add(fiber)
          fiber.addObserver(() => running.delete(fiber))
        }
      }
      starting = false
      if (failure === undefined && finished === count) resume(Effect.void)
    }
    next()
    return Effect.suspend(() => Fiber.interruptAll(running))
  })
