/**
 * The client's `requestTimeout`: one fiber for the whole pool, not one per
 * connection. Internal to `Client`.
 *
 * Every call gets its deadline (queue time + `requestTimeout`) when it is
 * queued on a connection. The sweeper sleeps on `Clock` until the earliest
 * deadline among the connections' oldest calls, then closes each connection
 * whose oldest call is past it (`Connection.expire`), and sleeps again; with
 * no call outstanding anywhere it parks until a call arrives on an idle
 * connection (`wake`). All calls share one timeout, so a call queued later
 * never has an earlier deadline than the one slept for: a sleeping sweeper
 * need not be woken.
 *
 * @since 0.1.0
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { Connection } from "./ClientConnection.ts"
import { Park } from "./ClientPark.ts"

/** The sweeper (see the module notes). @internal */
export class Sweeper {
  private readonly connections: ReadonlyArray<Connection>
  private readonly clock: Clock.Clock
  private readonly isClosed: () => boolean
  private readonly parked: Park

  constructor(connections: ReadonlyArray<Connection>, clock: Clock.Clock, isClosed: () => boolean) {
    this.connections = connections
    this.clock = clock
    this.isClosed = isClosed
    this.parked = new Park(() => this.isClosed() || this.earliest() < Infinity)
  }

  /** A call arrived on an idle connection, or the pool closed: resumes a parked sweeper. */
  wake(): void {
    this.parked.wake()
  }

  private earliest(): number {
    let next = Infinity
    for (let i = 0; i < this.connections.length; i++) {
      const deadline = this.connections[i]!.deadline
      if (deadline < next) next = deadline
    }
    return next
  }

  /** The fiber: expire, then sleep until the next deadline or park. */
  readonly run: Effect.Effect<void> = Effect.suspend(() => {
    if (this.isClosed()) return Effect.void
    const now = this.clock.currentTimeMillisUnsafe()
    // A copy: an expired connection leaves the pool's list.
    const connections = Array.from(this.connections)
    for (let i = 0; i < connections.length; i++) connections[i]!.expire(now)
    const next = this.earliest()
    if (next === Infinity) return Effect.flatMap(this.parked.park, () => this.run)
    return Effect.flatMap(Effect.sleep(next - now), () => this.run)
  })
}
