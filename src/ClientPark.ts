/**
 * A pool fiber parked until there is work: the `requestTimeout` sweeper, the
 * `acquireTimeout` watchdog and the refill each wait on one. Internal to
 * `Client`.
 *
 * @since 0.1.0
 * @internal
 */
import * as Effect from "effect/Effect"

/** `park` resumes at once when `ready()` holds, else when `wake` is called. @internal */
export class Park {
  private resume: ((effect: Effect.Effect<void>) => void) | undefined
  readonly park: Effect.Effect<void>

  constructor(ready: () => boolean) {
    this.park = Effect.callback<void>((resume) => {
      if (ready()) return resume(Effect.void)
      this.resume = resume
    })
  }

  /** Resumes the parked fiber, if any; it runs inline, until it parks again. */
  wake(): void {
    const resume = this.resume
    if (resume === undefined) return
    this.resume = undefined
    resume(Effect.void)
  }
}
