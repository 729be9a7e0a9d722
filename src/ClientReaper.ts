/**
 * The client pool's reaper strategy. Internal to `Client`.
 *
 * @since 0.1.0
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Pool from "effect/Pool"
import * as Schedule from "effect/Schedule"
import type * as ClientConnection from "./ClientConnection.ts"
import type { ClientError } from "./ClientError.ts"

type Connection = ClientConnection.Connection

// Go's reaper: every `reapInterval` (a `Schedule`), close the connections
// idle for at least `idleTimeout`. Those of the `initialSize` floor too: the
// pool replaces them with fresh ones, so that no connection, floor or not,
// stays idle long enough for the server's own idle timeout to close it under
// a call. `Pool.makeWithTTL` cannot express the pair: its usage strategy
// checks every `timeToLive`, so a connection idle for `ttl` closes anywhere
// between `ttl` and `2 * ttl`, with no separate period. Idle time is `Pool`'s
// own `idleSince`, read on the pool's Clock.
/** @internal */
export const reaper = (
  idleTimeout: Duration.Duration,
  reapInterval: Duration.Duration,
  clock: Clock.Clock
): Pool.Strategy<Connection, ClientError> => {
  const idleMillis = Duration.toMillis(idleTimeout)
  const reap = (pool: Pool.Pool<Connection, ClientError>): Effect.Effect<void> =>
    Effect.suspend(() => {
      const state = pool.state
      const expired = clock.currentTimeMillisUnsafe() - idleMillis
      const victims: Array<Connection> = []
      for (const item of state.items) {
        if (item.exit._tag !== "Success" || item.refCount > 0 || state.invalidated.has(item)) continue
        if (item.idleSince > expired) continue
        victims.push(item.exit.value)
      }
      return Effect.forEach(victims, (connection) => Pool.invalidate(pool, connection), { discard: true })
    })
  return {
    run: (pool) =>
      idleMillis === 0 ? Effect.void : Effect.asVoid(Effect.schedule(reap(pool), Schedule.spaced(reapInterval))),
    onAcquire: () => Effect.void,
    reclaim: () => Effect.undefined
  }
}
