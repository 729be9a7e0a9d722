// The Node transports end to end with our client: Unix sockets, TLS (a
// self-signed test certificate from test/fixtures), IPv6 loopback.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as NetAddress from "effect/net/NetAddress"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Client from "../../src/Client.ts"
import * as Demo from "../../src/Demo.ts"
import * as NodeClient from "../../src/node/NodeClient.ts"
import * as NodeServer from "../../src/node/NodeServer.ts"
import * as Request from "../../src/Request.ts"
import * as Response from "../../src/Response.ts"
import * as Server from "../../src/Server.ts"
import * as Wire from "../../src/Wire.ts"
import * as Harness from "../support/harness.ts"
import * as RawClient from "../support/rawClient.ts"

const fixture = (name: string) => Fs.readFileSync(new URL(`../fixtures/${name}`, import.meta.url))

const serve = (transport: ReturnType<typeof NodeServer.layer>) =>
  Effect.map(
    Layer.build(Server.layer().pipe(Layer.provide(Demo.layer), Layer.provide(transport))),
    (context) => context.mapUnsafe.get(Server.Server.key) as Server.Server["Service"]
  )

const pingThrough = (dialer: ReturnType<typeof NodeClient.layerDialer>) =>
  Effect.gen(function*() {
    const client = yield* Client.make()
    const [pong, echo] = yield* client.pipeline([
      Request.makeUnsafe(1),
      Request.makeUnsafe(2, { payload: "over the wire" })
    ])
    return [Response.text(pong!), Response.text(echo!)]
  }).pipe(Effect.provide(dialer))

describe("NodeServer transports", () => {
  it.live("a Unix socket", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "quasizero-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const path = Path.join(dir, "q.sock")
      const server = yield* serve(NodeServer.layer({ path }))
      expect(server.address._tag).toBe("UnixPathAddress")
      expect(yield* pingThrough(NodeClient.layerDialer({ path }))).toEqual(["PONG", "over the wire"])
    }))

  it.live("TLS, with the client verifying the server's certificate", () =>
    Effect.gen(function*() {
      const server = yield* serve(
        NodeServer.layerTls({ host: "127.0.0.1", port: 0, key: fixture("tls-key.pem"), cert: fixture("tls-cert.pem") })
      )
      const port = (server.address as NetAddress.InetAddress).port
      expect(
        yield* pingThrough(
          NodeClient.layerDialerTls({ host: "127.0.0.1", port, ca: fixture("tls-cert.pem"), servername: "localhost" })
        )
      ).toEqual(["PONG", "over the wire"])
      // An untrusted certificate is a connect failure, not a silent downgrade.
      const error = yield* Effect.flip(pingThrough(NodeClient.layerDialerTls({ host: "127.0.0.1", port })))
      expect(error.reason._tag).toBe("ConnectFailed")
    }))

  it.live("IPv6 loopback", () =>
    Effect.gen(function*() {
      const server = yield* serve(NodeServer.layer({ host: "::1", port: 0 }))
      const address = server.address as NetAddress.InetAddress
      expect(NetAddress.formatHost(address)).toBe("::1")
      expect(yield* pingThrough(NodeClient.layerDialer({ host: "::1", port: address.port }))).toEqual([
        "PONG",
        "over the wire"
      ])
    }))

  it.live("bad listen options are a typed error of the layer, not a defect", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(NodeServer.layer({ port: -1 })))
      expect(error._tag).toBe("SocketServerError")
      expect(error.reason._tag).toBe("SocketServerOpenError")
      expect(String((error.reason.cause as Error).message)).toMatch(/port/)
    }))

  it.live("NodeClient.layer / layerTls give the Client, with client options beside the connection's", () =>
    Effect.gen(function*() {
      const server = yield* serve(
        NodeServer.layerTls({ host: "127.0.0.1", port: 0, key: fixture("tls-key.pem"), cert: fixture("tls-cert.pem") })
      )
      const port = Server.portOf(server.address)!
      const reply = yield* Client.call(Request.makeUnsafe(1)).pipe(
        Effect.provide(NodeClient.layerTls({
          host: "127.0.0.1",
          port,
          ca: fixture("tls-cert.pem"),
          servername: "localhost",
          requestTimeout: "5 seconds",
          pool: { maxCap: 2 }
        }))
      )
      expect(Response.text(reply)).toBe("PONG")
      const invalid = yield* Effect.flip(
        Client.call(Request.makeUnsafe(1)).pipe(
          Effect.provide(NodeClient.layer({ host: "127.0.0.1", port, pool: { maxCap: 0 } }))
        )
      )
      expect(invalid.reason._tag).toBe("InvalidOption") // the client option reached the Client
    }))
})

// The direct path (NodeServer's listeners): no fiber while a connection is
// idle, one only while a batch needs it, and data that arrives meanwhile is
// taken by that fiber in order.
describe("NodeServer direct path", () => {
  it.live("a suspending handler forks one fiber for the batch; queued data follows in order; none left after", () => {
    let fibers = 0
    const counting: Metric.FiberRuntimeMetricsService = {
      recordFiberStart: () => void fibers++,
      recordFiberEnd: () => void fibers--
    }
    return Effect.gen(function*() {
      const { port, server } = yield* Harness.tcp(undefined, {
        1: () => Effect.succeed("PONG"),
        7: (req) => Effect.as(Effect.sleep("30 millis"), `SLOW ${RawClient.text(req.payload)}`)
      })
      const frame = (code: number, payload = "") => Wire.encodeRequest(Request.makeUnsafe(code, { payload }))
      const batch = (...frames: Array<Uint8Array>) => new Uint8Array(Buffer.concat(frames))
      const client = yield* RawClient.connect(port)
      yield* client.write(frame(1))
      yield* client.read(1)
      const idle = fibers
      yield* client.write(batch(frame(7, "a"), frame(1), frame(1)))
      yield* Effect.sleep("5 millis")
      const busy = fibers
      // Arrives while the first batch waits in its handler: queued for the same fiber.
      yield* client.write(batch(frame(1), frame(7, "b"), frame(1)))
      const replies = yield* client.read(6)
      expect(replies.map((r) => Response.text(r))).toEqual(["SLOW a", "PONG", "PONG", "PONG", "SLOW b", "PONG"])
      yield* Effect.sleep("10 millis")
      expect(busy).toBe(idle + 1)
      expect(fibers).toBe(idle)
      expect(server.connections()).toBe(1)
      client.socket.end()
      yield* client.closed
      expect(server.connections()).toBe(0)
    }).pipe(Effect.provideService(Metric.FiberRuntimeMetrics, counting))
  })
})
