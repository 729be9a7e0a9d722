// The benchmark suite's Go plumbing (bench/lib/go.ts), checked in CI so that
// `npm run bench` does not find it broken: qz-bench driven with a workload's
// flags through the shell that reports its CPU time, and qz-server's CPU time
// read from /proc.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Go from "../../bench/lib/go.ts"
import { workloads } from "../../bench/lib/stats.ts"
import * as Peer from "./peer.ts"

describe.runIf(Peer.available)("bench/lib/go.ts", () => {
  it.live(
    "qz-bench runs each workload's flags and reports requests and its CPU per request; qz-server's CPU is readable",
    () =>
      Effect.gen(function*() {
        const server = yield* Peer.goServer()
        const before = Go.procCpuUs(server.child.pid)
        expect(before).toBeGreaterThanOrEqual(0)
        for (const name of ["seq", "pipe10", "echo1k"]) {
          const workload = workloads[name]!
          const [command, args] = Go.benchShell(Go.benchArgs(workload, server.address, 200))
          const { code, stdout, stderr } = yield* Peer.run(command, args)
          expect(code, stderr).toBe(0)
          const result = Go.parseBench(workload, stdout)
          expect(result).toMatchObject({ workload: name, client: "go", errors: 0 })
          expect(result.requests % workload.depth).toBe(0)
          expect(result.total).toBe(result.requests)
          expect(result.requests).toBeGreaterThan(0)
          expect(result.clientCpuUs).toBeGreaterThanOrEqual(0)
        }
        expect(Go.procCpuUs(server.child.pid)).toBeGreaterThan(before!)
        expect(Go.procCpuUs(undefined)).toBeUndefined()
      }),
    30_000
  )
})
