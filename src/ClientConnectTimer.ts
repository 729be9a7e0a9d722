/**
 * The client's `connectTimeout`: one fiber for the whole pool, not a race per
 * dial. Internal to `Client`.
 *
 * `Effect.timeoutOrElse` forks two fibers per dial (the dial and a sleep),
 * a `setTimeout` and an interruption of the loser: about 12 KiB of
 * short-lived objects per dial, which a burst of dials turns into young
 * generation V8 keeps (RSS). Here a dial runs in one fiber of its own (the
 * pool's, see `Pool.start`) and joins a FIFO with its deadline (dial time +
 * `connectTimeout`); the timer fiber sleeps on `Clock` until the oldest
 * unsettled deadline and interrupts that dial once it passed; the dial's
 * exit then reads `timedOut` (`settle`).
 * All dials share one timeout, so a later dial never has an earlier deadline
 * than the one slept for.
 *
 * @since 0.1.0
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { Park } from "./ClientPark.ts"

/** One dial under way. @internal */
export class Dial {
  /** Unset once the dial settled (succeeded, failed or was interrupted). */
  fiber: Fiber.Fiber<unknown, unknown> | undefined
  timedOut = false
  readonly deadline: number
  constructor(fiber: Fiber.Fiber<unknown, unknown>, deadline: number) {
    this.fiber = fiber
    this.deadline = deadline
  }
}

/** The timer (see the module notes). @internal */
export class ConnectTimer<E> {
  private readonly clock: Clock.Clock
  private readonly timeoutMillis: number
  private readonly timedOut: Exit.Exit<never, E>
  // Dials in start order, so in deadline order: `dials[head..]`.
  private dials: Array<Dial> = []
  private head = 0
  private readonly parked: Park

  constructor(clock: Clock.Clock, timeoutMillis: number, timedOut: Exit.Exit<never, E>) {
    this.clock = clock
    this.timeoutMillis = timeoutMillis
    this.timedOut = timedOut
    this.parked = new Park(() => this.pending)
  }

  private get pending(): boolean {
    this.drop()
    return this.head < this.dials.length
  }

  // Forgets the settled dials at the head, so a burst of dials is not kept
  // until the timer next wakes.
  private drop(): void {
    const dials = this.dials
    while (this.head < dials.length && dials[this.head]!.fiber === undefined) {
      dials[this.head++] = undefined as unknown as Dial
    }
    if (this.head === dials.length) {
      dials.length = 0
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= dials.length) {
      this.dials = dials.slice(this.head)
      this.head = 0
    }
  }

  /**
   * Starts the connect timeout of `fiber`, a dial's own fiber: past its
   * deadline the timer interrupts it. Pass its exit through `settle`.
   */
  track(fiber: Fiber.Fiber<unknown, unknown>): Dial {
    const dial = new Dial(fiber, this.clock.currentTimeMillisUnsafe() + this.timeoutMillis)
    this.dials.push(dial)
    this.parked.wake()
    return dial
  }

  /** The dial ended with `exit`: its outcome, `timedOut` when the timer interrupted it. */
  settle<A>(dial: Dial, exit: Exit.Exit<A, E>): Exit.Exit<A, E> {
    dial.fiber = undefined
    if (this.dials[this.head] === dial) this.drop()
    return dial.timedOut ? this.timedOut : exit
  }

  /** The fiber: interrupts dials past their deadline, oldest first; parks while none is under way. */
  readonly run: Effect.Effect<void> = Effect.suspend(() => {
    if (!this.pending) return Effect.flatMap(this.parked.park, () => this.run)
    const dial = this.dials[this.head]!
    const remaining = dial.deadline - this.clock.currentTimeMillisUnsafe()
    if (remaining > 0) return Effect.flatMap(Effect.sleep(remaining), () => this.run)
    dial.timedOut = true
    dial.fiber!.interruptUnsafe()
    // An interruption that does not settle the dial at once must not be retried in a loop.
    if (dial.fiber !== undefined) {
      this.dials[this.head++] = undefined as unknown as Dial
    }
    return this.run
  })
}
