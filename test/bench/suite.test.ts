// The benchmark suite's own plumbing, checked in CI so that `npm run bench`
// does not find it broken: the per-round ratios of its table (bench/lib/report.ts)
// and the session mode its latency rounds drive (bench/lib/session.ts), a
// client warmed once and then measured window by window.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Proc from "../../bench/lib/proc.ts"
import * as Processes from "../../bench/lib/processes.ts"
import * as Report from "../../bench/lib/report.ts"

const row = (rps: number, p50us = 100): Report.Row => ({
  workload: "seq",
  client: "x",
  requests: rps,
  seconds: 1,
  rps,
  p50us,
  p99us: 2 * p50us,
  errors: 0,
  total: rps,
  serverCpuUs: 50,
  clientCpuUs: 60
})

describe("bench/lib/report.ts", () => {
  it("takes ratios round by round, skips rounds one side missed, and reports median and spread", () => {
    const rounds = new Map<string, Array<Report.Row | undefined>>([
      ["baseline", [row(100), row(200), row(100), row(100)]],
      ["go + go", [row(100), row(100), undefined, row(50)]],
      ["ours", [row(90), row(300), row(1000), row(60)]]
    ])
    const [baseline, , ours] = Report.summarise("seq", rounds)
    expect(baseline).toMatchObject({ contender: "baseline", rounds: 4, rps: 100 })
    expect(baseline!.rpsVsBaseline).toEqual({ median: 1, min: 1, max: 1, rounds: 4 })
    // Per round against the baseline: 0.9, 1.5, 10, 0.6 -> median of the middle two.
    expect(ours!.rpsVsBaseline).toEqual({ median: 1.2, min: 0.6, max: 10, rounds: 4 })
    // Against go + go: rounds 1, 2 and 4 only (0.9, 3, 1.2).
    expect(ours!.rpsVsGoGo).toEqual({ median: 1.2, min: 0.9, max: 3, rounds: 3 })
    expect(ours).toMatchObject({ rps: 195, serverCpuUs: 50, clientCpuUs: 60 })
    expect(Report.table([ours!])).toContain("| seq | ours | 4 | 195 | 100 | 200 | 50 / 60 | 1.20× (0.60–10.00) |")
  })
})

describe("bench/lib/session.ts", () => {
  for (const client of ["baseline", "quasizero"]) {
    it.live(`the ${client} client answers warm and go windows over one connection`, () =>
      Effect.promise(async () => {
        const server = await Processes.startServer("baseline")
        const session = Processes.openClient(client, server.address, "seq")
        try {
          const before = Proc.cpuUs(server.pid)
          expect(before).toBeGreaterThan(0)
          const warm = await session.run("warm", 100)
          expect(warm.total).toBeGreaterThan(0)
          for (let i = 0; i < 2; i++) {
            const window = await session.run("go", 100)
            expect(window).toMatchObject({ workload: "seq", errors: 0 })
            expect(window.requests).toBeGreaterThan(0)
            expect(window.total).toBe(window.requests)
            expect((window as Report.Row).clientCpuUs).toBeGreaterThan(0)
          }
          expect(Proc.cpuUs(server.pid)).toBeGreaterThan(before!)
        } finally {
          await session.close()
          server.stop()
        }
      }), 30_000)
  }
})
