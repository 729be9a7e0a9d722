// The Go peer in the benchmark suite: qz-server as a server contender (its
// CPU time read from /proc/PID/stat) and qz-bench as a client contender (its
// CPU time from the shell's `times`, which reports what its child used).
//
// qz-bench has no warm-up: its window starts at once. It is run for
// warm-up + duration, the same total time our clients get, and reports over
// the whole of it (Go needs no JIT warm-up; its first milliseconds are in).
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { Result, Workload } from "./stats.ts"

const root = new URL("../../", import.meta.url).pathname

/** `QUASIZERO_GO_PEER_BIN`, else `../shared/peers/go-quasizero/bin` from the repository root. */
export const binDir = process.env.QUASIZERO_GO_PEER_BIN ?? Path.resolve(root, "../shared/peers/go-quasizero/bin")

/** Whether qz-server and qz-bench are there and executable. */
export const available = (["qz-server", "qz-bench"] as const).every((name) => {
  try {
    Fs.accessSync(Path.join(binDir, name), Fs.constants.X_OK)
    return true
  } catch {
    return false
  }
})

export const serverCommand = (): [string, Array<string>] => [
  Path.join(binDir, "qz-server"),
  ["-addr", "127.0.0.1:0", "-quiet"]
]

const clockTicks = 100 // USER_HZ: what /proc/PID/stat counts in on Linux (getconf CLK_TCK)

/** A live process's user + system CPU time in µs, from /proc (`undefined` when unreadable). */
export const procCpuUs = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    // Fields after the command name (which is in parentheses and may hold spaces); utime, stime are 14, 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return ((Number(fields[11]) + Number(fields[12])) / clockTicks) * 1e6
  } catch {
    return undefined
  }
}

/** qz-bench flags for one of our workloads. */
export const benchArgs = (workload: Workload, address: string, totalMs: number): Array<string> => [
  "-addr",
  address,
  "-mode",
  workload.depth > 1 ? "pipe" : "seq",
  "-batch",
  String(workload.depth),
  "-conc",
  String(workload.callers),
  "-code",
  String(workload.code),
  "-size",
  String(workload.payloadSize),
  "-duration",
  `${totalMs}ms`
]

/**
 * The shell line that runs qz-bench and then prints the CPU time its child
 * used (`times`: the shell's own line, then its children's), so the client's
 * CPU is measured even though the process is gone when we read the result.
 */
export const benchShell = (args: ReadonlyArray<string>): [string, Array<string>] => [
  "sh",
  ["-c", `"$0" "$@" && times`, Path.join(binDir, "qz-bench"), ...args]
]

interface GoBenchLine {
  readonly requests: number
  readonly errors: number
  readonly seconds: number
  readonly req_per_s: number
  readonly p50_us: number
  readonly p99_us: number
}

const seconds = (s: string) => {
  const m = /^(\d+)m([\d.]+)s$/.exec(s)
  return m ? Number(m[1]) * 60 + Number(m[2]) : NaN
}

/** qz-bench's JSON line plus the `times` lines, as our Result (CPU per request over its whole run). */
export const parseBench = (workload: Workload, out: string): Result & { readonly clientCpuUs?: number } => {
  const lines = out.trim().split("\n")
  const json = lines.find((l) => l.startsWith("{"))
  if (json === undefined) throw new Error(`qz-bench printed no result: ${out}`)
  const r = JSON.parse(json) as GoBenchLine
  const children = lines.at(-1)?.trim().split(/\s+/) ?? []
  const cpuUs = (seconds(children[0] ?? "") + seconds(children[1] ?? "")) * 1e6
  return {
    workload: workload.name,
    client: "go",
    requests: r.requests,
    seconds: Math.round(r.seconds * 1000) / 1000,
    rps: Math.round(r.req_per_s),
    p50us: Math.round(r.p50_us * 10) / 10,
    p99us: Math.round(r.p99_us * 10) / 10,
    errors: r.errors,
    total: r.requests,
    ...(Number.isFinite(cpuUs) && r.requests > 0
      ? { clientCpuUs: Math.round((cpuUs / r.requests) * 100) / 100 }
      : {})
  }
}
