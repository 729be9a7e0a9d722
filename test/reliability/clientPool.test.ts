// The client's pool under interruption, outages and silent servers (issue
// 11, items 8, 10 and 11). What must hold:
// - an interrupted call keeps its slot until its reply is read: abandoned
//   calls never pile up on a connection past `maxInFlight`, and a new call
//   takes an idle connection rather than queue behind an abandoned slow one;
// - after an outage the pool returns to `initialSize` by itself, redialing
//   on a backoff schedule (a bounded number of dials, not a storm);
// - with default options, a call to a server that never answers ends with a
//   typed error.
// Figures are printed as `[reliability]` lines; no timing is asserted.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import { TestClock } from "effect/testing"
import * as Client from "../../src/Client.ts"
import * as NodeClient from "../../src/node/NodeClient.ts"
import * as Request from "../../src/Request.ts"
import * as Response from "../../src/Response.ts"
import * as MemoryDialer from "../../src/testing/MemoryDialer.ts"
import * as RawServer from "../support/rawServer.ts"
import { describeMemory, gc } from "./support.ts"

const PING = Request.makeUnsafe(1)
const echo = (payload: string) => Request.makeUnsafe(2, { payload })
const sleep = (ms: number) => Request.makeUnsafe(5, { payload: String(ms) })

/** A client on the raw server, over real TCP; `dials` counts the dials it made. */
const tcpClient = (server: RawServer.RawServer, options?: Client.Options, dials?: { count: number }) =>
  Effect.gen(function*() {
    const dialer = yield* NodeClient.make({ host: "127.0.0.1", port: server.port })
    const counted = dials === undefined ? dialer : {
      address: dialer.address,
      dial: Effect.tap(dialer.dial, () => Effect.sync(() => dials.count++))
    }
    return yield* Client.make(options).pipe(Effect.provideService(Client.Dialer, counted))
  })

/** A client on the in-memory transport (TestClock); `dials` counts every dial attempt. */
const memoryClient = (server: MemoryDialer.MemoryServer, options?: Client.Options, dials?: { count: number }) =>
  Client.make(options).pipe(Effect.provideService(Client.Dialer, {
    address: server.dialer.address,
    dial: Effect.suspend(() => {
      if (dials !== undefined) dials.count++
      return server.dialer.dial
    })
  }))

/** Fails the test if `effect` runs longer than `ms` of real time (a hang). */
const bounded = <A, E, R>(effect: Effect.Effect<A, E, R>, ms: number) =>
  Effect.timeoutOrElse(effect, { duration: ms, orElse: () => Effect.die(new Error(`hung for ${ms} ms`)) })

/** Lets forked fibers and microtasks run without advancing the clock. */
const settle = Effect.forEach(Array.from({ length: 20 }), () => Effect.yieldNow, { discard: true })

const memory = () => {
  gc()
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers }
}

describe("client pool: an abandoned call keeps its slot until its reply is read", () => {
  it.live("2,500 calls abandoned on stalled connections: the wire never carries more than maxCap × maxInFlight", () =>
    bounded(
      Effect.gen(function*() {
        // SLEEP never gets a reply (nor does anything after it on its connection).
        const server = yield* RawServer.make({
          fault: (request) => request.code === 5 ? { _tag: "Stall" } : undefined
        })
        const maxCap = 3
        const client = yield* tcpClient(server, { pool: { initialSize: 1, maxCap }, maxInFlight: 1 })
        const before = memory()
        const abandoned = 2_500
        let peak = 0
        for (let i = 0; i < abandoned; i++) {
          const fiber = yield* Effect.forkChild(client.call(sleep(10_000 + i)))
          // Long enough for a connection to open and the request to be written.
          yield* Effect.sleep(i < maxCap ? 20 : 0)
          yield* Fiber.interrupt(fiber)
          peak = Math.max(peak, (yield* client.stats).inflight)
        }
        yield* Effect.sleep(50)
        const stats = yield* client.stats
        const after = memory()
        console.log(
          `[reliability] client: ${abandoned} calls abandoned (maxCap ${maxCap}, maxInFlight 1, replies never come): `
            + `${server.requests.length} written, peak outstanding ${peak}, ${stats.open} connections; `
            + describeMemory(before, after)
        )
        // Each connection holds its one abandoned call; every later caller
        // waited for a slot and left the queue unsent when interrupted.
        expect(server.requests.length).toBe(maxCap)
        expect(peak).toBeLessThanOrEqual(maxCap)
        expect(stats).toEqual({ open: maxCap, idle: 0, inflight: maxCap, waiting: 0 })
      }),
      20_000
    ))

  it.live("a call abandoned in a slow handler: the next call takes an idle connection, not the place behind it", () =>
    bounded(
      Effect.gen(function*() {
        const connectionOf = new Map<string, number>()
        const server = yield* RawServer.make({
          fault: (request, connection) => {
            connectionOf.set(`${request.code}:${Request.text(request)}`, connection)
            return undefined
          }
        })
        const client = yield* tcpClient(server, { pool: { initialSize: 2, maxCap: 2 } })
        const slowMs = 1_200
        const slow = yield* Effect.forkChild(client.call(sleep(slowMs)))
        yield* RawServer.eventually(() => server.requests.length === 1, "the slow call on the wire")
        yield* Fiber.interrupt(slow)
        const start = performance.now()
        yield* client.call(echo("bystander"))
        const latency = performance.now() - start
        // Answered while the abandoned call still holds its connection.
        const during = yield* client.stats
        console.log(
          `[reliability] client: call after abandoning a ${slowMs} ms call: ${latency.toFixed(1)} ms `
            + `(on connection ${connectionOf.get("2:bystander")}, the abandoned one on ${
              connectionOf.get(`5:${slowMs}`)
            })`
        )
        expect(during.inflight).toBe(1)
        expect(connectionOf.get("2:bystander")).not.toBe(connectionOf.get(`5:${slowMs}`))
        // Once the late reply is read (and dropped), every caller still gets its own reply.
        yield* RawServer.eventually(() => Effect.runSync(client.stats).inflight === 0, "the late reply", 5_000)
        const replies = yield* Effect.forEach(
          Array.from({ length: 300 }, (_, i) => `c${i}`),
          (id) => Effect.map(client.call(echo(id)), (r) => [id, Response.text(r)] as const),
          { concurrency: 50 }
        )
        for (const [id, text] of replies) expect(text).toBe(id)
      }),
      15_000
    ))
})

describe("client pool: back to initialSize after an outage", () => {
  it.effect("TestClock: every connection closed, the server down for 20 s: redials on a backoff, refills once it is back", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(() => Response.ok("PONG"))
      const dials = { count: 0 }
      const initialSize = 3
      const client = yield* memoryClient(server, { pool: { initialSize, maxCap: 6 } }, dials)
      expect(server.open).toBe(initialSize)
      // The outage: the server closes every connection and refuses new ones.
      server.failDials = 1_000_000
      for (const connection of server.connections) connection.close()
      yield* settle
      const dialsAtOutage = dials.count
      for (let t = 0; t < 20_000; t += 100) {
        yield* TestClock.adjust("100 millis")
        yield* settle
      }
      const duringOutage = dials.count - dialsAtOutage
      expect((yield* client.stats).open).toBe(0)
      // The server is back: the next backoff step (at most 5 s + 20 %) refills the floor.
      server.failDials = 0
      let waited = 0
      while (server.open < initialSize && waited < 12_000) {
        yield* TestClock.adjust("100 millis")
        yield* settle
        waited += 100
      }
      console.log(
        `[reliability] client: outage of 20 s (test clock), initialSize ${initialSize}: ${duringOutage} dials during it `
          + `(one fiber, backoff 100 ms → 5 s), floor refilled ${waited} ms after the server came back`
      )
      expect(server.open).toBe(initialSize)
      expect((yield* client.stats).open).toBe(initialSize)
      // 100, 200, ... 3,200 ms, then every ~5 s: about 11 dials in 20 s, never one per connection per tick.
      expect(duringOutage).toBeGreaterThanOrEqual(5)
      expect(duringOutage).toBeLessThanOrEqual(16)
      expect(Response.text(yield* client.call(PING))).toBe("PONG")
    }))

  it.effect("a finite refill schedule gives up, and the next close tries again", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(() => Response.ok("PONG"))
      const dials = { count: 0 }
      const client = yield* memoryClient(server, {
        pool: { initialSize: 2, refill: Schedule.max([Schedule.spaced("1 second"), Schedule.recurs(2)]) }
      }, dials)
      // Connections that lived a while: their close is not a flapping server's.
      yield* TestClock.adjust("5 seconds")
      server.failDials = 1_000
      server.connections[0]!.close()
      yield* settle
      for (let t = 0; t < 10_000; t += 500) {
        yield* TestClock.adjust("500 millis")
        yield* settle
      }
      // 1 try + 2 retries, then nothing more.
      expect(dials.count).toBe(2 + 3)
      server.failDials = 0
      server.connections[1]!.close()
      yield* settle
      expect(server.open).toBe(2)
      expect((yield* client.stats).open).toBe(2)
    }))

  it.live("real sockets: the server killed and restarted on its port, initialSize 4: the pool refills by itself", () =>
    bounded(
      Effect.gen(function*() {
        const server = yield* RawServer.make()
        const dials = { count: 0 }
        const initialSize = 4
        const client = yield* tcpClient(server, { pool: { initialSize, maxCap: 8 } }, dials)
        expect(Response.text(yield* client.call(PING))).toBe("PONG")
        yield* server.kill
        yield* RawServer.eventually(() => Effect.runSync(client.stats).open === 0, "the client to see the close")
        const dialsAtOutage = dials.count
        const downMs = 700
        yield* Effect.sleep(downMs)
        yield* server.restart
        const back = performance.now()
        yield* RawServer.eventually(() => Effect.runSync(client.stats).open === initialSize, "the floor", 10_000)
        const refilled = performance.now() - back
        console.log(
          `[reliability] client: server down ${downMs} ms then back, initialSize ${initialSize}: `
            + `${initialSize} open ${refilled.toFixed(0)} ms after the restart, ${dials.count - dialsAtOutage} dials `
            + `since the kill (${server.accepted} accepted in all)`
        )
        expect(server.open).toBe(initialSize)
        expect(Response.text(yield* client.call(PING))).toBe("PONG")
      }),
      15_000
    ))
})

describe("client pool: a server that accepts and closes at once", () => {
  it.live("the floor is redialed on the backoff, not in a loop; back once the server serves again", () =>
    bounded(
      Effect.gen(function*() {
        const server = yield* RawServer.make()
        const dials = { count: 0 }
        const client = yield* tcpClient(server, { pool: { initialSize: 2, maxCap: 4 } }, dials)
        // Like a server at its connection limit, or one crash-looping.
        server.options = { closeOnAccept: true }
        yield* server.kill
        yield* server.restart
        const before = dials.count
        const flappingMs = 2_000
        yield* Effect.sleep(flappingMs)
        const flapping = dials.count - before
        server.options = {}
        const back = performance.now()
        yield* RawServer.eventually(() => Effect.runSync(client.stats).open === 2, "the floor", 10_000)
        console.log(
          `[reliability] client: server closing every connection on accept for ${flappingMs} ms: ${flapping} dials `
            + `(initialSize 2, backoff from 100 ms); floor back ${
              (performance.now() - back).toFixed(0)
            } ms after it serves`
        )
        expect(flapping).toBeLessThanOrEqual(20)
        expect(Response.text(yield* client.call(PING))).toBe("PONG")
      }),
      15_000
    ))
})

describe("client: a silent server with default options", () => {
  it.effect("a call that never gets a reply fails with RequestTimeout at the default 60 s", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(() => undefined) // accepts, reads, never answers
      const client = yield* memoryClient(server)
      const call = yield* Effect.forkChild(Effect.flip(client.call(PING)))
      yield* settle
      yield* TestClock.adjust("59 seconds")
      yield* settle
      expect(call.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 second")
      yield* settle
      expect(call.pollUnsafe(), "still waiting after 60 s").toBeDefined()
      const error = yield* Fiber.join(call)
      console.log(`[reliability] client: silent server, default options: ${error.reason._tag} after 60 s (test clock)`)
      expect(error.reason._tag).toBe("RequestTimeout")
      expect(error.maybeProcessed).toBe(true)
      expect(Client.defaults.requestTimeout).toEqual(error.reason._tag === "RequestTimeout" && error.reason.timeout)
    }))
})
