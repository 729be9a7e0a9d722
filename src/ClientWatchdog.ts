/**
 * The client's `acquireTimeout`: one fiber for the whole pool, not one per
 * waiting caller. Internal to `Client`.
 *
 * A caller that finds no free slot waits in the pool's FIFO with a deadline
 * (queue time + `acquireTimeout`). The watchdog sleeps on `Clock` until the
 * oldest waiter's deadline, fails it with `AcquireTimeout` (never sent, so
 * `maybeProcessed: false`) once it passed, and looks again; with no waiter it
 * parks until one arrives (`wake`). All waiters share one timeout, so a later
 * waiter never has an earlier deadline than the one slept for.
 *
 * @since 0.1.0
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { AcquireTimeout, ClientError } from "./ClientError.ts"
import { Park } from "./ClientPark.ts"
import type { Waiters } from "./ClientWaiters.ts"

/** The watchdog (see the module notes). @internal */
export class Watchdog {
  private readonly waiters: Waiters
  private readonly clock: Clock.Clock
  private readonly address: string
  private readonly timeout: Duration.Duration
  private readonly timeoutMillis: number
  private readonly isClosed: () => boolean
  private readonly parked: Park

  constructor(
    waiters: Waiters,
    clock: Clock.Clock,
    address: string,
    timeout: Duration.Duration,
    isClosed: () => boolean
  ) {
    this.waiters = waiters
    this.clock = clock
    this.address = address
    this.timeout = timeout
    this.timeoutMillis = Duration.toMillis(timeout)
    this.isClosed = isClosed
    this.parked = new Park(() => this.isClosed() || this.waiters.live > 0)
  }

  /** A caller started waiting, or the pool closed: resumes a parked watchdog (inline, until it parks again). */
  wake(): void {
    this.parked.wake()
  }

  /** The fiber: fails waiters whose deadline passed, oldest first; ends at once when `acquireTimeout` is off. */
  readonly run: Effect.Effect<void> = Effect.suspend(() => {
    if (this.isClosed() || this.timeoutMillis === 0) return Effect.void
    const waiter = this.waiters.oldest()
    if (waiter === undefined) return Effect.flatMap(this.parked.park, () => this.run)
    const remaining = waiter.deadline - this.clock.currentTimeMillisUnsafe()
    if (remaining > 0) return Effect.flatMap(Effect.sleep(remaining), () => this.run)
    this.waiters.fail(
      1,
      Exit.fail(
        new ClientError({
          reason: new AcquireTimeout({ address: this.address, timeout: this.timeout, maybeProcessed: false })
        })
      )
    )
    return this.run
  })
}
