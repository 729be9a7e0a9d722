// The bench's processes: servers pinned to core 0, clients to core 1
// (`taskset`, when present), Go's reference programs among them.
import * as ChildProcess from "node:child_process"
import * as Go from "./go.ts"
import type { Result } from "./stats.ts"
import { workloads } from "./stats.ts"

const here = new URL("../", import.meta.url).pathname
const node = process.execPath
export const hasTaskset = ChildProcess.spawnSync("taskset", ["-c", "0", "true"]).status === 0
/** `command args` on `core` (taskset execs it: the PID is the command's own). */
export const pinnedCommand = (core: number, command: string, argv: ReadonlyArray<string>): [string, Array<string>] =>
  hasTaskset ? ["taskset", ["-c", String(core), command, ...argv]] : [command, [...argv]]
export const pinned = (core: number, argv: ReadonlyArray<string>) => pinnedCommand(core, node, argv)

// Only a contender that asks for it spins: SPIN is taken out of every other process's environment.
const { SPIN: _spin, ...envWithoutSpin } = process.env
const envOf = (spin: string | undefined) => (spin === undefined ? envWithoutSpin : { ...envWithoutSpin, SPIN: spin })

/** `spin`: our server's `spin` (env SPIN of its process); default off. */
export const startServer = (name: string, spin?: string) =>
  new Promise<{
    readonly address: string
    readonly pid: number | undefined
    readonly stop: () => void
    /** Restarts the server's CPU accounting (after its start-up). */
    readonly markStart: () => void
    /** The server's CPU time in µs, when it reports one, once it exited. */
    readonly stopped: Promise<number | undefined>
  }>((resolve, reject) => {
    const isGo = name === "go"
    const [cmd, argv] = isGo ? pinnedCommand(0, ...Go.serverCommand()) : pinned(0, [`${here}servers/${name}.ts`])
    const child = ChildProcess.spawn(cmd, argv, { stdio: ["ignore", "pipe", "inherit"], env: envOf(spin) })
    let out = ""
    // Go's server: CPU read from /proc when the client starts and again just before it is stopped.
    let goStart: number | undefined
    let goCpu: number | undefined
    const stopped = new Promise<number | undefined>((done) =>
      child.once("exit", () => {
        const cpu = /cpu (\d+)/.exec(out)
        done(isGo ? goCpu : cpu ? Number(cpu[1]) : undefined)
      })
    )
    child.stdout.on("data", (d) => {
      out += d
      const match = /listening on (\S+)/.exec(out)
      if (match) {
        resolve({
          address: match[1]!,
          pid: child.pid,
          stop: () => {
            if (isGo) {
              const end = Go.procCpuUs(child.pid)
              goCpu = end === undefined || goStart === undefined ? undefined : end - goStart
            }
            child.kill("SIGTERM")
          },
          markStart: () => (isGo ? (goStart = Go.procCpuUs(child.pid)) : child.kill("SIGUSR1")),
          stopped
        })
      }
    })
    child.once("exit", (code) => {
      if (!/listening on/.test(out)) reject(new Error(`server ${name} exited with ${code}`))
    })
  })

/** A bench client's command line (bench/clients/NAME.ts). */
const clientArgs = (name: string, address: string, workload: string, ...rest: ReadonlyArray<string>) => [
  `${here}clients/${name}.ts`,
  "--address",
  address,
  "--workload",
  workload,
  ...rest
]

export const runClient = (
  name: string,
  address: string,
  workload: string,
  warmup: number,
  duration: number,
  spin?: string
) =>
  new Promise<Result>((resolve, reject) => {
    if (name === "go") return runGoClient(address, workload, warmup + duration).then(resolve, reject)
    const [cmd, argv] = pinned(
      1,
      clientArgs(name, address, workload, "--duration", String(duration), "--warmup", String(warmup))
    )
    const child = ChildProcess.spawn(cmd, argv, { stdio: ["ignore", "pipe", "inherit"], env: envOf(spin) })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.once("exit", (code) => {
      const line = out.trim().split("\n").pop() ?? ""
      if (code === 0 && line.startsWith("{")) resolve(JSON.parse(line) as Result)
      else reject(new Error(`client ${name} (${workload}) exited with ${code}: ${out}`))
    })
  })

/** qz-bench, pinned like our clients, for `totalMs` (it has no warm-up of its own). */
export const runGoClient = (address: string, name: string, totalMs: number) =>
  new Promise<Result>((resolve, reject) => {
    const workload = workloads[name]!
    const [cmd, argv] = pinnedCommand(
      1,
      ...Go.benchShell(Go.benchArgs(workload, address, totalMs))
    )
    const child = ChildProcess.spawn(cmd, argv, { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.once("exit", (code) => {
      if (code !== 0) return reject(new Error(`qz-bench (${name}) exited with ${code}: ${out}`))
      try {
        resolve(Go.parseBench(workload, out))
      } catch (e) {
        reject(e)
      }
    })
  })

/** A bench client in session mode (bench/lib/session.ts): started once, then run window by window. */
export interface ClientSession {
  /** `warm`: load, nothing recorded; `go`: a measured window. Either answers with the window's Result. */
  readonly run: (command: "warm" | "go", ms: number) => Promise<Result>
  readonly close: () => Promise<void>
}

/** Our clients stay up between windows; qz-bench (no warm-up needed) is started for each. */
export const openClient = (name: string, address: string, workload: string, spin?: string): ClientSession => {
  if (name === "go") return { run: (_, ms) => runGoClient(address, workload, ms), close: async () => {} }
  const [cmd, argv] = pinned(1, clientArgs(name, address, workload, "--session"))
  const child = ChildProcess.spawn(cmd, argv, { stdio: ["pipe", "pipe", "inherit"], env: envOf(spin) })
  const waiting: Array<{ readonly resolve: (r: Result) => void; readonly reject: (e: Error) => void }> = []
  let out = ""
  child.stdout.on("data", (d) => {
    out += d
    for (let i = out.indexOf("\n"); i >= 0; i = out.indexOf("\n")) {
      const line = out.slice(0, i)
      out = out.slice(i + 1)
      if (line.startsWith("{")) waiting.shift()?.resolve(JSON.parse(line) as Result)
    }
  })
  const exited = new Promise<void>((done) =>
    child.once("exit", (code) => {
      for (const w of waiting.splice(0)) w.reject(new Error(`client ${name} (${workload}) exited with ${code}`))
      done()
    })
  )
  return {
    run: (command, ms) =>
      new Promise<Result>((resolve, reject) => {
        waiting.push({ resolve, reject })
        child.stdin.write(`${command} ${ms}\n`)
      }),
    close: () => {
      child.stdin.end()
      return exited
    }
  }
}
