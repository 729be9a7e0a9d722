// Shared by the bench processes: the workload definitions and the result
// shape live in src/bin/workload.ts (so `quasizero bench` uses the same ones).
export { type Result, Recorder, type Workload, workloads } from "../../src/bin/workload.ts"

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
  const start = process.cpuUsage()
  process.once("SIGTERM", () => {
    const used = process.cpuUsage(start)
    process.stdout.write(`cpu ${used.user + used.system}\n`, () => process.exit(0))
  })
}
