// Under load: a graceful shutdown answers every request the server read, and
// handler defects cost only their own requests. Clients pipeline with a
// window of requests in flight and check every reply against its request, by
// position: order is the only correlation the protocol has.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Net from "node:net"
import type * as Handlers from "../../src/Handlers.ts"
import * as Request from "../../src/Request.ts"
import type * as Response from "../../src/Response.ts"
import * as Wire from "../../src/Wire.ts"
import * as Harness from "../support/harness.ts"
import { rng, sleep } from "./support.ts"

const decoder = new TextDecoder()
const textOf = (bytes: Uint8Array) => decoder.decode(bytes)

interface LoadResult {
  readonly sent: number
  readonly received: number
  /** Bytes of an incomplete reply left when the connection closed. */
  readonly partial: number
  readonly wrong: ReadonlyArray<string>
}

/**
 * One pipelining client: keeps up to `window` requests in flight, sends
 * `total` (or until the server closes), checks reply i against request i.
 */
const loadClient = (port: number, options: {
  readonly total: number
  readonly window: number
  readonly request: (seq: number) => Request.Request
  readonly check: (seq: number, reply: Response.Response) => string | undefined
}) =>
  new Promise<LoadResult>((resolve) => {
    const socket = Net.connect({ port, host: "127.0.0.1", noDelay: true })
    const frames = new Wire.FrameDecoder()
    const bodies: Array<Uint8Array> = []
    const wrong: Array<string> = []
    let sent = 0
    let received = 0
    const pump = () => {
      const free = options.window - (sent - received)
      // Refill in halves (a few large writes), or send the last few.
      if (free < options.window / 2 && free < options.total - sent) return
      const room = Math.min(free, options.total - sent)
      if (room <= 0) return
      socket.write(Wire.encodeRequests(Array.from({ length: room }, (_, i) => options.request(sent + i))))
      sent += room
    }
    socket.on("connect", pump)
    socket.on("data", (chunk) => {
      const error = frames.push(chunk, bodies)
      if (error) wrong.push(`framing: ${error.message}`)
      for (const body of bodies) {
        const problem = options.check(received, Wire.decodeResponseUnsafe(body))
        if (problem !== undefined && wrong.length < 10) wrong.push(`reply ${received}: ${problem}`)
        received++
      }
      bodies.length = 0
      if (received === options.total) socket.end()
      else if (!socket.writableEnded) pump()
    })
    socket.on("error", (e) => wrong.push(`socket: ${e.message}`))
    socket.on("close", () => resolve({ sent, received, partial: frames.pending, wrong }))
  })

describe("graceful shutdown under load", () => {
  for (const concurrency of [1, 8]) {
    it.live(
      `every request the server read is answered before close (concurrency ${concurrency})`,
      () =>
        Effect.gen(function*() {
          const clients = 8
          const handled = Array.from({ length: clients }, () => 0)
          const seen = (req: Request.Request) => handled[Number(textOf(req.payload).split(":")[0])]!++
          // ECHO, answered at once or after a millisecond: at close some
          // requests are always in the middle of a handler.
          const table: Handlers.Table<never, never> = [
            [2, (req) => (seen(req), Effect.succeed(req.payload))],
            [7, (req) => (seen(req), Effect.as(Effect.sleep("1 millis"), req.payload))]
          ]
          const { port, close, server } = yield* Harness.tcp({ concurrency, shutdownTimeout: "5 seconds" }, table)
          const r = rng(concurrency)
          const load = Array.from({ length: clients }, (_, id) =>
            loadClient(port, {
              total: Infinity,
              window: 64,
              request: (seq) => Request.makeUnsafe(r.chance(0.1) ? 7 : 2, { payload: `${id}:${seq}` }),
              check: (
                seq,
                reply
              ) => (textOf(reply.payload) === `${id}:${seq}` ? undefined : `got ${textOf(reply.payload)}`)
            }))
          yield* Effect.sleep("300 millis")
          const started = performance.now()
          const closing = yield* Effect.forkChild(close)
          const results = yield* Effect.promise(() => Promise.all(load))
          yield* Fiber.join(closing)
          const shutdownMs = performance.now() - started
          const sent = results.reduce((n, x) => n + x.sent, 0)
          const received = results.reduce((n, x) => n + x.received, 0)
          const total = handled.reduce((n, x) => n + x, 0)
          console.log(
            `[reliability] shutdown under load (concurrency ${concurrency}, ${clients} clients × 64 in flight): `
              + `${sent} sent, ${total} handled, ${received} replies received, ${sent - total} never read; `
              + `close took ${shutdownMs.toFixed(0)} ms`
          )
          results.forEach((x, id) => {
            expect(x.wrong, `client ${id}`).toEqual([])
            expect(x.received, `client ${id}: replies = requests its handlers saw`).toBe(handled[id])
            expect(x.partial, `client ${id}: no half-written reply`).toBe(0)
          })
          expect(total).toBeGreaterThan(1000) // there was real load to shut down under
          expect(server.connections()).toBe(0)
          expect(shutdownMs).toBeLessThan(5_000) // drained, not cut off by shutdownTimeout
        }),
      30_000
    )
  }
})

describe("handler defects under load", () => {
  for (const concurrency of [1, 8]) {
    it.live(
      `1% of requests die; only those get "internal error", no connection drops (concurrency ${concurrency})`,
      () =>
        Effect.gen(function*() {
          // Four ways to die: a synchronous throw, Effect.die, a throw inside
          // Effect.sync, a die after an asynchronous boundary.
          const die = (kind: number): Effect.Effect<never> => {
            switch (kind) {
              case 0:
                throw new Error("thrown")
              case 1:
                return Effect.die(new Error("died"))
              case 2:
                return Effect.sync(() => {
                  throw new Error("thrown in sync")
                })
              default:
                return Effect.andThen(Effect.sleep("1 millis"), Effect.die("died later"))
            }
          }
          const table: Handlers.Table<never, never> = [
            [6, (req) => (req.payload[0] === 0xff ? die(req.payload[1]! % 4) : Effect.succeed(req.payload))]
          ]
          const { port, server } = yield* Harness.tcp({ concurrency }, table)
          const r = rng(1000 + concurrency)
          const clients = 8
          const perClient = 2_500
          const doomed = Array.from({ length: clients }, () => Array.from({ length: perClient }, () => r.chance(0.01)))
          const results = yield* Effect.promise(() =>
            Promise.all(Array.from({ length: clients }, (_, id) =>
              loadClient(port, {
                total: perClient,
                window: 64,
                request: (seq) =>
                  Request.makeUnsafe(6, { payload: doomed[id]![seq] ? Uint8Array.of(0xff, seq) : `${id}:${seq}` }),
                check: (seq, reply) => {
                  if (doomed[id]![seq]) {
                    return reply.errorMessage === "internal error"
                      ? undefined
                      : `expected internal error`
                  }
                  return reply.errorMessage === "" && textOf(reply.payload) === `${id}:${seq}`
                    ? undefined
                    : `got ${JSON.stringify(reply.errorMessage)} ${textOf(reply.payload)}`
                }
              })))
          )
          const defects = doomed.flat().filter(Boolean).length
          console.log(
            `[reliability] defects under load (concurrency ${concurrency}): ${
              clients * perClient
            } requests, ${defects} died, `
              + `${results.reduce((n, x) => n + x.received, 0)} replies`
          )
          results.forEach((x, id) => {
            expect(x.wrong, `client ${id}`).toEqual([])
            // Every reply arrived: the connection outlived every defect.
            expect(x.received, `client ${id}`).toBe(perClient)
          })
          expect(defects).toBeGreaterThan(100)
          yield* Effect.promise(() => sleep(50))
          expect(server.connections()).toBe(0) // closed by the clients, not before
        }).pipe(Effect.provide(Logger.layer([]))),
      30_000
    )
  }
})
