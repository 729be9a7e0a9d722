// Where Go's server behaves differently from ours, side by side on the same
// bytes, and what our client makes of Go's behaviour: a typed ClientError,
// never a hang (every call here is bounded by a requestTimeout well above
// what the case needs, so a hang would fail as RequestTimeout, not pass).
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Client from "../../src/Client.ts"
import * as NodeClient from "../../src/node/NodeClient.ts"
import * as Request from "../../src/Request.ts"
import * as Wire from "../../src/Wire.ts"
import * as Raw from "../support/rawClient.ts"
import * as Peer from "./peer.ts"

const clientFor = (port: number, options: Client.Options = {}) =>
  Effect.map(
    Layer.build(NodeClient.layer({ host: "127.0.0.1", port, requestTimeout: "10 seconds", ...options })),
    (context) => Context.get(context, Client.Client)
  )

const ping = Wire.encodeRequest(Request.makeUnsafe(1))
/** A frame whose body is a truncated varint field: framing intact, body malformed. */
const malformed = Uint8Array.from([0x02, 0x08, 0xff])

const reasonOf = (error: unknown) => (Client.isClientError(error) ? error.reason._tag : `not a ClientError: ${error}`)

describe.runIf(Peer.available)("Go's behaviours that we do not copy", () => {
  it.live("a malformed body: Go closes the connection without a reply; ours replies an error and stays usable", () =>
    Effect.gen(function*() {
      const go = yield* Peer.goServer()
      const ours = yield* Peer.ourServerProcess()
      const toGo = yield* Raw.connect(go.port)
      yield* toGo.write(Buffer.concat([malformed, ping]))
      expect(yield* toGo.closed).toEqual([])

      const toOurs = yield* Raw.connect(ours.port)
      yield* toOurs.write(Buffer.concat([malformed, ping]))
      const [error, pong] = yield* toOurs.read(2)
      expect(error!.errorMessage).toMatch(/^malformed request: /)
      expect(Raw.text(pong!.payload)).toBe("PONG")
    }))

  it.live(
    "a request over 16 MiB: Go drops the connection (our client: ConnectionClosed); ours replies the limit, then closes",
    () =>
      Effect.gen(function*() {
        const go = yield* Peer.goServer()
        const ours = yield* Peer.ourServerProcess()
        // Our client refuses to send it by default (RequestTooLarge); raise its limit to reach the servers.
        const big = Request.makeUnsafe(2, { payload: new Uint8Array((1 << 24) + 1) })
        const goClient = yield* clientFor(go.port, { maxFrameSize: 1 << 25 })
        const goError = yield* Effect.flip(goClient.call(big))
        expect(reasonOf(goError)).toBe("ConnectionClosed")
        expect(goError.maybeProcessed).toBe(true)
        // The client is still usable: the broken connection was dropped, a new one is dialled.
        expect((yield* goClient.call(Request.makeUnsafe(1))).errorMessage).toBe("")

        // Ours replies "... exceeds 16777216 ..." and closes at once, while the client is still writing the
        // rest: the kernel may then reset the connection before the reply is read. Either way a typed outcome.
        const oursClient = yield* clientFor(ours.port, { maxFrameSize: 1 << 25, retry: Schedule.recurs(2) })
        const reply = yield* Effect.result(oursClient.call(big))
        if (reply._tag === "Success") expect(reply.success.errorMessage).toMatch(/16777216/)
        else expect(reasonOf(reply.failure)).toBe("ConnectionClosed")
        // A call that picks the closing connection fails unwritten (maybeProcessed: false): `retry` resends it.
        expect((yield* oursClient.call(Request.makeUnsafe(1))).errorMessage).toBe("")

        const strict = yield* clientFor(go.port)
        expect(reasonOf(yield* Effect.flip(strict.call(big)))).toBe("RequestTooLarge")
      }),
    60_000
  )

  it.live(
    "Go's -timeout also cuts a slow handler's reply (our client: ConnectionClosed); ours times frames and writes only",
    () =>
      Effect.gen(function*() {
        const go = yield* Peer.goServer(["-timeout", "300ms"])
        const ours = yield* Peer.ourServerProcess(["--timeout", "300ms"])
        const slow = Request.makeUnsafe(5, { payload: "700" })
        const goClient = yield* clientFor(go.port)
        const goError = yield* Effect.flip(goClient.call(slow))
        expect(reasonOf(goError)).toBe("ConnectionClosed")
        expect(goError.maybeProcessed).toBe(true)
        const oursClient = yield* clientFor(ours.port)
        expect((yield* oursClient.call(slow)).errorMessage).toBe("")
      }),
    30_000
  )

  it.live(
    "Go's -timeout closes a connection waiting for its next request; ours leaves that to --idle-timeout",
    () =>
      Effect.gen(function*() {
        const go = yield* Peer.goServer(["-timeout", "300ms"])
        const ours = yield* Peer.ourServerProcess(["--timeout", "300ms"])
        const toGo = yield* Raw.connect(go.port)
        const toOurs = yield* Raw.connect(ours.port)
        yield* Effect.all([toGo.write(ping), toOurs.write(ping)])
        yield* Effect.all([toGo.read(1), toOurs.read(1)])
        expect(yield* toGo.closed).toEqual([]) // within Go's 300 ms deadline of the batch
        yield* Effect.sleep("400 millis")
        yield* toOurs.write(ping)
        expect((yield* toOurs.read(1)).map((r) => Raw.text(r.payload))).toEqual(["PONG"])

        // Our client, idle past Go's deadline: it saw the close, and the next call dials a new connection
        // (`retry` covers a call that races the close: it fails unwritten, maybeProcessed: false).
        const goClient = yield* clientFor(go.port, { retry: Schedule.recurs(2) })
        expect((yield* goClient.call(Request.makeUnsafe(1))).errorMessage).toBe("")
        yield* Effect.sleep("600 millis")
        expect((yield* goClient.call(Request.makeUnsafe(1))).errorMessage).toBe("")
      }),
    30_000
  )

  it.live(
    "Go ignores -idle (IdleTimeout); ours closes idle connections, and our client redials",
    () =>
      Effect.gen(function*() {
        const go = yield* Peer.goServer(["-idle", "200ms"])
        const ours = yield* Peer.ourServerProcess(["--idle-timeout", "200ms"])
        const toGo = yield* Raw.connect(go.port)
        const toOurs = yield* Raw.connect(ours.port)
        yield* Effect.sleep("700 millis")
        yield* toGo.write(ping)
        expect((yield* toGo.read(1)).map((r) => Raw.text(r.payload))).toEqual(["PONG"]) // the same socket, still open
        expect(yield* toOurs.closed).toEqual([])

        const oursClient = yield* clientFor(ours.port, { retry: Schedule.recurs(2), pool: { initialSize: 0 } })
        expect((yield* oursClient.call(Request.makeUnsafe(1))).errorMessage).toBe("")
        // Wait for the server's idle close to reach the client (a fixed sleep
        // races it on a loaded box: a call written as the server closes is
        // rightly "maybe processed" and not retried), then call again.
        yield* oursClient.stats.pipe(
          Effect.delay("50 millis"),
          Effect.repeat({ until: (stats) => stats.open === 0 }),
          Effect.timeout("10 seconds")
        )
        expect((yield* oursClient.call(Request.makeUnsafe(1))).errorMessage).toBe("")
      }),
    30_000
  )
})
