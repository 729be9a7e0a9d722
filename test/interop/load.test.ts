// Load across the boundary, checking counts (never speed): Go's qz-bench
// against our server, and our `quasizero bench` against Go's qz-server, for
// a second or two each, with zero errors. Against `Server.layer` in this
// process the server also counts the PINGs it answered, which must equal the
// requests qz-bench completed (a closed loop: every request sent is answered
// before the run ends).
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Demo from "../../src/Demo.ts"
import type * as Handlers from "../../src/Handlers.ts"
import * as Response from "../../src/Response.ts"
import * as Harness from "../support/harness.ts"
import * as Peer from "./peer.ts"

let pings = 0
const pong = Response.ok("PONG")
const counting: Handlers.Table<unknown, never> = [
  ...Demo.table.filter(([code]) => code !== Demo.PING),
  [Demo.PING, () => (pings++, Effect.succeed(pong))]
]

describe.runIf(Peer.available)("load across the boundary", () => {
  const suite = Peer.suiteScope()
  let go: string
  let process: string
  let inProcess: string
  beforeAll(async () => {
    ;[go, process, inProcess] = await suite.start(Effect.all([
      Effect.map(Peer.goServer(), (s) => s.address),
      Effect.map(Peer.ourServerProcess(), (s) => s.address),
      Effect.map(Harness.tcp(undefined, counting), (s) => `127.0.0.1:${s.port}`)
    ], { concurrency: "unbounded" }))
  })
  afterAll(() => suite.close())

  const goBench = (address: string, args: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const result = yield* Peer.qzBench(address, [...args, "-duration", "1500ms"])
      expect(result.errors).toBe(0)
      expect(result.requests).toBeGreaterThan(0)
      return result
    })

  it.live("qz-bench -conc 64 → quasizero serve: zero errors", () =>
    Effect.gen(function*() {
      const result = yield* goBench(process, ["-conc", "64"])
      expect(result.conc).toBe(64)
    }), 30_000)

  it.live("qz-bench -mode pipe -batch 100 → quasizero serve: zero errors, whole batches", () =>
    Effect.gen(function*() {
      const result = yield* goBench(process, ["-mode", "pipe", "-batch", "100"])
      expect(result.requests % 100).toBe(0)
    }), 30_000)

  it.live(
    "qz-bench -conc 64, then -mode pipe -batch 100 → Server.layer: every request answered once",
    () =>
      Effect.gen(function*() {
        pings = 0
        const conc = yield* goBench(inProcess, ["-conc", "64"])
        expect(pings).toBe(conc.requests)
        pings = 0
        const pipe = yield* goBench(inProcess, ["-mode", "pipe", "-batch", "100", "-conc", "4"])
        expect(pings).toBe(pipe.requests)
      }),
    30_000
  )

  for (const workload of ["conc64", "pipe100"]) {
    it.live(`quasizero bench --workload ${workload} → qz-server: zero errors`, () =>
      Effect.gen(function*() {
        const { code, stdout, stderr } = yield* Peer.ourCli([
          "bench",
          "--address",
          go,
          "--workload",
          workload,
          "--duration",
          "1500ms",
          "--warmup",
          "200ms"
        ])
        expect(code, stderr).toBe(0)
        const result = JSON.parse(stdout.trim())
        expect(result).toMatchObject({ workload, errors: 0 })
        expect(result.requests).toBeGreaterThan(0)
        expect(result.total).toBeGreaterThanOrEqual(result.requests)
        if (workload === "pipe100") expect(result.total % 100).toBe(0)
      }), 30_000)
  }
})
