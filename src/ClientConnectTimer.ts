/**
 * The client's `connectTimeout`: one fiber for the whole pool, not a race per
 * dial. Internal to `Client`.
 *
 * `Effect.timeoutOrElse` forks two fibers per dial (the dial and a sleep),
 * a `setTimeout` and an interruption of the loser: about 12 KiB of
 * short-lived objects per dial, which a burst of dials turns into young
 * generation V8 keeps (RSS). Here a dial runs in one fiber of its own and
 * joins a FIFO with its deadline (dial time + `connectTimeout`); the timer
 * fiber sleeps on `Clock` until the oldest unsettled deadline and interrupts
 * that dial once it passed; the dial's caller then fails with `timedOut`.
 * All dials share one timeout, so a later dial never has an earlier deadline
 * than the one slept for.
 *
 * @since 0.1.0
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { Park } from "./ClientPark.ts"

/** One dial under way. */
class Dial {
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
   * `open` with the connect timeout: run in a fiber of its own (in the
   * caller's context), interrupted by the timer past its deadline, and then
   * failed with `timedOut` once it has exited. Interrupting the caller
   * interrupts the dial (and waits for it).
   */
  guard<A, R>(open: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.withFiber((parent) =>
      Effect.callback<A, E>((resume) => {
        const fiber = Effect.runForkWith(parent.context)(open as Effect.Effect<A, E>)
        const exit = fiber.pollUnsafe()
        if (exit !== undefined) return resume(exit)
        const dial = new Dial(fiber, this.clock.currentTimeMillisUnsafe() + this.timeoutMillis)
        this.dials.push(dial)
        this.parked.wake()
        fiber.addObserver((exit) => {
          dial.fiber = undefined
          if (this.dials[this.head] === dial) this.drop()
          resume(dial.timedOut ? this.timedOut : exit)
        })
        return Fiber.interrupt(fiber)
      })
    )
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
