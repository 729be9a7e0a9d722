/**
 * The FIFO of callers waiting for a free slot in the client's pool. Internal
 * to `Client`.
 *
 * A waiter leaves the queue when it is served (handed to a connection),
 * failed, or cancelled (its caller was interrupted: it is never sent).
 * Cancelled waiters are dropped lazily, when they reach the head, and all at
 * once when no live waiter is left, so the queue never keeps requests of
 * callers that are gone.
 *
 * @since 0.1.0
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type { Resume } from "./ClientEntry.ts"
import type { ClientError } from "./ClientError.ts"
import type * as Request from "./Request.ts"

/** A caller waiting for a slot; `resume` is cleared once it leaves the queue. @internal */
export class Waiter {
  resume: Resume | undefined
  readonly request: Request.Request | undefined
  readonly requests: ReadonlyArray<Request.Request> | undefined
  /** Clock time after which it fails with `AcquireTimeout` (`Infinity`: never). */
  readonly deadline: number
  constructor(
    request: Request.Request | undefined,
    requests: ReadonlyArray<Request.Request> | undefined,
    resume: Resume,
    deadline: number
  ) {
    this.request = request
    this.requests = requests
    this.resume = resume
    this.deadline = deadline
  }
}

/** The queue (see the module notes). @internal */
export class Waiters {
  // Oldest first: `queue[head..]`, `live` of them still waiting.
  private queue: Array<Waiter> = []
  private head = 0
  /** Callers still waiting. */
  live = 0

  /** Queues a caller; returns its cancellation (for `Effect.callback`). */
  push(waiter: Waiter): Effect.Effect<void> {
    this.queue.push(waiter)
    this.live++
    return Effect.sync(() => {
      if (waiter.resume === undefined) return
      waiter.resume = undefined
      this.leave()
    })
  }

  /** The oldest live waiter, left in the queue; `undefined` when none. */
  oldest(): Waiter | undefined {
    while (this.head < this.queue.length) {
      const waiter = this.queue[this.head]!
      if (waiter.resume !== undefined) {
        if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
          this.queue = this.queue.slice(this.head)
          this.head = 0
        }
        return waiter
      }
      this.queue[this.head++] = undefined as unknown as Waiter
    }
    this.queue.length = 0
    this.head = 0
    return undefined
  }

  /** Takes the oldest live waiter out of the queue (requires `live > 0`); call its `resume`. */
  take(): Waiter {
    const waiter = this.oldest()!
    const taken = new Waiter(waiter.request, waiter.requests, waiter.resume!, waiter.deadline)
    waiter.resume = undefined
    this.leave()
    return taken
  }

  /** Fails the oldest `count` waiters with `exit`. */
  fail(count: number, exit: Exit.Exit<never, ClientError>): void {
    for (; count > 0 && this.live > 0; count--) this.take().resume!(exit)
  }

  // One live waiter fewer; the last one gone, drop the others with their requests.
  private leave(): void {
    if (--this.live === 0) {
      this.queue.length = 0
      this.head = 0
    }
  }
}
