// Shared by the bench processes: the workload definitions and the result
// shape live in src/bin/workload.ts (so `quasizero bench` uses the same ones).
import type { Result } from "../../src/bin/workload.ts"
export { Recorder, type Result, type Workload, workloads } from "../../src/bin/workload.ts"

/** Reads `--name value` pairs from argv. */
export const args = (argv: ReadonlyArray<string>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a.startsWith("--")) out[a.slice(2)] = argv[i + 1] ?? ""
  }
  return out
}

/**
 * Makes a server process report its CPU time on SIGTERM, as a line
 * `cpu <microseconds>`, so the runner can compute CPU per request — a figure
 * far steadier than throughput on a noisy machine.
 */
export const reportCpuOnExit = (): void => {
  let start = process.cpuUsage()
  // The runner sends SIGUSR1 just before the client starts, so start-up (module
  // loading, JIT of the first requests is still in) is not billed to requests.
  process.on("SIGUSR1", () => {
    start = process.cpuUsage()
  })
  process.once("SIGTERM", () => {
    const used = process.cpuUsage(start)
    process.stdout.write(`cpu ${used.user + used.system}\n`, () => process.exit(0))
  })
}

let clientStart = process.cpuUsage()

/** Call just before the workload starts: CPU spent loading modules is not billed to requests. */
export const markClientStart = (): void => {
  clientStart = process.cpuUsage()
}

/** The result line a bench client prints, with its own CPU time per request (µs). */
export const resultLine = (result: Result): string => {
  const used = process.cpuUsage(clientStart)
  const clientCpuUs = Math.round(((used.user + used.system) / Math.max(1, result.total)) * 100) / 100
  return JSON.stringify({ ...result, clientCpuUs })
}
