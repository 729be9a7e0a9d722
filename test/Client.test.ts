import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import { TestClock } from "effect/testing"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Client from "../src/Client.ts"
import * as Command from "../src/Command.ts"
import * as Message from "../src/Message.ts"
import * as NodeClient from "../src/node/NodeClient.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as MemoryDialer from "../src/testing/MemoryDialer.ts"
import * as Wire from "../src/Wire.ts"
import * as RawServer from "./support/rawServer.ts"

const PING = Request.makeUnsafe(1)
const echo = (payload: string) => Request.makeUnsafe(2, { payload })
const FAIL = Request.makeUnsafe(3)
const sleep = (ms: number) => Request.makeUnsafe(5, { payload: String(ms) })

/** A client on the raw server, over real TCP. */
const tcpClient = (server: RawServer.RawServer, options?: Client.Options) =>
  Client.make(options).pipe(Effect.provide(NodeClient.layerDialer({ host: "127.0.0.1", port: server.port })))

/** A client on the in-memory transport. */
const memoryClient = (server: MemoryDialer.MemoryServer, options?: Client.Options) =>
  Client.make(options).pipe(Effect.provideService(Client.Dialer, server.dialer))

/** Fails the test if `effect` runs longer than `ms` of real time (a hang). */
const bounded = <A, E, R>(effect: Effect.Effect<A, E, R>, ms = 3000) =>
  Effect.timeoutOrElse(effect, { duration: ms, orElse: () => Effect.die(new Error(`hung for ${ms} ms`)) })

/** Lets forked fibers and microtasks run without advancing the clock. */
const settle = Effect.forEach(Array.from({ length: 20 }), () => Effect.yieldNow, { discard: true })

const reasonOf = (error: Client.ClientError) => error.reason

describe("Client over TCP (raw node:net server)", () => {
  it.live("call: every demo code; error_message is data; ensureOk turns it into RemoteError", () =>
    Effect.gen(function*() {
      const server = yield* RawServer.make()
      const client = yield* tcpClient(server)
      expect(Response.text(yield* client.call(PING))).toBe("PONG")
      expect(Response.text(yield* client.call(echo("hello")))).toBe("hello")
      const failed = yield* client.call(FAIL)
      expect(failed.errorMessage).toBe("something went wrong")
      const meta = yield* client.call(Request.makeUnsafe(4, { metadata: { trace: "abc", "": "" } }))
      expect(Message.metadataToRecord(meta.metadata)).toEqual({ trace: "abc", "": "" })
      expect(Response.text(meta)).toBe("META")
      expect(Response.text(yield* client.call(sleep(5)))).toBe("SLEPT")
      expect((yield* client.call(Request.makeUnsafe(42))).errorMessage).toBe("unknown command code 42")

      const remote = yield* Effect.flip(Effect.flatMap(client.call(FAIL), Client.ensureOk))
      expect(remote._tag).toBe("RemoteError")
      expect(remote.message).toBe("something went wrong")
      expect(Response.text(yield* Effect.flatMap(client.call(PING), Client.ensureOk))).toBe("PONG")
      expect(client.address).toBe(server.address)
    }))

  it.live("pipeline: replies in request order, all requests in one write", () =>
    Effect.gen(function*() {
      const server = yield* RawServer.make()
      const client = yield* tcpClient(server)
      const requests = Array.from({ length: 50 }, (_, i) => i % 5 === 0 ? sleep(i % 3) : echo(`#${i}`))
      const replies = yield* client.pipeline(requests)
      expect(replies.map(Response.text)).toEqual(
        requests.map((r, i) => (r.code === 5 ? "SLEPT" : `#${i}`))
      )
      // The 50 frames reached the server in one read: one write on one connection.
      expect(server.framesPerRead).toContain(50)
      expect(server.accepted).toBe(1)
      expect(yield* client.pipeline([])).toEqual([])
    }))

  it.live("initialSize connections are opened up front", () =>
    Effect.gen(function*() {
      const server = yield* RawServer.make()
      const client = yield* tcpClient(server, { pool: { initialSize: 3 } })
      yield* RawServer.eventually(() => server.accepted === 3, "3 connections")
      expect(server.requests.length).toBe(0)
      expect((yield* client.stats).open).toBe(3)
      yield* client.call(PING)
      expect(server.accepted).toBe(3)
    }))

  it.live("maxCap is respected under 100 concurrent callers", () =>
    bounded(Effect.gen(function*() {
      const server = yield* RawServer.make()
      const client = yield* tcpClient(server, { pool: { maxCap: 4 }, maxInFlight: 1 })
      const replies = yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => client.call(i % 2 === 0 ? sleep(2) : echo(`${i}`)),
        { concurrency: "unbounded" }
      )
      expect(replies.map(Response.text)).toEqual(Array.from({ length: 100 }, (_, i) => i % 2 === 0 ? "SLEPT" : `${i}`))
      expect(server.maxOpen).toBe(4)
      expect(server.accepted).toBe(4)
    })))

  it.live("multiplexing: concurrent callers share one connection and each gets its own reply", () =>
    bounded(Effect.gen(function*() {
      const server = yield* RawServer.make()
      const client = yield* tcpClient(server, { pool: { maxCap: 1 } })
      const rounds = yield* Effect.forEach(
        Array.from({ length: 64 }, (_, i) => i),
        (i) =>
          Effect.forEach(
            Array.from({ length: 20 }, (_, j) => j),
            (j) =>
              Effect.map(client.call(j % 7 === 0 ? sleep(1) : echo(`${i}/${j}`)), (r) =>
                Response.text(r) === (j % 7 === 0 ? "SLEPT" : `${i}/${j}`))
          ),
        { concurrency: "unbounded" }
      )
      expect(rounds.flat().every((ok) => ok)).toBe(true)
      expect(server.accepted).toBe(1)
      // Calls made while replies were being delivered went out together.
      expect(Math.max(...server.framesPerRead)).toBeGreaterThan(1)
    })))

  it.live("server killed mid-pipeline: typed errors marked maybeProcessed, no hang; recovers after a restart", () =>
    bounded(Effect.gen(function*() {
      const server = yield* RawServer.make()
      const client = yield* tcpClient(server)
      const fiber = yield* Effect.forkChild(client.pipeline([PING, sleep(2000), PING]))
      yield* RawServer.eventually(() => server.requests.length === 3, "the pipeline to arrive")
      yield* server.kill
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error._tag).toBe("ClientError")
      expect(error.reason._tag).toBe("ConnectionClosed")
      expect(error.maybeProcessed).toBe(true)
      expect(error.address).toBe(server.address)
      expect(error.message).toContain("may have been processed")

      // During the outage calls fail fast (refused), marked not sent.
      const down = yield* Effect.flip(client.call(PING))
      expect(down.reason._tag).toBe("ConnectFailed")
      expect(down.maybeProcessed).toBe(false)
      expect(down.message).toContain("ECONNREFUSED")

      yield* server.restart
      expect(Response.text(yield* client.call(PING))).toBe("PONG")
      // Nothing was replayed: the server saw each request once.
      expect(server.requests.map((r) => r.code)).toEqual([1, 5, 1, 1])
    })))

  it.live("server down: make fails fast with a typed connect error", () =>
    bounded(Effect.gen(function*() {
      const server = yield* RawServer.make()
      yield* server.kill
      const error = yield* Effect.flip(tcpClient(server))
      expect(error.reason._tag).toBe("ConnectFailed")
      expect(error.maybeProcessed).toBe(false)
      expect(error.address).toBe(server.address)
      // initialSize 0: make succeeds, the first call reports the connect error.
      const lazy = yield* tcpClient(server, { pool: { initialSize: 0 } })
      expect(reasonOf(yield* Effect.flip(lazy.call(PING)))._tag).toBe("ConnectFailed")
    })))

  it.live("a timed-out connection is not reused: the next call gets its own reply, not the stale one", () =>
    bounded(Effect.gen(function*() {
      const server = yield* RawServer.make()
      const client = yield* tcpClient(server, { pool: { maxCap: 1 }, requestTimeout: "150 millis" })
      const error = yield* Effect.flip(client.call(sleep(300)))
      expect(error.reason._tag).toBe("RequestTimeout")
      expect(error.maybeProcessed).toBe(true)
      expect(Response.text(yield* client.call(echo("second")))).toBe("second")
      // Past the moment the late "SLEPT" would have arrived.
      yield* Effect.sleep(250)
      expect(Response.text(yield* client.call(echo("third")))).toBe("third")
      expect(server.accepted).toBe(2)
    })))

  it.live("a half-written reply then a close: typed error marked maybeProcessed; the next call works", () =>
    bounded(Effect.gen(function*() {
      const server = yield* RawServer.make({
        fault: (request) => (request.code === 9 ? { _tag: "HalfFrame" } : undefined)
      })
      const client = yield* tcpClient(server)
      const error = yield* Effect.flip(client.call(Request.makeUnsafe(9)))
      expect(error.reason._tag).toBe("ConnectionClosed")
      expect(error.maybeProcessed).toBe(true)
      expect(Response.text(yield* client.call(PING))).toBe("PONG")
      expect(server.accepted).toBe(2)
    })))

  it.live("protocol errors (bad framing, a reply over maxFrameSize, a reply nobody asked for) close the connection", () =>
    bounded(Effect.gen(function*() {
      const garbage = new Uint8Array(11).fill(0xff) // an 11-byte length varint
      const twice = Wire.encodeResponses([Response.ok("a"), Response.ok("b")])
      const server = yield* RawServer.make({
        fault: (request) =>
          request.code === 10
            ? { _tag: "Raw", bytes: garbage }
            : request.code === 11
            ? { _tag: "Raw", bytes: twice }
            : request.code === 12
            ? { _tag: "Raw", bytes: Wire.encodeResponse(Response.ok("x".repeat(2000))) }
            : undefined
      })
      const client = yield* tcpClient(server, { maxFrameSize: 1024 })
      const bad = yield* Effect.flip(client.call(Request.makeUnsafe(10)))
      expect(bad.reason._tag).toBe("ProtocolError")
      expect(bad.maybeProcessed).toBe(true)

      const big = yield* Effect.flip(client.call(Request.makeUnsafe(12)))
      expect(big.reason._tag).toBe("ProtocolError")
      expect(big.message).toContain("1024")

      const first = yield* client.call(Request.makeUnsafe(11))
      expect(Response.text(first)).toBe("a")
      // The extra "b" closed that connection (and the pool reopened its floor of
      // one): the next call gets a fresh connection and its own reply.
      yield* RawServer.eventually(() => server.accepted === 4 && server.open === 1, "the extra reply to close it")
      expect(Response.text(yield* client.call(echo("fresh")))).toBe("fresh")
      expect(server.accepted).toBe(4)
    })))

  it.live("closing the client's scope fails calls in flight with PoolClosed", () =>
    bounded(Effect.gen(function*() {
      const server = yield* RawServer.make()
      const scope = yield* Scope.make()
      const client = yield* tcpClient(server).pipe(Scope.provide(scope))
      const inflight = yield* Effect.forkChild(client.call(sleep(5000)))
      yield* RawServer.eventually(() => server.requests.length === 1, "the request to arrive")
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(Fiber.join(inflight))
      expect(error.reason._tag).toBe("PoolClosed")
      expect(error.maybeProcessed).toBe(true)
      const after = yield* Effect.flip(client.call(PING))
      expect(after.reason._tag).toBe("PoolClosed")
      expect(after.maybeProcessed).toBe(false)
      yield* RawServer.eventually(() => server.open === 0, "the socket to close")
    })))

  it.live("Unix socket dialer", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "qz-client-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const path = join(dir, "s.sock")
      const server = yield* RawServer.make({ path })
      const client = yield* Client.make().pipe(Effect.provide(NodeClient.layerDialer({ path })))
      expect(Response.text(yield* client.call(echo("over unix")))).toBe("over unix")
      expect(client.address).toBe(server.address)
    }))

  it.live("Go compatibility: every response frame written by Go decodes into its listed fields", () =>
    bounded(
      Effect.gen(function*() {
        const vectors =
          (JSON.parse(readFileSync(new URL("./fixtures/wire-vectors.json", import.meta.url), "utf8")) as Array<{
            name: string
            kind: string
            frame_hex: string
            fields: { error_message: string; metadata: Record<string, string>; payload_b64: string }
          }>).filter((v) => v.kind === "response")
        expect(vectors.length).toBeGreaterThan(5)
        // Request code i is answered with the Go frame of vector i, byte for byte.
        const server = yield* RawServer.make({
          fault: (request) => ({ _tag: "Raw", bytes: Buffer.from(vectors[request.code]!.frame_hex, "hex") })
        })
        const client = yield* tcpClient(server)
        const decoded = yield* client.pipeline(vectors.map((_, i) => Request.makeUnsafe(i)))
        for (let i = 0; i < vectors.length; i++) {
          const { fields, name } = vectors[i]!
          const res = decoded[i]!
          expect({ name, error: res.errorMessage }).toEqual({ name, error: fields.error_message })
          expect(Message.metadataToRecord(res.metadata)).toEqual(fields.metadata)
          expect(Buffer.from(res.payload).toString("base64")).toBe(fields.payload_b64)
        }
        // One by one too (each frame alone on the wire).
        for (let i = 0; i < vectors.length; i++) {
          const res = yield* client.call(Request.makeUnsafe(i))
          expect(Buffer.from(res.payload).toString("base64")).toBe(vectors[i]!.fields.payload_b64)
        }
      }),
      10_000
    ))
})

describe("Client on the TestClock (in-memory transport)", () => {
  const pong = () => Response.ok("PONG")

  it.effect("idle connections are reaped once idle for idleTimeout, at a reapInterval tick, and not before; the floor is renewed", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(() => undefined) // replies by hand
      const client = yield* memoryClient(server, {
        pool: { initialSize: 1, maxCap: 3, idleTimeout: "25 seconds", reapInterval: "10 seconds" },
        maxInFlight: 1
      })
      const calls = yield* Effect.forkChild(Effect.forEach([1, 2, 3], () => client.call(PING), { concurrency: 3 }))
      yield* settle
      expect(server.connections.length).toBe(3)
      for (const connection of server.connections) connection.reply(pong())
      yield* Fiber.join(calls)
      expect(server.open).toBe(3)
      // Idle since t=0. Reap ticks at 10 s and 20 s: too early.
      yield* TestClock.adjust("29 seconds")
      yield* settle
      expect(server.open).toBe(3)
      // The 30 s tick finds them idle for 30 s >= 25 s: all closed, and the
      // initialSize floor reopened fresh (an idle floor connection must not
      // outlive the server's own idle timeout either).
      yield* TestClock.adjust("1 second")
      yield* settle
      expect(server.open).toBe(1)
      expect(server.connections.length).toBe(4)
      expect(server.connections.slice(0, 3).every((c) => c.closed)).toBe(true)
      expect((yield* client.stats).open).toBe(1)
      // The fresh one works, and is itself idle only from its opening on.
      server.handler = pong
      expect(Response.text(yield* client.call(PING))).toBe("PONG")
      expect(server.connections.length).toBe(4)
      yield* TestClock.adjust("20 seconds")
      yield* settle
      expect(server.connections.length).toBe(4)
    }))

  it.effect("idleTimeout 0 (the default) never reaps", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(pong)
      const client = yield* memoryClient(server, { pool: { initialSize: 0 } })
      yield* client.call(PING)
      yield* TestClock.adjust("1 hour")
      yield* settle
      expect(server.open).toBe(1)
    }))

  it.effect("requestTimeout fires, fails the call as maybeProcessed, and the connection is never reused", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(() => undefined)
      const client = yield* memoryClient(server, { requestTimeout: "1 second", pool: { maxCap: 1 } })
      const first = yield* Effect.forkChild(Effect.flip(client.call(PING)))
      const second = yield* Effect.forkChild(Effect.flip(client.call(echo("queued behind"))))
      yield* settle
      yield* TestClock.adjust("999 millis")
      yield* settle
      expect(first.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(first)
      expect(error.reason._tag).toBe("RequestTimeout")
      expect(error.maybeProcessed).toBe(true)
      // The other call on that connection fails too (written, so maybe processed).
      const other = yield* Fiber.join(second)
      expect(other.reason._tag).toBe("ConnectionClosed")
      expect(other.maybeProcessed).toBe(true)
      yield* settle
      expect(server.connections[0]!.closed).toBe(true)
      // The late reply cannot reach anyone; the next call opens a new connection.
      server.connections[0]!.reply(pong())
      server.handler = (request) => Response.ok(request.payload)
      expect(Response.text(yield* client.call(echo("mine")))).toBe("mine")
      expect(server.connections.length).toBe(2)
    }))

  it.effect("acquireTimeout when every connection is busy", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(() => undefined)
      const client = yield* memoryClient(server, { pool: { maxCap: 1 }, maxInFlight: 1, acquireTimeout: "500 millis" })
      const busy = yield* Effect.forkChild(client.call(PING))
      yield* settle
      const waiting = yield* Effect.forkChild(Effect.flip(client.call(PING)))
      yield* settle
      yield* TestClock.adjust("499 millis")
      yield* settle
      expect(waiting.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(waiting)
      expect(error.reason._tag).toBe("AcquireTimeout")
      expect(error.maybeProcessed).toBe(false)
      // The busy call is unaffected and nothing else was sent.
      expect(server.connections[0]!.requests.length).toBe(1)
      server.connections[0]!.reply(pong())
      expect(Response.text(yield* Fiber.join(busy))).toBe("PONG")
    }))

  it.effect("connectTimeout", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(pong)
      server.hangOnConnect = true
      const making = yield* Effect.forkChild(Effect.flip(memoryClient(server, { connectTimeout: "2 seconds" })))
      yield* settle
      yield* TestClock.adjust("2 seconds")
      const error = yield* Fiber.join(making)
      expect(error.reason._tag).toBe("ConnectTimeout")
      expect(error.message).toContain("2s")
    }))

  it.effect("connectTimeout: each dial times out at its own deadline; a dial that connected is left alone", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(pong)
      // Dials that take `delays[i]` (TestClock) before connecting.
      const delays = ["1 second", "5 seconds", "5 seconds"] as const
      let dials = 0
      const slow: Client.Dialer["Service"] = {
        address: server.dialer.address,
        dial: Effect.suspend(() => Effect.andThen(Effect.sleep(delays[dials++]!), server.dialer.dial))
      }
      const options = { connectTimeout: "2 seconds", acquireTimeout: "1 minute", maxInFlight: 1 } as const
      const make = (initialSize: number) =>
        Client.make({ ...options, pool: { initialSize, maxCap: 3 } }).pipe(Effect.provideService(Client.Dialer, slow))

      // Connected after 1 s: still open, and working, well past its deadline.
      const making = yield* Effect.forkChild(make(1))
      yield* settle
      yield* TestClock.adjust("1 second")
      const client = yield* Fiber.join(making)
      yield* TestClock.adjust("5 seconds")
      expect((yield* client.stats).open).toBe(1)
      expect(Response.text(yield* client.call(PING))).toBe("PONG")

      // Two hung dials, a second apart: each fails at its own deadline.
      const empty = yield* make(0)
      const first = yield* Effect.forkChild(Effect.flip(empty.call(PING)))
      yield* settle
      yield* TestClock.adjust("1 second")
      const second = yield* Effect.forkChild(Effect.flip(empty.call(PING)))
      yield* settle
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(first)).reason._tag).toBe("ConnectTimeout")
      yield* settle
      expect(second.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(second)).reason._tag).toBe("ConnectTimeout")
      expect(dials).toBe(3)
    }))

  it.effect("the initialSize floor fails with the first failed dial; dials under way are interrupted", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(pong)
      let dials = 0
      let interrupted = 0
      const refused = new Socket.SocketError({
        reason: new Socket.SocketOpenError({ kind: "Unknown", cause: new Error("refused") })
      })
      const dialer: Client.Dialer["Service"] = {
        address: server.dialer.address,
        dial: Effect.suspend(() => {
          const n = ++dials
          if (n <= 2) return server.dialer.dial
          if (n === 5) return Effect.fail(refused)
          return Effect.onInterrupt(Effect.never, () => Effect.sync(() => interrupted++))
        })
      }
      const error = yield* Effect.flip(
        Client.make({ pool: { initialSize: 6, maxCap: 6 } }).pipe(Effect.provideService(Client.Dialer, dialer))
      )
      expect(error.reason._tag).toBe("ConnectFailed")
      // Dials 3 and 4 were under way: interrupted; the 6th never started.
      expect(interrupted).toBe(2)
      expect(dials).toBe(5)
      expect(server.open).toBe(0)
    }))

  it.effect("connectTimeout: a refill dial that hangs times out, and the refill backs off and dials again", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(pong)
      const delays = ["1 second", "1 minute", "1 second"] as const
      let dials = 0
      const slow: Client.Dialer["Service"] = {
        address: server.dialer.address,
        dial: Effect.suspend(() => Effect.andThen(Effect.sleep(delays[dials++]!), server.dialer.dial))
      }
      const making = yield* Effect.forkChild(
        Client.make({ connectTimeout: "2 seconds", pool: { initialSize: 1, refill: Schedule.spaced("1 second") } })
          .pipe(Effect.provideService(Client.Dialer, slow))
      )
      yield* settle
      yield* TestClock.adjust("1 second")
      const client = yield* Fiber.join(making)
      server.connections[0]!.close()
      yield* settle
      // It died young: the refill waits 1 s first.
      expect(dials).toBe(1)
      yield* TestClock.adjust("1 second")
      yield* settle
      expect(dials).toBe(2)
      yield* TestClock.adjust("2 seconds")
      yield* settle
      // Timed out; the next dial waits for the refill's 1 s.
      expect(dials).toBe(2)
      expect((yield* client.stats).open).toBe(0)
      yield* TestClock.adjust("1 second")
      yield* settle
      expect(dials).toBe(3)
      yield* TestClock.adjust("1 second")
      yield* settle
      expect((yield* client.stats).open).toBe(1)
      expect(Response.text(yield* client.call(PING))).toBe("PONG")
    }))

  it.effect("writes are coalesced: a pipeline is one write, concurrent calls share writes", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make((request) => Response.ok(request.payload))
      const client = yield* memoryClient(server, { pool: { maxCap: 1 } })
      const replies = yield* client.pipeline(Array.from({ length: 100 }, (_, i) => echo(`${i}`)))
      expect(replies.map(Response.text)).toEqual(Array.from({ length: 100 }, (_, i) => `${i}`))
      const connection = server.connections[0]!
      expect(connection.writes).toBe(1)
      const before = connection.writes
      const all = yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => i), (i) => client.call(echo(`c${i}`)), {
        concurrency: "unbounded"
      })
      expect(all.map(Response.text)).toEqual(Array.from({ length: 50 }, (_, i) => `c${i}`))
      expect(connection.writes - before).toBeLessThanOrEqual(3)
      expect(server.connections.length).toBe(1)
    }))

  it.effect("retry: a schedule retries failures that were never sent, and never replays a sent request", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(pong)
      server.failDials = 2
      const client = yield* memoryClient(server, {
        pool: { initialSize: 0 },
        retry: Schedule.max([Schedule.spaced("100 millis"), Schedule.recurs(5)])
      })
      const call = yield* Effect.forkChild(client.call(PING))
      yield* settle
      yield* TestClock.adjust("200 millis")
      expect(Response.text(yield* Fiber.join(call))).toBe("PONG")
      expect(server.connections.length).toBe(1)

      // The server closes the connection upon the request: maybe processed, not retried.
      server.handler = (_request, connection) => {
        connection.close()
        return undefined
      }
      const error = yield* Effect.flip(client.call(echo("once")))
      expect(error.reason._tag).toBe("ConnectionClosed")
      expect(error.maybeProcessed).toBe(true)
      expect(server.connections.flatMap((c) => c.requests).filter((r) => r.code === 2).length).toBe(1)
    }))

  it.effect("a request over maxFrameSize fails unsent; the connection stays usable", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make((request) => Response.ok(request.payload))
      const client = yield* memoryClient(server, { maxFrameSize: 100 })
      const error = yield* Effect.flip(client.call(echo("x".repeat(200))))
      expect(error.reason._tag).toBe("RequestTooLarge")
      expect(error.maybeProcessed).toBe(false)
      const mixed = yield* Effect.flip(client.pipeline([echo("ok"), echo("y".repeat(200))]))
      expect(mixed.reason._tag).toBe("RequestTooLarge")
      expect(Response.text(yield* client.call(echo("small")))).toBe("small")
      expect(server.connections.length).toBe(1)
      expect(server.connections[0]!.requests.map(Request.text)).toEqual(["small"])
    }))

  it.effect("an interrupted caller keeps its place: the next caller still gets its own reply", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(() => undefined)
      const client = yield* memoryClient(server, { pool: { maxCap: 1 } })
      const first = yield* Effect.forkChild(client.call(echo("A")))
      yield* settle
      yield* Fiber.interrupt(first)
      const second = yield* Effect.forkChild(client.call(echo("B")))
      yield* settle
      const connection = server.connections[0]!
      expect(connection.requests.map(Request.text)).toEqual(["A", "B"])
      connection.reply(Response.ok("A"))
      connection.reply(Response.ok("B"))
      expect(Response.text(yield* Fiber.join(second))).toBe("B")
      expect(server.connections.length).toBe(1)
    }))

  it.effect("a write error closes the connection: typed error marked maybeProcessed", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(pong)
      const client = yield* memoryClient(server)
      server.failWrites = true
      const error = yield* Effect.flip(client.call(PING))
      expect(error.reason._tag).toBe("ConnectionClosed")
      expect(error.maybeProcessed).toBe(true)
      expect(error.message).toContain("EPIPE")
      server.failWrites = false
      expect(Response.text(yield* client.call(PING))).toBe("PONG")
      expect(server.connections.length).toBe(2)
    }))

  it.effect("when make fails, the connections it did open are closed", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(pong)
      // The third dial fails, after two connections opened.
      let dials = 0
      const dialer: Client.Dialer["Service"] = {
        address: server.dialer.address,
        dial: Effect.suspend(() => {
          if (++dials === 3) server.failDials = 1
          return server.dialer.dial
        })
      }
      const error = yield* Effect.flip(
        Client.make({ pool: { initialSize: 3 } }).pipe(Effect.provideService(Client.Dialer, dialer))
      )
      expect(error.reason._tag).toBe("ConnectFailed")
      yield* settle
      expect(server.connections.length).toBe(2)
      expect(server.open).toBe(0)
    }))

  it.effect("the server closing an idle connection: the next call opens a new one", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(pong)
      const client = yield* memoryClient(server)
      yield* client.call(PING)
      server.connections[0]!.close()
      yield* settle
      expect(Response.text(yield* client.call(PING))).toBe("PONG")
      expect(server.connections.length).toBe(2)
    }))
})

describe("Client.run (typed commands)", () => {
  class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { key: Schema.String }) {}
  const Get = Command.make("Get", { code: 10, payload: Schema.String, success: Schema.String, error: NotFound })
  const [, handler] = Get.handle((key) => key === "a" ? Effect.succeed("A") : Effect.fail(new NotFound({ key })))

  it.effect("decodes the success, rebuilds the typed error, and reports other error replies", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make((request) =>
        request.code === 10 ? Effect.runSync(handler(request)) as Response.Response : Response.error("unknown")
      )
      const client = yield* memoryClient(server)
      expect(yield* client.run(Get, "a")).toBe("A")
      const notFound = yield* Effect.flip(client.run(Get, "b"))
      expect(notFound).toBeInstanceOf(NotFound)
      expect(notFound._tag === "NotFound" && notFound.key).toBe("b")
      const Other = Command.make("Other", { code: 11, success: Schema.String })
      const other = yield* Effect.flip(Client.run(Other, undefined).pipe(Effect.provideService(Client.Client, client)))
      expect(other._tag).toBe("CommandError")
      expect(server.connections[0]!.requests.map((r) => r.code)).toEqual([10, 10, 11])
    }))
})

describe("Client options", () => {
  it.effect("bad values fail with InvalidOption naming the option", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(() => Response.ok(""))
      const cases: Array<[Client.Options, string]> = [
        [{ pool: { maxCap: 0 } }, "pool.maxCap"],
        [{ pool: { initialSize: -1 } }, "pool.initialSize"],
        [{ pool: { reapInterval: 0 } }, "pool.reapInterval"],
        [{ pool: { idleTimeout: "soon" as never } }, "pool.idleTimeout"],
        [{ requestTimeout: -5 }, "requestTimeout"],
        [{ connectTimeout: Number.NaN }, "connectTimeout"],
        [{ maxInFlight: 1.5 }, "maxInFlight"],
        [{ maxFrameSize: 0 }, "maxFrameSize"],
        [{ retry: "twice" as never }, "retry"],
        [{ pool: { refill: "backoff" as never } }, "pool.refill"],
        [{ maxMetadataEntries: -1 }, "maxMetadataEntries"],
        [{ maxMetadataBytes: 0.5 }, "maxMetadataBytes"]
      ]
      for (const [options, option] of cases) {
        const error = yield* Effect.flip(memoryClient(server, options))
        const reason = error.reason
        expect(reason._tag).toBe("InvalidOption")
        if (reason._tag === "InvalidOption") expect(reason.option).toBe(option)
        expect(error.message).toContain(option)
      }
      expect(server.connections.length).toBe(0)
    }))

  it.effect("defaults, Go's maxCap >= initialSize rule, and Infinity disabling a timeout", () =>
    Effect.gen(function*() {
      const resolved = yield* Client.resolveOptions({})
      expect(resolved).toEqual(Client.defaults)
      expect(resolved.pool).toEqual({
        initialSize: 1,
        maxCap: 10,
        idleTimeout: resolved.pool.idleTimeout,
        reapInterval: resolved.pool.reapInterval,
        refill: resolved.pool.refill
      })
      // A default request timeout: a silent server must not hold a call forever.
      expect(Duration.toMillis(resolved.requestTimeout)).toBe(60_000)
      const raised = yield* Client.resolveOptions({ pool: { initialSize: 5, maxCap: 2 }, requestTimeout: Infinity })
      expect(raised.pool.maxCap).toBe(5)
      expect(Duration.isZero(raised.requestTimeout)).toBe(true)
    }))

  it.effect("Client.config reads QUASIZERO_* and NodeClient.addressConfig reads QUASIZERO_ADDRESS", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromEnv({
        env: {
          QUASIZERO_ADDRESS: "[::1]:7475",
          QUASIZERO_POOL_MAX_CAP: "3",
          QUASIZERO_POOL_IDLE_TIMEOUT: "30 seconds",
          QUASIZERO_REQUEST_TIMEOUT: "2 seconds",
          QUASIZERO_MAX_IN_FLIGHT: "1",
          QUASIZERO_MAX_METADATA_ENTRIES: "16",
          QUASIZERO_MAX_METADATA_BYTES: "4096"
        }
      })
      const options = yield* Config.unwrap(Client.config).parse(provider)
      const resolved = yield* Client.resolveOptions(options)
      expect(resolved.pool.maxCap).toBe(3)
      expect(resolved.maxInFlight).toBe(1)
      expect(resolved.pool.initialSize).toBe(1)
      expect([resolved.maxMetadataEntries, resolved.maxMetadataBytes]).toEqual([16, 4096])
      expect(yield* NodeClient.addressConfig.parse(provider)).toEqual({ host: "::1", port: 7475 })
      expect(NodeClient.parseAddress("unix:/tmp/q.sock")).toEqual({ path: "/tmp/q.sock" })
      expect(NodeClient.parseAddress("127.0.0.1:99999")).toBeUndefined()
      expect((yield* NodeClient.make({ host: "::1", port: 1 })).address).toBe("[::1]:1")
      const badPort = yield* Effect.flip(NodeClient.make({ host: "::1", port: 0 }))
      expect(badPort.reason._tag).toBe("InvalidOption")
    }))
})
