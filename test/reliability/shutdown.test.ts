// Graceful shutdown delivers every reply whose handler finished before the
// deadline (issue 11, item 6): many connections, each with a deep pipeline of
// slow handlers, are still busy when `shutdownTimeout` passes. Whatever
// finished must have reached its client; only the handlers cut off by the
// deadline go unanswered.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Net from "node:net"
import type * as Handlers from "../../src/Handlers.ts"
import * as Request from "../../src/Request.ts"
import * as Wire from "../../src/Wire.ts"
import * as Harness from "../support/harness.ts"
import { serverProcess, sleep } from "./support.ts"

const SLOW = 6

/** Sends `requests` at once, then collects replies until the server closes. */
const pipelined = (port: number, requests: ReadonlyArray<Request.Request>) =>
  new Promise<{ readonly replies: Array<string>; readonly partial: number }>((resolve) => {
    const socket = Net.connect({ port, host: "127.0.0.1", noDelay: true })
    const decoder = new Wire.FrameDecoder()
    const frames: Array<Uint8Array> = []
    socket.on("connect", () => socket.write(Wire.encodeRequests(requests)))
    socket.on("data", (chunk) => void decoder.push(chunk, frames))
    socket.on("error", () => {})
    socket.on("close", () =>
      resolve({
        replies: frames.map((f) => new TextDecoder().decode(Wire.decodeResponseUnsafe(f).payload)),
        partial: decoder.pending
      }))
  })

describe("graceful shutdown", () => {
  for (const concurrency of [1, 3]) {
    it.live(
      `every reply whose handler finished before shutdownTimeout reaches its client (concurrency ${concurrency})`,
      () =>
        Effect.gen(function*() {
          const connections = 24
          const depth = 30
          // Handlers of 90-170 ms: each connection needs seconds for its pipeline,
          // the server is closed after 400 ms and gives up 900 ms later.
          const finished: Array<Array<string>> = Array.from({ length: connections }, () => [])
          const table: Handlers.Table<never, never> = [[SLOW, (req) => {
            const [conn, seq, ms] = new TextDecoder().decode(req.payload).split(":").map(Number)
            return Effect.sleep(ms!).pipe(
              Effect.andThen(Effect.sync(() => finished[conn!]!.push(`${conn}:${seq}:${ms}`))),
              Effect.as(req.payload)
            )
          }]]
          const { port, close } = yield* Harness.tcp({ concurrency, shutdownTimeout: "900 millis" }, table)
          const clients = Array.from({ length: connections }, (_, c) =>
            pipelined(
              port,
              Array.from(
                { length: depth },
                (_, i) => Request.makeUnsafe(SLOW, { payload: `${c}:${i}:${90 + ((c * 7 + i * 13) % 81)}` })
              )
            ))
          yield* Effect.sleep("400 millis")
          const started = performance.now()
          const closing = yield* Effect.forkChild(close)
          const results = yield* Effect.promise(() => Promise.all(clients))
          yield* Fiber.join(closing)
          const closeMs = performance.now() - started
          const completed = finished.reduce((n, f) => n + f.length, 0)
          const received = results.reduce((n, r) => n + r.replies.length, 0)
          console.log(
            `[reliability] shutdown (concurrency ${concurrency}, ${connections} connections × ${depth} pipelined `
              + `90-170 ms handlers, shutdownTimeout 900 ms): ${completed} handlers finished, ${received} replies `
              + `received, ${connections * depth - completed} cut off; close took ${closeMs.toFixed(0)} ms`
          )
          for (let c = 0; c < connections; c++) {
            // In order, no half frame, and each finished handler's reply is there.
            expect(results[c]!.partial).toBe(0)
            const expected = finished[c]!.slice().sort((a, b) => Number(a.split(":")[1]) - Number(b.split(":")[1]))
            if (concurrency === 1) expect(results[c]!.replies).toEqual(expected)
            else {
              // A finished reply behind a handler cut off by the deadline cannot be sent
              // (order is the only correlation): what arrived is the finished prefix.
              const got = results[c]!.replies
              expect(got).toEqual(expected.slice(0, got.length))
              for (let i = 0; i < got.length; i++) expect(Number(got[i]!.split(":")[1])).toBe(i)
              const prefix = expected.findIndex((e, i) => Number(e.split(":")[1]) !== i)
              expect(got.length).toBe(prefix < 0 ? expected.length : prefix)
            }
          }
          expect(completed).toBeGreaterThan(connections)
          if (concurrency === 1) expect(received).toBe(completed)
        }),
      30_000
    )
  }

  it("SIGTERM: the server process delivers every reply whose handler finished before it exits", async () => {
    const server = await serverProcess({ shutdownTimeout: 1200 }, { QZ_COUNT: "1" })
    // 16 connections × 25 pipelined SLEEPs of 110-190 ms (the demo SLEEP, code 5); SIGTERM after 500 ms.
    const clients = Array.from({ length: 16 }, (_, c) =>
      pipelined(
        server.port,
        Array.from({ length: 25 }, (_, i) => Request.makeUnsafe(5, { payload: String(110 + ((c * 11 + i * 29) % 81)) }))
      ))
    await sleep(500)
    const started = performance.now()
    const code = await server.stop()
    const results = await Promise.all(clients)
    const exitMs = performance.now() - started
    const completed = (JSON.parse(server.lines.find((l) => l.startsWith('{"completed"'))!) as { completed: number })
      .completed
    const received = results.reduce((n, r) => n + r.replies.length, 0)
    console.log(
      `[reliability] SIGTERM (16 connections × 25 pipelined 110-190 ms SLEEPs, shutdownTimeout 1.2 s): `
        + `${completed} handlers finished, ${received} replies received; exited (${code}) after ${exitMs.toFixed(0)} ms`
    )
    expect(received).toBe(completed)
    expect(completed).toBeGreaterThan(16)
    for (const r of results) {
      expect(r.partial).toBe(0)
      expect(r.replies.every((p) => p === "SLEPT")).toBe(true)
    }
  }, 30_000)
})
