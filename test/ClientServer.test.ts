// Our client against our server over real loopback TCP: the two halves are
// tested apart elsewhere (the client against a raw node:net fake, the server
// against raw sockets); here they must agree with each other, including when
// one side closes, times out or restarts.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as Socket from "effect/socket/Socket"
import * as Client from "../src/Client.ts"
import * as Command from "../src/Command.ts"
import * as Demo from "../src/Demo.ts"
import type * as Handlers from "../src/Handlers.ts"
import * as Message from "../src/Message.ts"
import * as NodeClient from "../src/node/NodeClient.ts"
import * as NodeServer from "../src/node/NodeServer.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import type * as Server from "../src/Server.ts"
import * as Harness from "./support/harness.ts"
import { eventually } from "./support/rawServer.ts"

const PING = Request.makeUnsafe(Demo.PING)
const echo = (payload: string | Uint8Array) => Request.makeUnsafe(Demo.ECHO, { payload })
const FAIL = Request.makeUnsafe(Demo.FAIL)
const sleep = (ms: number) => Request.makeUnsafe(Demo.SLEEP, { payload: String(ms) })

/** Fails the test if `effect` runs longer than `ms` of real time (a hang). */
const bounded = <A, E, R>(effect: Effect.Effect<A, E, R>, ms = 5000) =>
  Effect.timeoutOrElse(effect, { duration: ms, orElse: () => Effect.die(new Error(`hung for ${ms} ms`)) })

/** Counts dials and socket writes: what went out in one write, when a connection was opened. */
interface Counter {
  dials: number
  writes: number
}

/** Our client on a port, through the real Node dialer (optionally counting). */
const clientOn = (port: number, options?: Client.Options, counter?: Counter) =>
  Effect.gen(function*() {
    const dialer = yield* NodeClient.make({ host: "127.0.0.1", port })
    const counted: Client.Dialer["Service"] = counter === undefined ? dialer : {
      address: dialer.address,
      dial: Effect.map(dialer.dial, (socket) => {
        counter.dials++
        return Socket.make({
          reader: socket.reader,
          writer: Effect.map(socket.writer, (writer) => ({
            write: (chunk) => {
              if (!Socket.isCloseEvent(chunk)) counter.writes++
              return writer.write(chunk)
            },
            writeAll: (chunks) => {
              counter.writes++
              return writer.writeAll(chunks)
            }
          }))
        })
      })
    }
    return yield* Client.make(options).pipe(Effect.provideService(Client.Dialer, counted))
  })

const serverAndClient = (
  serverOptions?: Server.Options,
  clientOptions?: Client.Options,
  table?: Handlers.Table<unknown, never>
) =>
  Effect.gen(function*() {
    const server = yield* Harness.tcp(serverOptions, table)
    const client = yield* clientOn(server.port, clientOptions)
    return { ...server, client }
  })

const textOf = (response: Response.Response) => [response.errorMessage, Response.text(response)] as const

describe("Client ↔ Server over loopback", () => {
  it.live("call: every demo code, and an unknown one", () =>
    bounded(Effect.gen(function*() {
      const { client } = yield* serverAndClient()
      expect(textOf(yield* client.call(PING))).toEqual(["", "PONG"])
      expect(textOf(yield* client.call(echo("héllo")))).toEqual(["", "héllo"])
      expect(textOf(yield* client.call(FAIL))).toEqual(["something went wrong", ""])
      const meta = yield* client.call(Request.makeUnsafe(Demo.META, { metadata: { trace: "t-1", empty: "" } }))
      expect(textOf(meta)).toEqual(["", "META"])
      expect(Message.metadataToRecord(meta.metadata)).toEqual({ trace: "t-1", empty: "" })
      expect(textOf(yield* client.call(sleep(5)))).toEqual(["", "SLEPT"])
      expect((yield* client.call(Request.makeUnsafe(-7))).errorMessage).toBe("unknown command code -7")
      // Bytes that are not UTF-8 come back byte for byte.
      const bytes = Uint8Array.from([0xff, 0x00, 0xc3, 0x28, 0x80])
      expect(Array.from((yield* client.call(echo(bytes))).payload)).toEqual(Array.from(bytes))
    })))

  it.live("pipeline: every demo code in one batch, replies in request order", () =>
    bounded(Effect.gen(function*() {
      const { client } = yield* serverAndClient()
      const replies = yield* client.pipeline([
        PING,
        echo("a"),
        FAIL,
        Request.makeUnsafe(Demo.META, { metadata: { k: "v" } }),
        sleep(3),
        Request.makeUnsafe(99),
        echo("z")
      ])
      expect(replies.map(textOf)).toEqual([
        ["", "PONG"],
        ["", "a"],
        ["something went wrong", ""],
        ["", "META"],
        ["", "SLEPT"],
        ["unknown command code 99", ""],
        ["", "z"]
      ])
      expect(replies[3]!.metadata.get("k")).toBe("v")
    })))

  it.live("pipeline of 1,000 requests goes out in one write and comes back in order", () =>
    bounded(Effect.gen(function*() {
      const server = yield* Harness.tcp()
      const counter: Counter = { dials: 0, writes: 0 }
      const client = yield* clientOn(server.port, { pool: { maxCap: 1 } }, counter)
      const requests = Array.from({ length: 1000 }, (_, i) => (i % 100 === 0 ? sleep(1) : echo(`#${i}`)))
      const before = counter.writes
      const replies = yield* client.pipeline(requests)
      expect(counter.writes - before).toBe(1)
      expect(replies.map(Response.text)).toEqual(requests.map((r, i) => (r.code === Demo.SLEEP ? "SLEPT" : `#${i}`)))
      expect(server.server.connections()).toBe(1)
    })))

  it.live("100 concurrent callers never open more than maxCap connections", () =>
    bounded(
      Effect.gen(function*() {
        for (const [maxCap, maxInFlight] of [[4, 1], [2, 64]] as const) {
          const { client, server, close } = yield* serverAndClient(undefined, { pool: { maxCap }, maxInFlight })
          let maxServer = 0
          let maxClient = 0
          const watch = yield* Effect.forkChild(Effect.forever(Effect.flatMap(client.stats, (stats) => {
            maxServer = Math.max(maxServer, server.connections())
            maxClient = Math.max(maxClient, stats.open)
            return Effect.sleep(1)
          })))
          const replies = yield* Effect.forEach(
            Array.from({ length: 100 }, (_, i) => i),
            (i) => client.call(i % 3 === 0 ? sleep(5) : echo(`${i}`)),
            { concurrency: "unbounded" }
          )
          yield* Fiber.interrupt(watch)
          expect(replies.map(Response.text)).toEqual(
            Array.from({ length: 100 }, (_, i) => (i % 3 === 0 ? "SLEPT" : `${i}`))
          )
          // Saturated: every connection it may open was opened, and no more.
          expect({ maxCap, maxServer, maxClient }).toEqual({ maxCap, maxServer: maxCap, maxClient: maxCap })
          yield* close
        }
      }),
      10_000
    ))

  it.live("typed commands end to end: success decoded, Schema.TaggedError rebuilt as the same class", () =>
    bounded(Effect.gen(function*() {
      class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { key: Schema.String, tried: Schema.Number }) {}
      const Entry = Schema.Struct({ key: Schema.String, value: Schema.Number, tags: Schema.Array(Schema.String) })
      const Get = Command.make("Get", { code: 20, payload: Schema.String, success: Entry, error: NotFound })
      const Bytes = Command.make("Bytes", { code: 21, payload: Schema.Uint8Array, success: Schema.Uint8Array })
      const table: Handlers.Table<unknown, never> = [
        ...Demo.table,
        Get.handle((key) =>
          key === "a"
            ? Effect.succeed({ key, value: 1, tags: ["x", "y"] })
            : Effect.fail(new NotFound({ key, tried: 3 }))
        ),
        Bytes.handle((bytes) => Effect.succeed(bytes.map((b) => 255 - b)))
      ]
      const { client } = yield* serverAndClient(undefined, undefined, table)
      expect(yield* client.run(Get, "a")).toEqual({ key: "a", value: 1, tags: ["x", "y"] })
      const error = yield* Effect.flip(client.run(Get, "nope"))
      expect(error).toBeInstanceOf(NotFound)
      expect(error).toEqual(new NotFound({ key: "nope", tried: 3 }))
      expect(Array.from(yield* client.run(Bytes, Uint8Array.from([0, 1, 255])))).toEqual([255, 254, 0])
      // A command the server does not know: a CommandError carrying the reply, not a transport error.
      const Missing = Command.make("Missing", { code: 22 })
      const missing = yield* Effect.flip(client.run(Missing, undefined))
      expect(missing._tag).toBe("CommandError")
      expect(missing.message).toContain("unknown command code 22")
    })))

  it.live("metadata keys like __proto__ and constructor round-trip as plain data", () =>
    bounded(Effect.gen(function*() {
      const { client } = yield* serverAndClient()
      const entries: Array<[string, string]> = [
        ["__proto__", "polluted?"],
        ["constructor", "c"],
        ["prototype", "p"],
        ["toString", "t"],
        ["hasOwnProperty", "h"],
        ["", "empty key"],
        ["ключ 🔑", "значение"],
        ["nul\u0000key", "nul\u0000value"]
      ]
      const reply = yield* client.call(Request.makeUnsafe(Demo.META, { metadata: new Map(entries) }))
      expect(Array.from(reply.metadata).sort()).toEqual([...entries].sort())
      const record = Message.metadataToRecord(reply.metadata)
      expect(Object.getPrototypeOf(record)).toBeNull()
      expect(Object.keys(record).sort()).toEqual(entries.map(([k]) => k).sort())
      expect(({} as Record<string, unknown>).toString).toBe(Object.prototype.toString)
      expect(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted?")).toBe(false)
    })))

  it.live("requestTimeout against SLEEP: RequestTimeout, connection dropped, the next call gets its own reply", () =>
    bounded(Effect.gen(function*() {
      const { client, server } = yield* serverAndClient(undefined, {
        pool: { maxCap: 1 },
        requestTimeout: "150 millis"
      })
      const started = Date.now()
      const error = yield* Effect.flip(client.call(sleep(400)))
      expect(Date.now() - started).toBeLessThan(400)
      expect(error.reason._tag).toBe("RequestTimeout")
      expect(error.maybeProcessed).toBe(true)
      expect(textOf(yield* client.call(echo("second")))).toEqual(["", "second"])
      // Past the moment the stale SLEPT is written: nobody may read it as theirs.
      yield* Effect.sleep(350)
      for (let i = 0; i < 5; i++) expect(textOf(yield* client.call(echo(`next ${i}`)))).toEqual(["", `next ${i}`])
      // The server saw the timed-out connection close once its handler was done.
      yield* eventually(() => server.connections() === 1, "the abandoned connection to close")
      expect((yield* client.stats).open).toBe(1)
    })))

  it.live("server idleTimeout closes an idle pooled connection: the next call gets a fresh one", () =>
    bounded(
      Effect.gen(function*() {
        const server = yield* Harness.tcp({ idleTimeout: "100 millis" })
        const counter: Counter = { dials: 0, writes: 0 }
        const client = yield* clientOn(server.port, { pool: { maxCap: 2 } }, counter)
        expect(textOf(yield* client.call(PING))).toEqual(["", "PONG"])
        // Idle well past the server's timeout (and away from its multiples, where
        // the pool's reopened floor connection is being closed in turn): the
        // client saw the close before the call, so nothing was written on a dead
        // connection and the call simply works.
        for (let i = 0; i < 4; i++) {
          const dials = counter.dials
          yield* Effect.sleep(250)
          expect(textOf(yield* client.call(echo(`after idle ${i}`)))).toEqual(["", `after idle ${i}`])
          expect(counter.dials).toBeGreaterThan(dials)
        }
        expect(server.server.connections()).toBeLessThanOrEqual(1)
      }),
      10_000
    ))

  it.live("a call racing the server's idle close: its reply or ConnectionClosed, never a hang or a wrong reply", () =>
    bounded(
      Effect.gen(function*() {
        const { client } = yield* serverAndClient({ idleTimeout: "50 millis" }, { pool: { maxCap: 1 } })
        let raced = 0
        // Idle for about the server's timeout, so calls land as it closes the
        // connection. Whether the request was read then is unknowable for the
        // client, so a lost race must say "may have been processed".
        for (const idle of [48, 49, 50, 51, 52, 50, 49, 51, 50, 50]) {
          yield* client.call(PING)
          yield* Effect.sleep(idle)
          const result = yield* Effect.result(client.call(echo(`idle ${idle}`)))
          if (result._tag === "Success") expect(Response.text(result.success)).toBe(`idle ${idle}`)
          else {
            raced++
            expect(result.failure.reason._tag).toBe("ConnectionClosed")
            expect(result.failure.maybeProcessed).toBe(true)
          }
          expect(textOf(yield* client.call(PING))).toEqual(["", "PONG"])
        }
        expect(raced).toBeLessThan(10)
      }),
      10_000
    ))

  it.live("pool.idleTimeout below the server's idleTimeout: no call ever races the server's close", () =>
    bounded(
      Effect.gen(function*() {
        const { client, server } = yield* serverAndClient({ idleTimeout: "200 millis" }, {
          pool: { maxCap: 1, idleTimeout: "40 millis", reapInterval: "10 millis" }
        })
        // The same adversarial idle periods as above (and the floor connection
        // too): the client recycles a connection long before the server would.
        for (const idle of [0, 50, 99, 150, 199, 200, 201, 250]) {
          yield* client.call(PING)
          yield* Effect.sleep(idle)
          expect(textOf(yield* client.call(echo(`idle ${idle}`)))).toEqual(["", `idle ${idle}`])
        }
        expect(server.connections()).toBeLessThanOrEqual(2)
      }),
      10_000
    ))

  it.live("graceful server shutdown with calls in flight: each gets its reply or a typed ClientError", () =>
    bounded(Effect.gen(function*() {
      const { client, close } = yield* serverAndClient(undefined, { pool: { maxCap: 4 }, maxInFlight: 4 })
      const calls = yield* Effect.forkChild(Effect.forEach(
        Array.from({ length: 32 }, (_, i) => i),
        (i) => Effect.result(client.call(i % 2 === 0 ? sleep(100) : echo(`${i}`))),
        { concurrency: "unbounded" }
      ))
      yield* Effect.sleep(30)
      yield* close
      const results = yield* Fiber.join(calls)
      let replied = 0
      for (const [i, result] of results.entries()) {
        if (result._tag === "Success") {
          replied++
          expect(Response.text(result.success)).toBe(i % 2 === 0 ? "SLEPT" : `${i}`)
          continue
        }
        // Written but not read before the server closed, or never written
        // (waiting for a connection when the server went away).
        const { maybeProcessed, reason } = result.failure
        expect(Client.isClientError(result.failure)).toBe(true)
        expect(["ConnectionClosed", "ConnectFailed"]).toContain(reason._tag)
        if (reason._tag === "ConnectFailed") expect(maybeProcessed).toBe(false)
      }
      // Calls were written before the close began, so the server had read some
      // and drained them.
      expect(replied).toBeGreaterThan(0)
      // The server is gone: calls fail fast and typed; once no connection is
      // left, with "not sent".
      let after = yield* Effect.flip(client.call(PING))
      for (let i = 0; i < 3 && after.reason._tag !== "ConnectFailed"; i++) {
        expect(after.reason._tag).toBe("ConnectionClosed")
        after = yield* Effect.flip(client.call(PING))
      }
      expect(after.reason._tag).toBe("ConnectFailed")
      expect(after.maybeProcessed).toBe(false)
    })))

  it.live("server restart on the same port: the same client recovers", () =>
    bounded(Effect.gen(function*() {
      const first = yield* Harness.tcp()
      const port = first.port
      const client = yield* clientOn(port, { pool: { maxCap: 3 }, requestTimeout: "1 second" })
      expect(textOf(yield* client.call(PING))).toEqual(["", "PONG"])
      yield* first.close
      for (let i = 0; i < 3; i++) {
        const down = yield* Effect.flip(client.call(PING))
        expect(["ConnectFailed", "ConnectionClosed"]).toContain(down.reason._tag)
      }
      const second = yield* Harness.build(undefined, NodeServer.layer({ host: "127.0.0.1", port }))
      expect(textOf(yield* client.call(echo("back")))).toEqual(["", "back"])
      const replies = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) => client.call(echo(`${i}`)), {
        concurrency: "unbounded"
      })
      expect(replies.map(Response.text)).toEqual(Array.from({ length: 20 }, (_, i) => `${i}`))
      expect(second.server.connections()).toBeGreaterThan(0)
    })))
})
