// The one grammar for durations and sizes (options, QUASIZERO_* variables,
// the CLI), and the one validator the server and the client share.
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as NetAddress from "effect/net/NetAddress"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import { TestClock } from "effect/testing"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Client from "../src/Client.ts"
import * as NodeClient from "../src/node/NodeClient.ts"
import * as NodeServer from "../src/node/NodeServer.ts"
import * as Options from "../src/Options.ts"
import * as Request from "../src/Request.ts"
import * as Server from "../src/Server.ts"
import * as Wire from "../src/Wire.ts"
import * as Harness from "./support/harness.ts"

const millis = (text: string) => Option.getOrUndefined(Option.map(Options.parseDuration(text), Duration.toMillis))
const env = (vars: Record<string, string>) => ConfigProvider.fromEnv({ env: vars })

describe("the duration grammar", () => {
  it("reads Go durations, bare milliseconds and Effect's strings", () => {
    expect(millis("5s")).toBe(5000)
    expect(millis("1m30s")).toBe(90_000)
    expect(millis("250ms")).toBe(250)
    expect(millis("1h")).toBe(3_600_000)
    expect(millis("1.5h")).toBe(5_400_000)
    expect(millis("2h45m0.5s")).toBe(9_900_500)
    expect(millis("500us")).toBe(0.5)
    expect(millis("500µs")).toBe(0.5)
    expect(millis("10ns")).toBe(0.00001)
    expect(millis("5000")).toBe(5000)
    expect(millis("0")).toBe(0)
    expect(millis(" 5s ")).toBe(5000)
    expect(millis("5 seconds")).toBe(5000)
    expect(millis("1 minute")).toBe(60_000)
    expect(millis("Infinity")).toBe(Infinity)
    for (const bad of ["", "s", "soon", "-1s", "-5 seconds", "5S", "1d", "5 parsecs", "1m 30s", "-Infinity"]) {
      expect(millis(bad), bad).toBeUndefined()
    }
  })

  it("decodes every Duration.Input in options", () => {
    const ms = (input: Options.DurationInput) =>
      Option.getOrUndefined(Option.map(Options.decodeDuration(input), Duration.toMillis))
    expect(ms(1500)).toBe(1500)
    expect(ms(Duration.seconds(2))).toBe(2000)
    expect(ms({ seconds: 3 })).toBe(3000)
    expect(ms("1m30s")).toBe(90_000)
    expect(ms("750")).toBe(750)
    expect(ms(Number.NaN)).toBeUndefined()
  })

  it("prints durations in the grammar, and reads them back", () => {
    const cases: Array<[Duration.Input, string]> = [
      [0, "0"],
      [250, "250ms"],
      [1000, "1s"],
      [1500, "1s500ms"],
      [90_000, "1m30s"],
      [3_600_000, "1h"],
      [3_605_000, "1h5s"],
      [Duration.days(2), "48h"],
      [Duration.micros(1500n), "1ms500µs"],
      [Duration.nanos(7n), "7ns"],
      [Duration.infinity, "Infinity"]
    ]
    for (const [input, text] of cases) {
      expect(Options.formatDuration(input)).toBe(text)
      expect(Duration.toMillis(Option.getOrThrow(Options.parseDuration(text)))).toBe(Duration.toMillis(input))
    }
  })

  it("error messages print durations in the grammar", () => {
    const timeout = new Client.ClientError({
      reason: new Client.RequestTimeout({ address: "a:1", timeout: Duration.millis(1500), maybeProcessed: true })
    })
    expect(timeout.message).toContain("within 1s500ms")
    const connect = new Client.ClientError({
      reason: new Client.ConnectTimeout({ address: "a:1", timeout: Duration.seconds(90), maybeProcessed: false })
    })
    expect(connect.message).toContain("after 1m30s")
    const idle = new Server.ServerError({ reason: new Server.Timeout({ kind: "Idle", after: Duration.minutes(5) }) })
    expect(idle.message).toContain("after 5m,")
  })
})

describe("the size grammar", () => {
  it("reads bytes, KB = 1000 and KiB = 1024 (case-insensitive), Infinity", () => {
    const size = (text: string) => Option.getOrUndefined(Options.parseSize(text))
    expect(size("65536")).toBe(65536)
    expect(size("16MiB")).toBe(16 * 1024 * 1024)
    expect(size("16MB")).toBe(16_000_000)
    expect(size("64KB")).toBe(64_000)
    expect(size("64kib")).toBe(65_536)
    expect(size("1 GiB")).toBe(2 ** 30)
    expect(size("2GB")).toBe(2e9)
    expect(size("1TiB")).toBe(2 ** 40)
    expect(size("1.5KiB")).toBe(1536)
    expect(size("12B")).toBe(12)
    expect(size("Infinity")).toBe(Infinity)
    for (const bad of ["", "big", "-1", "1.5", "1.5B", "16m", "16 parsecs", "0x10"]) {
      expect(size(bad), bad).toBeUndefined()
    }
  })

  it("reads counts as whole numbers or Infinity", () => {
    const count = (text: string) => Option.getOrUndefined(Options.parseCount(text))
    expect(count("1024")).toBe(1024)
    expect(count("Infinity")).toBe(Infinity)
    for (const bad of ["", "1.5", "-1", "1KiB", "many"]) expect(count(bad), bad).toBeUndefined()
  })
})

describe("QUASIZERO_* variables take the grammar", () => {
  it.effect('Server.config: 5s, 5000 and "5 seconds"; 16MiB; Infinity for a limit', () =>
    Effect.gen(function*() {
      for (const timeout of ["5s", "5000", "5 seconds"]) {
        const options = yield* Server.config.parse(env({ QUASIZERO_TIMEOUT: timeout }))
        expect((yield* Server.resolveOptions(options)).timeout, timeout).toBe(5000)
      }
      const options = yield* Server.config.parse(env({
        QUASIZERO_IDLE_TIMEOUT: "1m30s",
        QUASIZERO_SHUTDOWN_TIMEOUT: "250ms",
        QUASIZERO_MAX_FRAME_SIZE: "16MiB",
        QUASIZERO_MAX_METADATA_BYTES: "64KB",
        QUASIZERO_MAX_BUFFERED_BYTES: "1GiB",
        QUASIZERO_MAX_METADATA_ENTRIES: "Infinity",
        QUASIZERO_MAX_CONNECTIONS: "100"
      }))
      expect(yield* Server.resolveOptions(options)).toMatchObject({
        idleTimeout: 90_000,
        shutdownTimeout: 250,
        maxFrameSize: 16 * 1024 * 1024,
        decodeLimits: { maxMetadataEntries: Infinity, maxMetadataBytes: 64_000 },
        maxBufferedBytes: 2 ** 30,
        maxConnections: 100
      })
      expect(yield* Server.config.parse(env({}))).toEqual({})
    }))

  it.effect("Client.config: the same grammar", () =>
    Effect.gen(function*() {
      const options = yield* Config.unwrap(Client.config).parse(env({
        QUASIZERO_REQUEST_TIMEOUT: "2s",
        QUASIZERO_CONNECT_TIMEOUT: "1500",
        QUASIZERO_ACQUIRE_TIMEOUT: "1 second",
        QUASIZERO_POOL_IDLE_TIMEOUT: "1m30s",
        QUASIZERO_POOL_REAP_INTERVAL: "10s",
        QUASIZERO_MAX_FRAME_SIZE: "1MiB",
        QUASIZERO_MAX_METADATA_BYTES: "Infinity"
      }))
      const resolved = yield* Client.resolveOptions(options)
      expect(Duration.toMillis(resolved.requestTimeout)).toBe(2000)
      expect(Duration.toMillis(resolved.connectTimeout)).toBe(1500)
      expect(Duration.toMillis(resolved.acquireTimeout)).toBe(1000)
      expect(Duration.toMillis(resolved.pool.idleTimeout)).toBe(90_000)
      expect(Duration.toMillis(resolved.pool.reapInterval)).toBe(10_000)
      expect(resolved.maxFrameSize).toBe(1 << 20)
      expect(resolved.maxMetadataBytes).toBe(Infinity)
    }))

  it.effect("a bad value is a ConfigError naming the variable and the grammar", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Server.config.parse(env({ QUASIZERO_TIMEOUT: "soon" })))
      expect(error.message).toContain("QUASIZERO_TIMEOUT")
      expect(error.message).toContain("expected a duration such as 5s")
      const size = yield* Effect.flip(Config.unwrap(Client.config).parse(env({ QUASIZERO_MAX_FRAME_SIZE: "16m" })))
      expect(size.message).toContain("QUASIZERO_MAX_FRAME_SIZE")
      expect(size.message).toContain("16MiB")
    }))

  it.effect("fromUnknown: numbers and strings alike", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromUnknown({ QUASIZERO_TIMEOUT: 5000, QUASIZERO_MAX_FRAME_SIZE: "4KiB" })
      const resolved = yield* Server.resolveOptions(yield* Server.config.parse(provider))
      expect([resolved.timeout, resolved.maxFrameSize]).toEqual([5000, 4096])
    }))

  it.effect("Options.duration composes into a custom variable name", () =>
    Effect.gen(function*() {
      const options = yield* Config.unwrap<Client.Options>({
        ...Client.config,
        requestTimeout: Options.optional(Options.duration("MY_TIMEOUT"))
      }).parse(env({ MY_TIMEOUT: "750ms" }))
      expect(Duration.toMillis((yield* Client.resolveOptions(options)).requestTimeout)).toBe(750)
    }))
})

describe("options take the grammar too", () => {
  it("at the type level: Go durations, milliseconds as text, sizes with units", () => {
    const server: Server.Options = {
      timeout: "5s",
      idleTimeout: "1m30s",
      shutdownTimeout: "5000",
      maxFrameSize: "16MiB",
      maxMetadataBytes: "64 KB",
      maxBufferedBytes: 1 << 28
    }
    const client: Client.Options = { requestTimeout: "250ms", connectTimeout: "5 seconds", maxFrameSize: "1MiB" }
    // @ts-expect-error not a duration
    const badDuration: Server.Options = { timeout: "soon" }
    // @ts-expect-error not a size
    const badSize: Client.Options = { maxFrameSize: "big" }
    expect([server, client, badDuration, badSize].length).toBe(4)
  })

  it.effect("strings in Server.Options and Client.Options", () =>
    Effect.gen(function*() {
      const server = yield* Server.resolveOptions({ timeout: "5s", idleTimeout: "5000", maxFrameSize: "1MiB" })
      expect([server.timeout, server.idleTimeout, server.maxFrameSize]).toEqual([5000, 5000, 1 << 20])
      const client = yield* Client.resolveOptions({ requestTimeout: "1m30s", maxFrameSize: "64 KB" })
      expect([Duration.toMillis(client.requestTimeout), client.maxFrameSize]).toEqual([90_000, 64_000])
    }))
})

describe("one meaning for 0 and Infinity on both sides", () => {
  it.effect("a timeout of 0 or Infinity is off, server and client alike", () =>
    Effect.gen(function*() {
      for (const off of [0, Infinity, "0", "Infinity", Duration.infinity] as const) {
        const server = yield* Server.resolveOptions({ timeout: off, idleTimeout: off, tcpKeepAlive: off })
        expect([server.timeout, server.idleTimeout, server.tcpKeepAlive], String(off)).toEqual([0, 0, 0])
        const client = yield* Client.resolveOptions({
          requestTimeout: off,
          connectTimeout: off,
          acquireTimeout: off,
          pool: { idleTimeout: off }
        })
        for (
          const d of [client.requestTimeout, client.connectTimeout, client.acquireTimeout, client.pool.idleTimeout]
        ) {
          expect(Duration.isZero(d), String(off)).toBe(true)
        }
      }
    }))

  it.effect("shutdownTimeout is a grace period: 0 waits for nothing, Infinity for everything", () =>
    Effect.gen(function*() {
      expect((yield* Server.resolveOptions({ shutdownTimeout: 0 })).shutdownTimeout).toBe(0)
      expect((yield* Server.resolveOptions({ shutdownTimeout: Infinity })).shutdownTimeout).toBe(Infinity)
      expect((yield* Server.resolveOptions({ shutdownTimeout: "2s" })).shutdownTimeout).toBe(2000)
    }))

  it.effect("negative durations are rejected on both sides, with the same words", () =>
    Effect.gen(function*() {
      const server = yield* Effect.flip(Server.resolveOptions({ timeout: -1 }))
      const client = yield* Effect.flip(Client.resolveOptions({ requestTimeout: -1 }))
      expect(server.reason._tag === "InvalidOption" && server.reason.expected).toBe(
        "a duration >= 0 (0 or Infinity: off)"
      )
      expect(client.reason._tag === "InvalidOption" && client.reason.expected).toBe(
        "a duration >= 0 (0 or Infinity: off)"
      )
    }))

  it.effect("Infinity lifts a metadata limit on both sides; 0 is a real limit", () =>
    Effect.gen(function*() {
      const server = yield* Server.resolveOptions({ maxMetadataEntries: Infinity, maxMetadataBytes: 0 })
      expect(server.decodeLimits).toEqual({ maxMetadataEntries: Infinity, maxMetadataBytes: 0 })
      const client = yield* Client.resolveOptions({ maxMetadataEntries: Infinity, maxMetadataBytes: 0 })
      expect([client.maxMetadataEntries, client.maxMetadataBytes]).toEqual([Infinity, 0])
    }))

  it.effect("timeout: Infinity starts no deadline checks on the server (the clock is never read for them)", () =>
    Effect.gen(function*() {
      // Counts the connection loop's clock reads: it reads the clock only when
      // a timeout is on (once per batch, for the deadlines).
      const reads = (options: Server.Options) =>
        Effect.gen(function*() {
          const base = yield* Clock.Clock
          let count = 0
          const counting: Clock.Clock = Object.create(base, {
            currentTimeMillisUnsafe: {
              value: () => {
                count++
                return base.currentTimeMillisUnsafe()
              }
            }
          })
          yield* Effect.gen(function*() {
            const { close, connect } = yield* Harness.memory(options)
            const peer = connect()
            peer.send(Wire.encodeRequests([Request.makeUnsafe(1), Request.makeUnsafe(1)]))
            yield* Harness.settle
            // A frame that starts and stalls: what `timeout` would close.
            peer.send(Wire.encodeRequests([Request.makeUnsafe(2, { payload: "stalled" })]).subarray(0, 4))
            yield* Harness.settle
            yield* TestClock.adjust("1 hour")
            yield* Harness.settle
            expect(peer.state(), JSON.stringify(options)).toBe("open")
            yield* close
          }).pipe(Effect.provideService(Clock.Clock, counting))
          return count
        })
      const off = yield* reads({})
      expect(yield* reads({ timeout: Infinity, idleTimeout: Infinity })).toBe(off)
      expect(yield* reads({ timeout: 0, idleTimeout: "Infinity" })).toBe(off)
      expect(yield* reads({ timeout: "2 hours" })).toBeGreaterThan(off + 1)
    }))
})

describe("one frame-size cap on both sides", () => {
  it.effect("maxFrameSize is at most 2^31 - 1 for the server and the client", () =>
    Effect.gen(function*() {
      expect(Options.maxFrameSizeLimit).toBe(2 ** 31 - 1)
      expect((yield* Server.resolveOptions({ maxFrameSize: 2 ** 31 - 1 })).maxFrameSize).toBe(2 ** 31 - 1)
      expect((yield* Client.resolveOptions({ maxFrameSize: 2 ** 31 - 1 })).maxFrameSize).toBe(2 ** 31 - 1)
      for (const tooBig of [2 ** 31, 2 ** 32, Infinity, "2GiB"] as const) {
        const server = yield* Effect.flip(Server.resolveOptions({ maxFrameSize: tooBig }))
        const client = yield* Effect.flip(Client.resolveOptions({ maxFrameSize: tooBig }))
        for (const error of [server.reason, client.reason]) {
          expect(error._tag, String(tooBig)).toBe("InvalidOption")
          if (error._tag === "InvalidOption") {
            expect(error.option).toBe("maxFrameSize")
            expect(error.expected).toBe("a size in bytes in [1, 2147483647]")
          }
        }
      }
    }))
})

describe("Options.validate", () => {
  it("returns the first rejected option", () => {
    const result = Options.validate((check) => ({
      a: check.timeout("a", "5s", Duration.zero),
      b: check.count("b", 1.5, 1, { min: 1 })
    }))
    expect(Result.isFailure(result) && result.failure).toEqual({ option: "b", value: 1.5, expected: "an integer >= 1" })
  })
})

describe("NodeServer.config: where to listen, from the environment", () => {
  it.effect("QUASIZERO_HOST / QUASIZERO_PORT, with the defaults of quasizero serve", () =>
    Effect.gen(function*() {
      expect(yield* NodeServer.config.parse(env({}))).toEqual({ host: "127.0.0.1", port: 7701 })
      expect(yield* NodeServer.config.parse(env({ QUASIZERO_HOST: "0.0.0.0", QUASIZERO_PORT: "0" }))).toEqual({
        host: "0.0.0.0",
        port: 0
      })
      expect(yield* NodeServer.config.parse(ConfigProvider.fromUnknown({ QUASIZERO_PORT: 9000 }))).toEqual({
        host: "127.0.0.1",
        port: 9000
      })
      expect(yield* NodeServer.config.parse(env({ QUASIZERO_PATH: "/tmp/q.sock" }))).toEqual({ path: "/tmp/q.sock" })
    }))

  it.effect("TLS files go together; PATH excludes HOST and PORT; a port is in [0, 65535]", () =>
    Effect.gen(function*() {
      expect(
        yield* NodeServer.config.parse(env({ QUASIZERO_TLS_KEY_FILE: "k.pem", QUASIZERO_TLS_CERT_FILE: "c.pem" }))
      ).toEqual({ host: "127.0.0.1", port: 7701, tlsKeyFile: "k.pem", tlsCertFile: "c.pem" })
      const cases: Array<[Record<string, string>, string]> = [
        [{ QUASIZERO_TLS_KEY_FILE: "k.pem" }, "QUASIZERO_TLS_CERT_FILE"],
        [{ QUASIZERO_PATH: "/tmp/q.sock", QUASIZERO_PORT: "1" }, "QUASIZERO_PATH"],
        [{ QUASIZERO_PORT: "65536" }, "QUASIZERO_PORT"],
        [{ QUASIZERO_PORT: "http" }, "QUASIZERO_PORT"]
      ]
      for (const [vars, named] of cases) {
        const error = yield* Effect.flip(NodeServer.config.parse(env(vars)))
        expect(error.message, JSON.stringify(vars)).toContain(named)
      }
    }))

  it.live("layerConfig listens where the variables say; Server.layerConfig and a client from QUASIZERO_ADDRESS meet", () =>
    Effect.gen(function*() {
      const server = yield* Harness.build(undefined, NodeServer.layerConfig())
      const address = server.server.address
      if (!NetAddress.isInetAddress(address)) throw new Error("expected TCP")
      expect(NetAddress.formatSocketAddress(address)).toMatch(/^127\.0\.0\.1:\d+$/)
      const client = yield* Client.call(Request.makeUnsafe(1)).pipe(
        Effect.provide(NodeClient.layerConfig()),
        Effect.provide(ConfigProvider.layer(env({ QUASIZERO_ADDRESS: `127.0.0.1:${address.port}` })))
      )
      expect(new TextDecoder().decode(client.payload)).toBe("PONG")
    }).pipe(Effect.provide(ConfigProvider.layer(env({ QUASIZERO_PORT: "0" })))))

  it.live("an unreadable TLS file is a ConfigError naming it", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "quasizero-tls-"))
      const missing = Path.join(dir, "missing.pem")
      const error = yield* Effect.flip(
        Harness.build(undefined, NodeServer.layerConfig()).pipe(
          Effect.provide(ConfigProvider.layer(env({
            QUASIZERO_PORT: "0",
            QUASIZERO_TLS_KEY_FILE: missing,
            QUASIZERO_TLS_CERT_FILE: missing
          })))
        )
      )
      expect(String(error)).toContain("QUASIZERO_TLS_KEY_FILE")
      expect(String(error)).toContain(missing)
    }))
})
