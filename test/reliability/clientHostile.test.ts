// A hostile server against the client (issue 11, item 9): replies that are
// metadata bombs. What must hold: a reply over `maxMetadataEntries` or
// `maxMetadataBytes` fails its own call with a `ProtocolError` naming the
// limit, costs the client a bounded amount of CPU and memory (decoding stops
// at the first entry past the limit), leaves the event loop free (so
// `requestTimeout` and everything else keep running), and the connection
// stays usable: the frame was read whole, so order still holds.
// Figures are printed as `[reliability]` lines; no timing is asserted.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import { monitorEventLoopDelay } from "node:perf_hooks"
import * as Client from "../../src/Client.ts"
import * as NodeClient from "../../src/node/NodeClient.ts"
import * as Request from "../../src/Request.ts"
import * as Response from "../../src/Response.ts"
import * as MemoryDialer from "../../src/testing/MemoryDialer.ts"
import * as Wire from "../../src/Wire.ts"
import { concat, describeMemory, frame, gc, lengthDelimited, metadataEntry, uvarint } from "./support.ts"

const PING = Request.makeUnsafe(1)

/**
 * A reply body of `entries` distinct tiny keys (empty values), built in one
 * buffer: the worst case per byte for a decoder that builds a Map.
 */
const keyBomb = (entries: number): Uint8Array => {
  const out = new Uint8Array(entries * 12)
  let at = 0
  for (let i = 0; i < entries; i++) {
    const key = i.toString(36)
    out[at++] = 0x12 // field 2, length-delimited: a metadata entry
    out[at++] = key.length + 4
    out[at++] = 0x0a // its key
    out[at++] = key.length
    for (let j = 0; j < key.length; j++) out[at++] = key.charCodeAt(j)
    out[at++] = 0x12 // its value: ""
    out[at++] = 0
  }
  return out.subarray(0, at)
}

/** A raw node:net server answering every request frame with `reply(n)` (n counts from 0). */
interface Hostile {
  readonly port: number
  readonly accepted: () => number
  readonly server: Net.Server
}

const hostileServer = (reply: (n: number) => Uint8Array): Effect.Effect<Hostile, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<Hostile>((resolve) => {
        let accepted = 0
        let n = 0
        const server = Net.createServer({ noDelay: true }, (socket) => {
          accepted++
          socket.on("error", () => {})
          const decoder = new Wire.FrameDecoder()
          const frames: Array<Uint8Array> = []
          socket.on("data", (chunk) => {
            decoder.push(chunk, frames)
            for (let i = 0; i < frames.length; i++) socket.write(reply(n++))
            frames.length = 0
          })
        })
        server.listen(0, "127.0.0.1", () =>
          resolve({
            port: (server.address() as Net.AddressInfo).port,
            accepted: () => accepted,
            server
          }))
      })
    ),
    ({ server }) => Effect.promise(() => new Promise<void>((r) => server.close(() => r())))
  )

const tcpClient = (port: number, options?: Client.Options) =>
  Client.make(options).pipe(Effect.provide(NodeClient.layerDialer({ host: "127.0.0.1", port })))

const heap = () => {
  gc()
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers }
}

describe("client vs a hostile server: metadata bombs", () => {
  it.live("1.3 million distinct keys per reply (13 MB): ProtocolError naming maxMetadataEntries; loop free; connection kept", () =>
    Effect.gen(function*() {
      const entries = 1_300_000
      const bomb = frame(keyBomb(entries))
      const pong = Wire.encodeResponse(Response.ok("PONG"))
      // Every third reply is a real one: the connection must stay in step.
      const server = yield* hostileServer((n) => n % 3 === 2 ? pong : bomb)
      const client = yield* tcpClient(server.port, { requestTimeout: "250 millis" })
      const before = heap()
      const lag = monitorEventLoopDelay({ resolution: 5 })
      lag.enable()
      const durations: Array<number> = []
      let peakHeap = 0
      for (let i = 0; i < 6; i++) {
        const start = performance.now()
        const result = yield* Effect.result(client.call(PING))
        durations.push(performance.now() - start)
        peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)
        if (i % 3 === 2) {
          expect(result._tag).toBe("Success")
          if (result._tag === "Success") expect(Response.text(result.success)).toBe("PONG")
          continue
        }
        expect(result._tag).toBe("Failure")
        if (result._tag !== "Failure") continue
        const reason = result.failure.reason
        expect(reason._tag).toBe("ProtocolError")
        if (reason._tag === "ProtocolError") expect(reason.limit).toBe("maxMetadataEntries")
        expect(result.failure.maybeProcessed).toBe(true)
        expect(result.failure.message).toContain("maxMetadataEntries")
      }
      lag.disable()
      const after = heap()
      console.log(
        `[reliability] client: reply of ${entries.toLocaleString("en")} distinct keys (${
          (bomb.length / 1e6).toFixed(1)
        } MB), default limits: ProtocolError (maxMetadataEntries) in ${
          durations.filter((_, i) => i % 3 !== 2).map((d) => d.toFixed(0)).join("/")
        } ms per call (mostly receiving 13 MB), event-loop delay max ${(lag.max / 1e6).toFixed(1)} ms, `
          + `heap peak +${((peakHeap - before.heapUsed) / 1e6).toFixed(1)} MB; ${server.accepted()} connection(s); `
          + describeMemory(before, after)
      )
      // The same connection throughout: an over-limit reply fails one call, not the connection.
      expect(server.accepted()).toBe(1)
    }))

  it.live("2 MiB metadata values: ProtocolError naming maxMetadataBytes, charged before the bytes are read", () =>
    Effect.gen(function*() {
      const value = new Uint8Array(2 << 20).fill(0x61)
      const big = frame(concat([metadataEntry(new Uint8Array([0x6b]), value), lengthDelimited(3, [0x78])]))
      const server = yield* hostileServer(() => big)
      const client = yield* tcpClient(server.port)
      const error = yield* Effect.flip(client.call(PING))
      const reason = error.reason
      expect(reason._tag).toBe("ProtocolError")
      if (reason._tag === "ProtocolError") expect(reason.limit).toBe("maxMetadataBytes")
      // Raised for this client: the same reply is accepted whole.
      const generous = yield* tcpClient(server.port, { maxMetadataBytes: 4 << 20 })
      const accepted = yield* generous.call(PING)
      expect(accepted.metadata.get("k")?.length).toBe(2 << 20)
      console.log(
        `[reliability] client: reply with a ${value.length >> 20} MiB metadata value: ${reason._tag} (${
          reason._tag === "ProtocolError" ? reason.limit : ""
        }); `
          + `accepted with maxMetadataBytes 4 MiB`
      )
    }))

  it.live("half a bomb, then silence: requestTimeout still fires on time while the partial frame is buffered", () =>
    Effect.gen(function*() {
      const bomb = frame(keyBomb(1_000_000))
      const half = bomb.subarray(0, bomb.length >> 1)
      const server = yield* hostileServer(() => half)
      const client = yield* tcpClient(server.port, { requestTimeout: "300 millis" })
      const start = performance.now()
      const error = yield* Effect.flip(client.call(PING))
      const elapsed = performance.now() - start
      console.log(
        `[reliability] client: ${(half.length / 1e6).toFixed(1)} MB of a ${
          (bomb.length / 1e6).toFixed(1)
        } MB bomb, then silence: ${error.reason._tag} after ${elapsed.toFixed(0)} ms (requestTimeout 300 ms)`
      )
      expect(error.reason._tag).toBe("RequestTimeout")
    }))

  it.effect("limits at the edge and in pipelines (in-memory transport): at the limit passes, one over fails its own call", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make((request) => {
        const n = Number(Request.text(request))
        const metadata = new Map(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]))
        return Response.makeUnsafe("", metadata, new TextEncoder().encode(`${n}`))
      })
      const client = yield* Client.make({ maxMetadataEntries: 40, pool: { maxCap: 1 } }).pipe(
        Effect.provideService(Client.Dialer, server.dialer)
      )
      const entries = (n: number) => Request.makeUnsafe(2, { payload: `${n}` })
      expect((yield* client.call(entries(40))).metadata.size).toBe(40)
      const over = yield* Effect.flip(client.call(entries(41)))
      expect(over.reason._tag === "ProtocolError" && over.reason.limit).toBe("maxMetadataEntries")
      // A pipeline with one reply over the limit fails as a whole, after
      // reading all its replies: the next call still gets its own.
      const pipeline = yield* Effect.flip(client.pipeline([entries(1), entries(99), entries(2)]))
      expect(pipeline.reason._tag === "ProtocolError" && pipeline.reason.limit).toBe("maxMetadataEntries")
      expect(Response.text(yield* client.call(entries(7)))).toBe("7")
      expect(server.connections.length).toBe(1)
      // Malformed replies still close the connection (framing cannot be trusted).
      server.handler = () => undefined
      const call = yield* Effect.forkChild(Effect.flip(client.call(PING)))
      yield* Effect.yieldNow
      server.connections[0]!.reply(new Uint8Array([...uvarint(2), 0x0a, 0x05]))
      const malformed = yield* Fiber.join(call)
      expect(malformed.reason._tag).toBe("ProtocolError")
      yield* Effect.yieldNow
      expect(server.connections[0]!.closed).toBe(true)
    }))
})
