// The CLI as users run it: a real child process on an ephemeral port.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import { toJson } from "../../src/bin/call.ts"
import * as Request from "../../src/Request.ts"
import * as Response from "../../src/Response.ts"
import * as Wire from "../../src/Wire.ts"
import * as Raw from "../support/rawClient.ts"

const cli = new URL("../../src/bin/quasizero.ts", import.meta.url).pathname

/** Starts `quasizero ...args`, resolves with the process and its first stdout line. */
export const spawnCli = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly child: ChildProcess.ChildProcess; readonly firstLine: string }, Error>((resume) => {
      const child = ChildProcess.spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] })
      let out = ""
      let err = ""
      child.stdout.on("data", (d) => {
        out += d
        const nl = out.indexOf("\n")
        if (nl >= 0) resume(Effect.succeed({ child, firstLine: out.slice(0, nl) }))
      })
      child.stderr.on("data", (d) => (err += d))
      child.on("exit", (code) => resume(Effect.fail(new Error(`exited ${code}: ${err}`))))
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

const exitCode = (child: ChildProcess.ChildProcess) =>
  Effect.callback<number | null>((resume) => {
    if (child.exitCode !== null) return resume(Effect.succeed(child.exitCode))
    child.on("exit", (code) => resume(Effect.succeed(code)))
  })

describe("quasizero serve", () => {
  it.live("prints the bound address, serves the demo commands, exits 0 on SIGTERM", () =>
    Effect.gen(function*() {
      const { child, firstLine } = yield* spawnCli(["serve", "--port", "0", "--timeout", "5s", "--concurrency", "2"])
      const match = /^listening on 127\.0\.0\.1:(\d+)$/.exec(firstLine)
      expect(match, firstLine).not.toBeNull()
      const client = yield* Raw.connect(Number(match![1]))
      yield* client.write(
        Wire.encodeRequests([Request.makeUnsafe(1), Request.makeUnsafe(2, { payload: "hi" }), Request.makeUnsafe(3)])
      )
      const replies = yield* client.read(3)
      expect(replies.map((r) => [r.errorMessage, Raw.text(r.payload)])).toEqual([
        ["", "PONG"],
        ["", "hi"],
        ["something went wrong", ""]
      ])
      child.kill("SIGTERM")
      expect(yield* exitCode(child)).toBe(0)
    }), 20_000)

  it.live("rejects a malformed flag with a clear message", () =>
    Effect.sync(() => {
      const result = ChildProcess.spawnSync(process.execPath, [cli, "serve", "--idle-timeout", "soon"], {
        encoding: "utf8"
      })
      expect(result.status).not.toBe(0)
      expect(result.stdout + result.stderr).toMatch(/--idle-timeout: not a duration: soon/)
    }), 20_000)
})

/** Runs `quasizero ...args` to completion (the server it talks to is another process, so blocking is fine). */
const runCli = (args: ReadonlyArray<string>) => {
  const result = ChildProcess.spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 15_000 })
  const lines = result.stdout.split("\n").filter((line) => line.length > 0)
  return { status: result.status, lines, stderr: result.stderr }
}

/** A `serve` child on a free port; its `HOST:PORT`. */
const serveAddress = Effect.map(spawnCli(["serve", "--port", "0"]), ({ firstLine }) => {
  const match = /^listening on (127\.0\.0\.1:\d+)$/.exec(firstLine)
  if (match === null) throw new Error(`unexpected first line: ${firstLine}`)
  return match[1]!
})

/** A port nothing listens on: bound, then closed. */
const closedPort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = Net.createServer()
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const { port } = server.address() as Net.AddressInfo
      server.close(() => resolve(port))
    })
  })
)

describe("quasizero call", () => {
  it.live(
    "one JSON line per response: PING, META with --meta, ECHO with --pipeline 3, FAIL as data",
    () =>
      Effect.gen(function*() {
        const address = yield* serveAddress
        const ping = runCli(["call", "--address", address, "--code", "1"])
        expect(ping).toEqual({ status: 0, lines: ['{"error_message":"","metadata":{},"payload":"PONG"}'], stderr: "" })

        const meta = runCli(["call", "--address", address, "--code", "4", "--meta", "k=v", "--meta", "__proto__=a=b"])
        expect(meta.status).toBe(0)
        expect(meta.lines.length).toBe(1)
        const parsed = JSON.parse(meta.lines[0]!)
        expect(Object.entries(parsed.metadata)).toEqual([["k", "v"], ["__proto__", "a=b"]])
        expect([parsed.error_message, parsed.payload]).toEqual(["", "META"])

        const echo = runCli(["call", "--address", address, "--code", "2", "--payload", "héllo", "--pipeline", "3"])
        expect(echo.status).toBe(0)
        expect(echo.lines).toEqual(
          Array.from({ length: 3 }, () => '{"error_message":"","metadata":{},"payload":"héllo"}')
        )

        // An error reply is data, as in Go: printed, exit 0.
        const fail = runCli(["call", "--address", address, "--code", "3"])
        expect(fail.status).toBe(0)
        expect(fail.lines).toEqual(['{"error_message":"something went wrong","metadata":{},"payload":""}'])
      }),
    30_000
  )

  it.live("a transport failure exits non-zero with a one-line error on stderr", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const result = runCli(["call", "--address", `127.0.0.1:${port}`, "--code", "1"])
      expect(result.status).not.toBe(0)
      expect(result.lines).toEqual([])
      const stderr = result.stderr.trimEnd()
      expect(stderr.split("\n")).toHaveLength(1)
      expect(stderr).toMatch(new RegExp(`^quasizero call: cannot connect to 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`))
    }), 20_000)

  it("toJson: a payload that is not UTF-8 shows as base64; metadata keys stay data", () => {
    const bytes = Uint8Array.from([0xff, 0xfe, 0x00, 0x80])
    const response = Response.makeUnchecked("", new Map([["__proto__", "x"], ["constructor", "y"]]), bytes)
    expect(JSON.parse(toJson(response))).toEqual({
      error_message: "",
      metadata: JSON.parse('{"__proto__":"x","constructor":"y"}'),
      payload: { base64: Buffer.from(bytes).toString("base64") }
    })
    // Valid UTF-8 (even with NUL and emoji) stays a string.
    expect(JSON.parse(toJson(Response.ok("a\u0000🙂"))).payload).toBe("a\u0000🙂")
    // A lone surrogate-half encoding (CESU-style) is not UTF-8.
    expect(JSON.parse(toJson(Response.ok(Uint8Array.from([0xed, 0xa0, 0x80])))).payload).toEqual({ base64: "7aCA" })
  })
})

describe("quasizero bench", () => {
  it.live("bench --workload seq prints one JSON line with rps > 0", () =>
    Effect.gen(function*() {
      const address = yield* serveAddress
      const result = runCli([
        "bench",
        "--address",
        address,
        "--workload",
        "seq",
        "--duration",
        "300ms",
        "--warmup",
        "100ms"
      ])
      expect(result.status).toBe(0)
      expect(result.lines).toHaveLength(1)
      const figures = JSON.parse(result.lines[0]!)
      expect(figures).toMatchObject({ workload: "seq", client: "quasizero", errors: 0 })
      expect(figures.rps).toBeGreaterThan(0)
      expect(figures.requests).toBeGreaterThan(0)
      expect(figures.seconds).toBeGreaterThanOrEqual(0.3)
      expect(figures.p50us).toBeGreaterThan(0)
      // Progress goes to stderr, keeping stdout machine-readable.
      expect(result.stderr).toContain("bench seq against")
    }), 30_000)

  it.live(
    "serve --spin and bench --spin: spin before park on both sides; over 1ms is refused naming the option",
    () =>
      Effect.gen(function*() {
        const { firstLine } = yield* spawnCli(["serve", "--port", "0", "--spin", "50us"])
        const address = /^listening on (127\.0\.0\.1:\d+)$/.exec(firstLine)![1]!
        const args = ["bench", "--address", address, "--duration", "200ms", "--warmup", "50ms"]
        const result = runCli([...args, "--spin", "50us"])
        expect(result.status).toBe(0)
        expect(JSON.parse(result.lines[0]!)).toMatchObject({ workload: "seq", errors: 0 })
        const refused = runCli([...args, "--spin", "5ms"])
        expect(refused.status).not.toBe(0)
        expect(refused.stderr).toMatch(/invalid option spin: expected a duration in \[0, 1ms\]/)
        const server = ChildProcess.spawnSync(process.execPath, [cli, "serve", "--port", "0", "--spin", "2ms"], {
          encoding: "utf8",
          timeout: 15_000
        })
        expect(server.status).not.toBe(0)
        expect(server.stdout + server.stderr).toMatch(/invalid server option spin: .* got 2ms/)
      }),
    30_000
  )
})
