// The server over real loopback TCP sockets: semantics, bad input,
// backpressure, limits and graceful shutdown.
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import { TestClock } from "effect/testing"
import * as Net from "node:net"
import * as Handlers from "../src/Handlers.ts"
import * as Request from "../src/Request.ts"
import * as Server from "../src/Server.ts"
import * as Wire from "../src/Wire.ts"
import * as Harness from "./support/harness.ts"
import * as Raw from "./support/rawClient.ts"

const silentLogger = Logger.layer([])

const refused = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const s = Net.connect(port, "127.0.0.1")
    s.on("connect", () => (s.destroy(), resume(Effect.succeed(false))))
    s.on("error", () => resume(Effect.succeed(true)))
  })

describe("Server over TCP", () => {
  it.live("answers every demo code, and unknown codes with Go's text", () =>
    Effect.gen(function*() {
      const { port } = yield* Harness.tcp()
      const client = yield* Raw.connect(port)
      yield* client.write(Wire.encodeRequests([
        Request.makeUnsafe(1),
        Request.makeUnsafe(2, { payload: "hello" }),
        Request.makeUnsafe(3),
        Request.makeUnsafe(4, { metadata: new Map([["trace", "abc"], ["__proto__", "x"]]) }),
        Request.makeUnsafe(5, { payload: "1" }),
        Request.makeUnsafe(424242)
      ]))
      const [ping, echo, fail, meta, sleep, unknown] = yield* client.read(6)
      expect(Raw.text(ping!.payload)).toBe("PONG")
      expect(Raw.text(echo!.payload)).toBe("hello")
      expect(fail!.errorMessage).toBe("something went wrong")
      expect([...meta!.metadata]).toEqual([["trace", "abc"], ["__proto__", "x"]])
      expect(Raw.text(meta!.payload)).toBe("META")
      expect(Raw.text(sleep!.payload)).toBe("SLEPT")
      expect(unknown!.errorMessage).toBe("unknown command code 424242")
    }))

  it.live("1,000 pipelined requests in one write come back in order", () =>
    Effect.gen(function*() {
      const { port } = yield* Harness.tcp()
      const client = yield* Raw.connect(port)
      const requests = Array.from({ length: 1000 }, (_, i) => Request.makeUnsafe(2, { payload: String(i) }))
      yield* client.write(Wire.encodeRequests(requests))
      const replies = yield* client.read(1000)
      expect(replies.map((r) => Raw.text(r.payload))).toEqual(requests.map((_, i) => String(i)))
    }))

  it.live("frames split at random byte boundaries across writes", () =>
    Effect.gen(function*() {
      const { port } = yield* Harness.tcp()
      const client = yield* Raw.connect(port)
      const requests = Array.from({ length: 200 }, (_, i) =>
        Request.makeUnsafe(2, { payload: "x".repeat(i * 7), metadata: { i: String(i) } }))
      const bytes = Wire.encodeRequests(requests)
      let seed = 42
      const random = () =>
        (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
      for (let at = 0; at < bytes.length;) {
        const size = 1 + Math.floor(random() * 64)
        yield* client.write(bytes.subarray(at, at + size))
        at += size
      }
      const replies = yield* client.read(200)
      expect(replies.map((r) => r.payload.length)).toEqual(requests.map((_, i) => i * 7))
    }))

  it.live("64 concurrent connections each get their own replies", () =>
    Effect.gen(function*() {
      const { port, server } = yield* Harness.tcp()
      const results = yield* Effect.forEach(
        Array.from({ length: 64 }, (_, c) => c),
        (c) =>
          Effect.scoped(Effect.gen(function*() {
            const client = yield* Raw.connect(port)
            const out: Array<string> = []
            for (let i = 0; i < 20; i++) {
              yield* client.write(Wire.encodeRequest(Request.makeUnsafe(2, { payload: `${c}:${i}` })))
              out.push(Raw.text((yield* client.read(1))[0]!.payload))
            }
            return out
          })),
        { concurrency: "unbounded" }
      )
      results.forEach((out, c) => expect(out).toEqual(Array.from({ length: 20 }, (_, i) => `${c}:${i}`)))
      expect(server.connections()).toBeLessThanOrEqual(64)
    }))

  it.live("concurrency > 1 runs handlers at once but replies in request order", () =>
    Effect.gen(function*() {
      const finished: Array<number> = []
      const slow: Handlers.Handler = (req) => {
        const ms = Number(Raw.text(req.payload))
        return Effect.as(Effect.andThen(Effect.sleep(ms), Effect.sync(() => finished.push(ms))), req.payload)
      }
      const { port } = yield* Harness.tcp({ concurrency: 4 }, [[7, slow]])
      const client = yield* Raw.connect(port)
      yield* client.write(
        Wire.encodeRequests(["80", "60", "40", "20"].map((p) => Request.makeUnsafe(7, { payload: p })))
      )
      const replies = yield* client.read(4)
      expect(replies.map((r) => Raw.text(r.payload))).toEqual(["80", "60", "40", "20"])
      expect(finished).toEqual([20, 40, 60, 80]) // finished out of order
    }))

  it.live("a malformed body gets an error reply and the connection stays usable", () =>
    Effect.gen(function*() {
      const errors: Array<string> = []
      const { port } = yield* Harness.tcp({ onError: (e) => Effect.sync(() => void errors.push(e.reason._tag)) })
      const client = yield* Raw.connect(port)
      // field 1 with wire type 2 (length-delimited): framing intact, body wrong
      yield* client.write(new Uint8Array([0x03, 0x0a, 0x01, 0x41, ...Wire.encodeRequest(Request.makeUnsafe(1))]))
      const [bad, ping] = yield* client.read(2)
      expect(bad!.errorMessage).toMatch(/^malformed request: field 1 has invalid wire type 2/)
      expect(Raw.text(ping!.payload)).toBe("PONG")
      expect(errors).toEqual(["MalformedRequest"])
    }))

  it.live("invalid UTF-8 in metadata is a malformed request, not a crash", () =>
    Effect.gen(function*() {
      const { port } = yield* Harness.tcp()
      const client = yield* Raw.connect(port)
      // metadata entry {key: 0xff}
      yield* client.write(
        new Uint8Array([0x05, 0x12, 0x03, 0x0a, 0x01, 0xff, ...Wire.encodeRequest(Request.makeUnsafe(1))])
      )
      const [bad, ping] = yield* client.read(2)
      expect(bad!.errorMessage).toMatch(/not valid UTF-8/)
      expect(Raw.text(ping!.payload)).toBe("PONG")
    }))

  it.live("an oversized declared length gets one reply naming the limit, then the connection closes", () =>
    Effect.gen(function*() {
      const errors: Array<Server.ServerError> = []
      const { port } = yield* Harness.tcp({
        maxFrameSize: 1024,
        onError: (e) => Effect.sync(() => void errors.push(e))
      })
      const client = yield* Raw.connect(port)
      // a valid PING, then a frame declaring 2 GiB: the PING is answered first
      yield* client.write(new Uint8Array([...Wire.encodeRequest(Request.makeUnsafe(1)), 0x80, 0x80, 0x80, 0x80, 0x08]))
      const replies = yield* client.closed
      expect(replies.map((r) => r.errorMessage)).toEqual([
        "",
        "frame of 2147483648 bytes exceeds the maximum frame size of 1024 bytes"
      ])
      expect(errors.map((e) => e.reason._tag)).toEqual(["FrameError"])
    }))

  it.live("exactly maxFrameSize is accepted, one byte more is not", () =>
    Effect.gen(function*() {
      const { port } = yield* Harness.tcp({ maxFrameSize: 1000 })
      const fits = Request.makeUnsafe(2, { payload: new Uint8Array(1000 - 4) }) // 1 tag + 2 length bytes + 1 code... sized below
      const body = Wire.encodeRequestBody(fits).length
      const exact = Request.makeUnsafe(2, { payload: new Uint8Array(996 - (body - 1000)) })
      expect(Wire.encodeRequestBody(exact).length).toBe(1000)
      const client = yield* Raw.connect(port)
      yield* client.write(Wire.encodeRequest(exact))
      expect((yield* client.read(1))[0]!.payload.length).toBe(exact.payload.length)
      const over = Request.makeUnsafe(2, { payload: new Uint8Array(exact.payload.length + 1) })
      yield* client.write(Wire.encodeRequest(over))
      const [reply] = yield* client.closed
      expect(reply!.errorMessage).toBe("frame of 1001 bytes exceeds the maximum frame size of 1000 bytes")
    }))

  it.live("a length varint longer than 10 bytes is a framing error", () =>
    Effect.gen(function*() {
      const { port } = yield* Harness.tcp()
      const client = yield* Raw.connect(port)
      yield* client.write(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]))
      const [reply] = yield* client.closed
      expect(reply!.errorMessage).toBe("frame length varint at byte 0 is longer than 10 bytes")
    }))

  it.live("a handler defect replies 'internal error' and the connection stays usable", () =>
    Effect.gen(function*() {
      const errors: Array<string> = []
      const { port } = yield* Harness.tcp({ onError: (e) => Effect.sync(() => void errors.push(e.reason._tag)) }, [
        [1, () => Effect.succeed("PONG")],
        [6, () => Effect.die(new Error("boom"))],
        [8, () => {
          throw new Error("thrown")
        }]
      ])
      const client = yield* Raw.connect(port)
      yield* client.write(Wire.encodeRequests([Request.makeUnsafe(6), Request.makeUnsafe(8), Request.makeUnsafe(1)]))
      const replies = yield* client.read(3)
      expect(replies.map((r) => r.errorMessage)).toEqual(["internal error", "internal error", ""])
      expect(errors).toEqual(["HandlerDefect", "HandlerDefect"])
    }).pipe(Effect.provide(silentLogger)))

  it.live("typed errors become error_message, with mapError and Go-style writers", () =>
    Effect.gen(function*() {
      class NotFound {
        readonly _tag = "NotFound"
        readonly message = "not found"
      }
      const { port } = yield* Harness.tcp(undefined, [
        [1, () => Effect.fail(new NotFound())],
        [
          2,
          Handlers.writer((req, res) =>
            Effect.suspend(() => {
              res.set(req.payload)
              res.setMeta("m", "n")
              return Effect.fail("partial failure")
            })
          )
        ],
        [3, () => Effect.fail(42)]
      ])
      const client = yield* Raw.connect(port)
      yield* client.write(
        Wire.encodeRequests([Request.makeUnsafe(1), Request.makeUnsafe(2, { payload: "p" }), Request.makeUnsafe(3)])
      )
      const [typed, partial, other] = yield* client.read(3)
      expect(typed!.errorMessage).toBe("not found")
      expect(partial!.errorMessage).toBe("partial failure")
      expect(Raw.text(partial!.payload)).toBe("p")
      expect([...partial!.metadata]).toEqual([["m", "n"]])
      expect(other!.errorMessage).toBe("42")
    }))

  it.live("maxConnections refuses extra connections without affecting others", () =>
    Effect.gen(function*() {
      const errors: Array<string> = []
      const { port } = yield* Harness.tcp({
        maxConnections: 2,
        onError: (e) => Effect.sync(() => void errors.push(e.reason._tag))
      })
      const a = yield* Raw.connect(port)
      const b = yield* Raw.connect(port)
      yield* a.write(Wire.encodeRequest(Request.makeUnsafe(1)))
      yield* b.write(Wire.encodeRequest(Request.makeUnsafe(1)))
      yield* a.read(1)
      yield* b.read(1)
      const c = yield* Raw.connect(port)
      yield* c.write(Wire.encodeRequest(Request.makeUnsafe(1)))
      expect(yield* c.closed).toEqual([])
      yield* a.write(Wire.encodeRequest(Request.makeUnsafe(2, { payload: "still here" })))
      expect(Raw.text((yield* a.read(1))[0]!.payload)).toBe("still here")
      expect(errors).toEqual(["ConnectionLimit"])
    }))

  it.live("a client that stops reading stops being read; nothing is lost when it resumes", () =>
    Effect.gen(function*() {
      let handled = 0
      const { port } = yield* Harness.tcp(undefined, [[2, (req) => Effect.sync(() => (handled++, req.payload))]])
      const client = yield* Raw.connect(port)
      client.socket.pause()
      const payload = new Uint8Array(64 * 1024).fill(7)
      const total = 320 // 20 MiB of ECHO
      const batch = Wire.encodeRequests(Array.from({ length: 32 }, () => Request.makeUnsafe(2, { payload })))
      for (let i = 0; i < total / 32; i++) client.socket.write(batch)
      yield* Effect.sleep("300 millis")
      const whilePaused = handled
      // Bounded by socket buffers, not by what the client sent.
      expect(whilePaused).toBeLessThan(total)
      client.socket.resume()
      const replies = yield* client.read(total)
      expect(replies.every((r) => r.payload.length === payload.length)).toBe(true)
      expect(handled).toBe(total)
    }))

  it.live("graceful shutdown answers every request already read, then releases the port", () =>
    Effect.gen(function*() {
      const { port, close } = yield* Harness.tcp({ shutdownTimeout: "5 seconds" })
      const busy = yield* Raw.connect(port)
      const idle = yield* Raw.connect(port)
      yield* busy.write(
        Wire.encodeRequests([Request.makeUnsafe(5, { payload: "200" }), Request.makeUnsafe(1), Request.makeUnsafe(1)])
      )
      yield* Effect.sleep("50 millis") // let the server read the batch
      const closing = yield* Effect.forkChild(close)
      yield* Effect.sleep("20 millis")
      // While draining, new clients are refused at connect time: they cannot
      // write a request that would then be dropped.
      expect(yield* refused(port)).toBe(true)
      const replies = yield* busy.closed
      expect(replies.map((r) => Raw.text(r.payload))).toEqual(["SLEPT", "PONG", "PONG"])
      expect(yield* idle.closed).toEqual([])
      yield* Fiber.join(closing)
      expect(yield* refused(port)).toBe(true)
    }))
})

describe("Server options", () => {
  it.effect("rejects bad values with a typed error naming the option", () =>
    Effect.gen(function*() {
      const bad: ReadonlyArray<readonly [Server.Options, string]> = [
        [{ timeout: -1 }, "timeout"],
        [{ idleTimeout: "soon" as never }, "idleTimeout"],
        [{ maxFrameSize: 0 }, "maxFrameSize"],
        [{ maxFrameSize: 2 ** 31 }, "maxFrameSize"],
        [{ concurrency: 1.5 }, "concurrency"],
        [{ maxConnections: 0 }, "maxConnections"],
        [{ maxMetadataEntries: -1 }, "maxMetadataEntries"],
        [{ maxMetadataBytes: 0.5 }, "maxMetadataBytes"],
        [{ maxBufferedBytes: 0 }, "maxBufferedBytes"]
      ]
      for (const [options, option] of bad) {
        const error = yield* Effect.flip(Server.resolveOptions(options))
        expect(error.reason._tag).toBe("InvalidOption")
        expect(error.reason._tag === "InvalidOption" && error.reason.option).toBe(option)
      }
      expect(yield* Server.resolveOptions({})).toMatchObject({
        timeout: 0,
        idleTimeout: 0,
        maxFrameSize: 1 << 24,
        maxConnections: 16_384,
        decodeLimits: { maxMetadataEntries: 1024, maxMetadataBytes: 1 << 20 },
        maxBufferedBytes: 256 * 1024 * 1024,
        concurrency: 1,
        shutdownTimeout: 10_000
      })
      expect(yield* Server.resolveOptions({})).toEqual(Server.defaults)
    }))

  it.effect("layerConfig reads QUASIZERO_* variables", () =>
    Effect.gen(function*() {
      const env = {
        QUASIZERO_TIMEOUT: "5 seconds",
        QUASIZERO_IDLE_TIMEOUT: "1 minute",
        QUASIZERO_MAX_FRAME_SIZE: "4096",
        QUASIZERO_CONCURRENCY: "8",
        QUASIZERO_MAX_METADATA_ENTRIES: "12",
        QUASIZERO_MAX_METADATA_BYTES: "300",
        QUASIZERO_MAX_BUFFERED_BYTES: "5000000",
        QUASIZERO_MAX_CONNECTIONS: "77"
      }
      const options = yield* Server.config.pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))
      )
      expect(yield* Server.resolveOptions(options)).toMatchObject({
        timeout: 5000,
        idleTimeout: 60_000,
        maxFrameSize: 4096,
        concurrency: 8,
        shutdownTimeout: 10_000,
        decodeLimits: { maxMetadataEntries: 12, maxMetadataBytes: 300 },
        maxBufferedBytes: 5_000_000,
        maxConnections: 77
      })
    }))

  it.effect("counts requests by code and times handlers when requestMetrics is on", () =>
    Effect.gen(function*() {
      const { connect } = yield* Harness.memory({ requestMetrics: true })
      const peer = connect()
      peer.send(
        Wire.encodeRequests([
          Request.makeUnsafe(1),
          Request.makeUnsafe(1),
          Request.makeUnsafe(424242),
          Request.makeUnsafe(5, { payload: "10" })
        ])
      )
      yield* Harness.settle
      yield* TestClock.adjust(10)
      yield* Harness.settle
      expect(Harness.responses(peer.received())).toHaveLength(4)
      const snapshot = yield* Metric.snapshot
      const byCode = snapshot.find((m) => m.id === "quasizero_server_requests_by_code")?.state as {
        occurrences: ReadonlyMap<string, number>
      }
      expect(Object.fromEntries(byCode.occurrences)).toEqual({ "1": 2, unknown: 1, "5": 1 })
      const seconds = snapshot.find((m) => m.id === "quasizero_server_handler_seconds")?.state as {
        count: number
        max: number
      }
      expect(seconds.count).toBe(3) // unknown codes run no handler
      expect(seconds.max).toBeCloseTo(0.01) // SLEEP 10 ms of TestClock time; PING counts as 0
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("counts connections and requests in Effect metrics", () =>
    Effect.gen(function*() {
      const { connect } = yield* Harness.memory()
      const peer = connect()
      peer.send(Wire.encodeRequests([Request.makeUnsafe(1), Request.makeUnsafe(1), Request.makeUnsafe(9)]))
      yield* Harness.settle
      const snapshot = yield* Metric.snapshot
      const find = (id: string) => snapshot.find((m) => m.id === id)?.state as { count?: number; value?: number }
      expect(find("quasizero_server_requests_total")?.count).toBe(3)
      expect(find("quasizero_server_connections_total")?.count).toBe(1)
      expect(find("quasizero_server_connections_open")?.value).toBe(1)
      peer.end()
      yield* Harness.settle
      const after = (yield* Metric.snapshot).find((m) => m.id === "quasizero_server_connections_open")
      expect((after?.state as { value?: number } | undefined)?.value).toBe(0)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
})
