// Exactly once under a backlog: a peer that writes tens of thousands of
// requests at once (a client that queued while the server stalled, then a
// flood on resume) drives the server through every path of its batch loop —
// passes capped in frames, the fairness yield, the reply prefix flushed before
// a handler that suspends — and through frames split across reads. Each
// request must be handled once and answered once, in order.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Handlers from "../../src/Handlers.ts"
import * as Request from "../../src/Request.ts"
import * as Wire from "../../src/Wire.ts"
import * as Harness from "../support/harness.ts"
import * as Raw from "../support/rawClient.ts"

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

for (const concurrency of [1, 3]) {
  describe(`a backlog of pipelined requests (concurrency ${concurrency})`, () => {
    it.live("every request is handled once and answered once, in order", () =>
      Effect.gen(function*() {
        const seen = new Map<string, number>()
        const count = (req: Request.Request) => {
          const id = text(req.payload)
          seen.set(id, (seen.get(id) ?? 0) + 1)
          return req.payload
        }
        const table: Handlers.Table<never, never> = [
          [2, (req) => Effect.succeed(count(req))],
          // Suspends: the replies before it must be flushed, the rest wait.
          [7, (req) => Effect.as(Effect.yieldNow, count(req))],
          [8, (req) => Effect.as(Effect.sleep("1 millis"), count(req))]
        ]
        const { port } = yield* Harness.tcp({ concurrency }, table)
        const client = yield* Raw.connect(port)
        const total = 24_000
        const ids: Array<string> = []
        const frames: Array<Uint8Array> = []
        for (let i = 0; i < total; i++) {
          const id = `r${i}`
          ids.push(id)
          // Mostly synchronous, some yielding, a few sleeping; sizes vary so frames straddle reads.
          const code = i % 997 === 0 ? 8 : i % 61 === 0 ? 7 : 2
          const pad = i % 13 === 0 ? "x".repeat(i % 700) : ""
          frames.push(Wire.encodeRequest(Request.makeUnsafe(code, { payload: id, metadata: pad ? { pad } : {} })))
        }
        // Three big writes, so the server meets a backlog far over one pass.
        const all = Buffer.concat(frames)
        const cuts = [0, Math.floor(all.length / 3) + 7, Math.floor((2 * all.length) / 3) + 3, all.length]
        for (let i = 0; i + 1 < cuts.length; i++) yield* client.write(all.subarray(cuts[i]!, cuts[i + 1]!))
        const replies = yield* client.read(total)
        const wrongOrder = replies.findIndex((reply, i) => text(reply.payload) !== ids[i])
        expect(wrongOrder).toBe(-1)
        const twice = Array.from(seen).filter(([, n]) => n !== 1).map(([id]) => id)
        expect(twice).toEqual([])
        expect(seen.size).toBe(total)
        console.log(
          `[reliability] backlog (concurrency ${concurrency}): ${total} pipelined requests in ${all.length} bytes, `
            + `${seen.size} handled once each, ${replies.length} replies in order`
        )
      }).pipe(Effect.scoped), 60_000)
  })
}
