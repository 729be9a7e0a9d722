/**
 * The fiber part of a batch: what `ServerBatch.step` could not do
 * synchronously (a handler that suspends, a write waiting for drain, the
 * fairness yield, `concurrency > 1`), run until the batch is done. Internal
 * to `Server`.
 *
 * @since 0.1.0
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Socket from "effect/socket/Socket"
import type * as Response from "./Response.ts"
import {
  answered,
  Concurrent,
  Continue,
  Done,
  Drain,
  Finish,
  holdUnsent,
  send,
  type Step,
  step,
  Suspend,
  wrote,
  Yield
} from "./ServerBatch.ts"
import type { Connection } from "./ServerConnection.ts"
import { isExitFast } from "./ServerHandler.ts"
import * as Wire from "./Wire.ts"

// Set while a sequential batch waits in a handler: the replies before it are
// written by a microtask, which runs only once the fiber has suspended (or
// finished the batch), so a handler that completes synchronously costs no write.
const flushReady = (conn: Connection) => {
  conn.flushQueued = false
  if (!conn.inHandler || conn.replies.length === 0) return
  const bytes = Wire.encodeResponses(conn.replies)
  conn.replies = []
  const written = conn.io.write(bytes)
  // Failures surface at the loop's next write; a pending drain just completes.
  if (!isExitFast(written)) {
    holdUnsent(conn, bytes.length)
    conn.shared.runFork(Effect.ensuring(Effect.ignore(written), Effect.sync(() => holdUnsent(conn, -bytes.length))))
  }
}

/** Runs in a fiber what `step` could not do synchronously, until the batch is done. */
export const drive = Effect.fnUntraced(function*(conn: Connection, next: Step) {
  while (true) {
    switch (next) {
      case Done:
      case Finish:
        return next
      case Suspend: {
        if (conn.replies.length > 0 && !conn.flushQueued) {
          conn.flushQueued = true
          queueMicrotask(() => flushReady(conn))
        }
        const handler = conn.pending as Effect.Effect<Response.Response>
        conn.pending = undefined
        conn.inHandler = true
        const response = yield* handler
        conn.inHandler = false
        next = answered(conn, response)
        if (next !== Continue) continue
        break
      }
      case Drain:
        yield* drainPending(conn)
        break
      case Yield:
        yield* Effect.yieldNow
        break
      case Concurrent:
        yield* handleConcurrently(conn)
        break
    }
    next = step(conn)
  }
})

// Waits for the write `send` left pending.
const drainPending = Effect.fnUntraced(function*(conn: Connection) {
  const written = conn.pending as Effect.Effect<void, Socket.SocketError>
  conn.pending = undefined
  yield* written
  holdUnsent(conn, -conn.pendingBytes)
  wrote(conn, conn.pendingLate)
})

// `concurrency > 1`: up to that many handlers at once; each reply is
// written as soon as every reply before it is ready.
const handleConcurrently = Effect.fnUntraced(function*(conn: Connection) {
  const { frames } = conn.shared
  const { ranges, sources } = conn
  const n = sources.length
  const results: Array<Response.Response | undefined> = Array.from({ length: n })
  let next = 0
  let wake: Deferred.Deferred<void> | undefined
  const wakeUp = () => {
    const w = wake
    wake = undefined
    if (w !== undefined) Deferred.doneUnsafe(w, Exit.void)
  }
  const work = Effect.onExit(
    Effect.forEach(
      sources,
      (source, i) =>
        Effect.map(frames.handleEffect(source, ranges[2 * i]!, ranges[2 * i + 1]!), (reply) => {
          results[i] = reply
          if (i === next) wakeUp()
        }),
      { concurrency: conn.shared.concurrency, discard: true }
    ),
    () => Effect.sync(wakeUp)
  )
  const fiber = yield* Effect.forkChild(work, { startImmediately: true })
  while (true) {
    while (next < n && results[next] !== undefined) {
      conn.replies.push(results[next]!)
      results[next++] = undefined
    }
    if (next === n) break
    if (conn.replies.length > 0) {
      if (send(conn, conn.shared.timed) === Drain) yield* drainPending(conn)
      continue // more may be ready after the write
    }
    const exit = fiber.pollUnsafe()
    if (exit !== undefined && Exit.isFailure(exit)) return yield* exit
    wake = Deferred.makeUnsafe<void>()
    // Interrupted at the deadline: the ready prefix joins `replies`, which
    // `flushLeftovers` writes.
    yield* Effect.onInterrupt(Deferred.await(wake), () =>
      Effect.sync(() => {
        while (next < n && results[next] !== undefined) conn.replies.push(results[next++]!)
      }))
  }
})
