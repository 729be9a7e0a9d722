// The client's pool on the TestClock (in-memory transport): which connection
// takes a call, when connections open, how waiting callers are served.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"
import * as Client from "../src/Client.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as MemoryDialer from "../src/testing/MemoryDialer.ts"

const echo = (payload: string) => Request.makeUnsafe(2, { payload })
const texts = (connection: MemoryDialer.MemoryConnection) => connection.requests.map(Request.text)

const memoryClient = (server: MemoryDialer.MemoryServer, options?: Client.Options) =>
  Client.make(options).pipe(Effect.provideService(Client.Dialer, server.dialer))

/** Lets forked fibers and microtasks run without advancing the clock. */
const settle = Effect.forEach(Array.from({ length: 20 }), () => Effect.yieldNow, { discard: true })

describe("ClientPool", () => {
  it.effect("a call takes a connection with nothing outstanding, else the least loaded one", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make() // replies by hand
      const client = yield* memoryClient(server, { pool: { initialSize: 2, maxCap: 2 } })
      const [one, two] = server.connections as [MemoryDialer.MemoryConnection, MemoryDialer.MemoryConnection]
      const calls = yield* Effect.forkChild(
        Effect.forEach(["a", "b", "c", "d"], (id) => client.call(echo(id)), { concurrency: "unbounded" })
      )
      yield* settle
      // a and b each find an idle connection; c and d go to the least loaded.
      expect([texts(one), texts(two)]).toEqual([["a", "c"], ["b", "d"]])
      one.reply(Response.ok("a"))
      yield* settle
      // one has 1 outstanding, two has 2: e goes to one.
      const e = yield* Effect.forkChild(client.call(echo("e")))
      yield* settle
      expect(texts(one)).toEqual(["a", "c", "e"])
      for (const id of ["c", "e"]) one.reply(Response.ok(id))
      for (const id of ["b", "d"]) two.reply(Response.ok(id))
      expect((yield* Fiber.join(calls)).map(Response.text)).toEqual(["a", "b", "c", "d"])
      expect(Response.text(yield* Fiber.join(e))).toBe("e")
      expect(yield* client.stats).toEqual({ open: 2, idle: 2, inflight: 0, waiting: 0 })
    }))

  it.effect("a connection opens only when every open one is full, up to maxCap", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make()
      const client = yield* memoryClient(server, { pool: { maxCap: 3 }, maxInFlight: 2 })
      const calls = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 7 }, (_, i) => `${i}`), (id) => client.call(echo(id)), {
          concurrency: "unbounded"
        })
      )
      yield* settle
      expect(server.connections.map(texts)).toEqual([["0", "1"], ["2", "3"], ["4", "5"]])
      expect(yield* client.stats).toEqual({ open: 3, idle: 0, inflight: 6, waiting: 1 })
      // The first slot to free takes the waiter.
      server.connections[1]!.reply(Response.ok("2"))
      yield* settle
      expect(texts(server.connections[1]!)).toEqual(["2", "3", "6"])
      for (const connection of server.connections) {
        for (const id of texts(connection).slice(connection.id === 2 ? 1 : 0)) connection.reply(Response.ok(id))
      }
      expect((yield* Fiber.join(calls)).map(Response.text)).toEqual(["0", "1", "2", "3", "4", "5", "6"])
    }))

  it.effect("waiters are served oldest first; one interrupted while waiting is never sent", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make()
      const client = yield* memoryClient(server, { pool: { maxCap: 1 }, maxInFlight: 1 })
      const a = yield* Effect.forkChild(client.call(echo("a")))
      yield* settle
      const b = yield* Effect.forkChild(client.call(echo("b")))
      const c = yield* Effect.forkChild(client.call(echo("c")))
      const d = yield* Effect.forkChild(client.call(echo("d")))
      yield* settle
      expect((yield* client.stats).waiting).toBe(3)
      yield* Fiber.interrupt(c)
      expect((yield* client.stats).waiting).toBe(2)
      const connection = server.connections[0]!
      for (const id of ["a", "b", "d"]) {
        yield* settle
        connection.reply(Response.ok(id))
      }
      expect(Response.text(yield* Fiber.join(a))).toBe("a")
      expect(Response.text(yield* Fiber.join(b))).toBe("b")
      expect(Response.text(yield* Fiber.join(d))).toBe("d")
      expect(texts(connection)).toEqual(["a", "b", "d"])
    }))

  it.effect("an abandoned call keeps its slot until its reply is read, then the waiter behind it goes", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make()
      const client = yield* memoryClient(server, { pool: { maxCap: 1 }, maxInFlight: 1 })
      const abandoned = yield* Effect.forkChild(client.call(echo("abandoned")))
      yield* settle
      yield* Fiber.interrupt(abandoned)
      const next = yield* Effect.forkChild(client.call(echo("next")))
      yield* settle
      const connection = server.connections[0]!
      expect(texts(connection)).toEqual(["abandoned"])
      expect(yield* client.stats).toEqual({ open: 1, idle: 0, inflight: 1, waiting: 1 })
      connection.reply(Response.ok("abandoned")) // read and dropped
      yield* settle
      expect(texts(connection)).toEqual(["abandoned", "next"])
      connection.reply(Response.ok("next"))
      expect(Response.text(yield* Fiber.join(next))).toBe("next")
    }))

  it.effect("a failed dial fails the callers waiting for it (not sent); the next call dials again", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make((request) => Response.ok(request.payload))
      let dials = 0
      // A dial takes 100 ms: both callers wait for the same one.
      const client = yield* Client.make({ pool: { initialSize: 0 } }).pipe(
        Effect.provideService(Client.Dialer, {
          address: server.dialer.address,
          dial: Effect.delay(Effect.suspend(() => (dials++, server.dialer.dial)), "100 millis")
        })
      )
      server.failDials = 1
      const calls = yield* Effect.forkChild(
        Effect.forEach(["x", "y"], (id) => Effect.flip(client.call(echo(id))), { concurrency: "unbounded" })
      )
      yield* settle
      yield* TestClock.adjust("100 millis")
      const errors = yield* Fiber.join(calls)
      expect(dials).toBe(1)
      for (const error of errors) {
        expect(error.reason._tag).toBe("ConnectFailed")
        expect(error.maybeProcessed).toBe(false)
      }
      const z = yield* Effect.forkChild(client.call(echo("z")))
      yield* settle
      yield* TestClock.adjust("100 millis")
      expect(Response.text(yield* Fiber.join(z))).toBe("z")
      expect(dials).toBe(2)
      expect(server.connections.flatMap(texts)).toEqual(["z"])
    }))

  it.effect("acquireTimeout counts from when the caller started waiting; cancelled waiters do not hold it up", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make()
      const client = yield* memoryClient(server, { pool: { maxCap: 1 }, maxInFlight: 1, acquireTimeout: "1 second" })
      yield* Effect.forkChild(client.call(echo("busy")))
      yield* settle
      const early = yield* Effect.forkChild(Effect.flip(client.call(echo("early"))))
      yield* TestClock.adjust("400 millis")
      const late = yield* Effect.forkChild(Effect.flip(client.call(echo("late"))))
      yield* settle
      yield* Fiber.interrupt(early)
      yield* TestClock.adjust("599 millis")
      yield* settle
      expect(late.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("401 millis")
      const error = yield* Fiber.join(late)
      expect(error.reason._tag).toBe("AcquireTimeout")
      expect(texts(server.connections[0]!)).toEqual(["busy"])
      expect((yield* client.stats).waiting).toBe(0)
    }))
})
