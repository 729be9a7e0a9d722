// Replies never wait behind slower handlers of the same read batch (issue 11,
// item 5): when a handler suspends, the replies before it are written first;
// order on the wire is unchanged, and a batch whose handlers all complete
// synchronously is still one write.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Net from "node:net"
import type * as Handlers from "../../src/Handlers.ts"
import * as Request from "../../src/Request.ts"
import * as Wire from "../../src/Wire.ts"
import * as Harness from "../support/harness.ts"

const PING = 1
const SLEEP = 5
const GEN = 9 // an Effect.gen handler: not an Exit, but it never suspends

const table: Handlers.Table<unknown, never> = [
  [PING, () => Effect.succeed("PONG")],
  [SLEEP, (req) => Effect.as(Effect.sleep(Number(Request.text(req))), `SLEPT ${Request.text(req)}`)],
  [GEN, (req) =>
    Effect.gen(function*() {
      const n = yield* Effect.succeed(req.payload.length)
      return `GEN ${n}`
    })]
]

const request = (code: number, payload = "") => Request.makeUnsafe(code, { payload })

interface Arrival {
  readonly at: number
  readonly replies: ReadonlyArray<string>
}

/** Sends `requests` in one write; resolves with the replies grouped by the data event that brought them. */
const exchange = (port: number, requests: ReadonlyArray<Request.Request>) =>
  new Promise<Array<Arrival>>((resolve, reject) => {
    const socket = Net.connect({ port, host: "127.0.0.1", noDelay: true })
    const decoder = new Wire.FrameDecoder()
    const arrivals: Array<Arrival> = []
    let count = 0
    const start = performance.now()
    socket.on("data", (chunk) => {
      const frames: Array<Uint8Array> = []
      decoder.push(chunk, frames)
      const replies = frames.map((f) => {
        const r = Wire.decodeResponseUnsafe(f)
        return r.errorMessage || new TextDecoder().decode(r.payload)
      })
      if (replies.length > 0) arrivals.push({ at: performance.now() - start, replies })
      count += replies.length
      if (count === requests.length) {
        socket.destroy()
        resolve(arrivals)
      }
    })
    socket.on("error", reject)
    socket.on("connect", () => socket.write(Wire.encodeRequests(requests)))
  })

describe("replies of one batch", () => {
  it.live("a reply whose predecessors are done goes out before a slower handler after it", () =>
    Effect.gen(function*() {
      const { port } = yield* Harness.tcp({}, table)
      const batch = [
        request(GEN, "ab"),
        request(PING),
        request(SLEEP, "450"),
        request(PING),
        request(GEN, "xyz"),
        request(SLEEP, "250"),
        request(PING)
      ]
      const arrivals = yield* Effect.promise(() => exchange(port, batch))
      console.log(
        `[reliability] one write of GEN, PING, SLEEP 450, PING, GEN, SLEEP 250, PING: replies arrived as ${
          arrivals.map((a) => `${a.replies.length} at ${a.at.toFixed(0)} ms`).join(", ")
        }`
      )
      // Order on the wire is request order.
      expect(arrivals.flatMap((a) => a.replies)).toEqual([
        "GEN 2",
        "PONG",
        "SLEPT 450",
        "PONG",
        "GEN 3",
        "SLEPT 250",
        "PONG"
      ])
      // Three writes: what was ready before each sleep, then the rest.
      expect(arrivals.map((a) => a.replies.length)).toEqual([2, 3, 2])
    }))

  it.live("with concurrency > 1, each reply goes out once every reply before it is ready", () =>
    Effect.gen(function*() {
      const { port } = yield* Harness.tcp({ concurrency: 4 }, table)
      // The 150 ms sleep finishes first but must wait for the 400 ms one before it.
      const batch = [request(PING), request(SLEEP, "400"), request(SLEEP, "150"), request(PING), request(SLEEP, "700")]
      const arrivals = yield* Effect.promise(() => exchange(port, batch))
      console.log(
        `[reliability] concurrency 4, one write of PING, SLEEP 400, SLEEP 150, PING, SLEEP 700: replies arrived as ${
          arrivals.map((a) => `${a.replies.length} at ${a.at.toFixed(0)} ms`).join(", ")
        }`
      )
      expect(arrivals.flatMap((a) => a.replies)).toEqual(["PONG", "SLEPT 400", "SLEPT 150", "PONG", "SLEPT 700"])
      expect(arrivals.map((a) => a.replies.length)).toEqual([1, 3, 1])
    }))

  it.live("handlers that complete synchronously, Exit or Effect.gen, still get one write per batch", () =>
    Effect.gen(function*() {
      const { port } = yield* Harness.tcp({}, table)
      const batch = Array.from({ length: 300 }, (_, i) => request(i % 3 === 0 ? PING : GEN, "p".repeat(i % 5)))
      const arrivals = yield* Effect.promise(() => exchange(port, batch))
      expect(arrivals.length).toBe(1)
      expect(arrivals[0]!.replies.length).toBe(300)
    }))
})
