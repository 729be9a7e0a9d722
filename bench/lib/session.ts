// Session mode for the bench clients (`--session`): the process connects and
// then stays up, idle, between measured windows the runner asks for on stdin,
// so one 5 s JIT warm-up serves many short windows, and the runner can
// interleave the windows of every contender (bench/lib/rounds.ts).
//
// The runner writes one command a line: `warm <ms>` (load, nothing recorded)
// or `go <ms>` (a measured window); the client answers each with one JSON
// Result line covering that window only, its CPU time included. End of stdin
// ends the client.
import * as Readline from "node:readline"
import type { Result } from "./stats.ts"

export type Window = (warmupMs: number, durationMs: number) => Promise<Result>

/** Serves the runner's commands with `window` until stdin ends, then calls `close`. */
export const serve = async (window: Window, close: () => void): Promise<void> => {
  const lines = Readline.createInterface({ input: process.stdin })
  for await (const line of lines) {
    const [command, ms] = line.trim().split(" ")
    const duration = Number(ms)
    if ((command !== "warm" && command !== "go") || !(duration > 0)) {
      throw new Error(`bench session: unknown command ${line}`)
    }
    const start = process.cpuUsage()
    const result = command === "warm" ? await window(duration, 0) : await window(0, duration)
    const used = process.cpuUsage(start)
    const clientCpuUs = Math.round(((used.user + used.system) / Math.max(1, result.total)) * 100) / 100
    process.stdout.write(JSON.stringify({ ...result, clientCpuUs }) + "\n")
  }
  close()
}
