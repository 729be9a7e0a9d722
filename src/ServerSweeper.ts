/**
 * One server-wide sweeper for every deadline, rather than a watchdog fiber or
 * a timer per connection. Internal to `Server`.
 *
 * It sleeps (on `Clock`, so `TestClock` drives it) until the earliest
 * deadline of any connection, or for the shortest timeout, since a deadline
 * that starts later is at least that far off. Deadlines only move later
 * while it sleeps. An expired connection is destroyed (rather than ended: a
 * peer that does not read would keep an ended socket open), the batch fiber
 * it may have interrupted, and the timeout reported.
 *
 * @since 0.1.0
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { Reading, Writing } from "./ServerBatch.ts"
import type { Connection, Shared } from "./ServerConnection.ts"
import * as Errors from "./ServerError.ts"

type Kind = "Idle" | "Read" | "Write"

/** @internal */
export const make = (shared: Shared) => {
  const { idleTimeout, timeout } = shared.options
  let expiredKind: Kind = "Idle"
  const deadlineOf = (conn: Connection): number => {
    if (conn.phase === Reading) {
      let deadline = Infinity
      if (idleTimeout > 0) {
        deadline = conn.lastActivity + idleTimeout
        expiredKind = "Idle"
      }
      if (timeout > 0 && conn.frameStartedAt >= 0 && conn.frameStartedAt + timeout < deadline) {
        deadline = conn.frameStartedAt + timeout
        expiredKind = "Read"
      }
      return deadline
    }
    if (conn.phase === Writing && timeout > 0) {
      expiredKind = "Write"
      return conn.writeStartedAt + timeout
    }
    return Infinity
  }
  const expire = (conn: Connection, kind: Kind) => {
    // Built when it happens: an Error made up front would hold its stack for the connection's life.
    const error = new Errors.Timeout({ kind, after: Duration.millis(kind === "Idle" ? idleTimeout : timeout) })
    conn.timedOut = error
    // Destroyed before the interruption runs the writer's release, which would end it gracefully.
    conn.io.destroy()
    conn.interrupt()
    shared.runFork(shared.metrics.report(error))
  }
  return Effect.fnUntraced(function*(connections: Iterable<Connection>) {
    if (idleTimeout === 0 && timeout === 0) return
    const clock = yield* Clock.Clock
    const recheck = Math.min(idleTimeout || Infinity, timeout || Infinity)
    while (true) {
      const now = clock.currentTimeMillisUnsafe()
      let next = now + recheck
      for (const conn of connections) {
        if (conn.timedOut !== undefined) continue
        const deadline = deadlineOf(conn)
        if (deadline <= now) expire(conn, expiredKind)
        else if (deadline < next) next = deadline
      }
      yield* Effect.sleep(next - now)
    }
  })
}
