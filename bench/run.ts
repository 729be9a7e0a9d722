// The benchmark suite: each server in its own process pinned to core 0, each
// client in another pinned to core 1 (`taskset`, when present), the raw
// node:net baseline in the same run, ratios against it. Rounds are
// interleaved (round 1 of every contender, then round 2, ...), so a noisy
// minute on this shared VM hurts every contender alike; the median round is
// reported.
//
// Go's reference programs (../shared/peers/go-quasizero/bin) are contenders
// too: qz-server as a server, qz-bench as a client. qz-bench has no warm-up,
// so it runs for WARMUP + DURATION and reports over all of it.
//
//   npm run bench                         all contenders and workloads
//   WORKLOADS=seq,pipe100 DURATION=5000 npm run bench
//   npm run bench -- --external other=127.0.0.1:7701   add any server speaking the wire
//
// "ours ×3 endpoints" runs conc64 with one multi-endpoint client
// (`Client.make({ endpoints })`) over three of our servers, all pinned to the
// server core: the balancing overhead against "ours", not more capacity.
//
// "ours + spin" is "ours" with `spin` on for our server and our client (spin
// before park, see the README): SPIN (default 50us) sets it; the other
// contenders never spin.
//
// Env: WORKLOADS, CONTENDERS, DURATION (ms, default 3000), WARMUP (ms, default
// 5000: Node's JIT is still compiling 1–3 s in), RUNS (default 1), SPIN.
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Go from "./lib/go.ts"
import { args, type Result, workloads } from "./lib/stats.ts"

const here = new URL(".", import.meta.url).pathname
const node = process.execPath
const hasTaskset = ChildProcess.spawnSync("taskset", ["-c", "0", "true"]).status === 0
/** `command args` on `core` (taskset execs it: the PID is the command's own). */
const pinnedCommand = (core: number, command: string, argv: ReadonlyArray<string>): [string, Array<string>] =>
  hasTaskset ? ["taskset", ["-c", String(core), command, ...argv]] : [command, [...argv]]
const pinned = (core: number, argv: ReadonlyArray<string>) => pinnedCommand(core, node, argv)

interface Contender {
  readonly name: string
  /** A server in bench/servers/, `go` (qz-server) or an external address. */
  readonly server: string | { readonly external: string }
  /** A client in bench/clients/, or `go` (qz-bench). */
  readonly client: string
  /** Servers to start (the client gets their addresses, comma-separated); default 1. */
  readonly replicas?: number
  /** The workloads it runs (default: all). */
  readonly only?: ReadonlyArray<string>
  /** `spin` for our server and client (env SPIN of their processes); default: off. */
  readonly spin?: string
}

// Only "ours + spin" spins: SPIN is taken out of every other contender's environment.
const { SPIN: spinSetting = "50us", ...envWithoutSpin } = process.env
const envOf = (spin: string | undefined) => (spin === undefined ? envWithoutSpin : { ...envWithoutSpin, SPIN: spin })

const clients = new Set(Fs.readdirSync(`${here}clients`).map((f) => f.replace(/\.ts$/, "")))
const contenders: Array<Contender> = [
  { name: "baseline", server: "baseline", client: "baseline" },
  ...(clients.has("quasizero") ? [{ name: "ours", server: "quasizero", client: "quasizero" }] : []),
  ...(clients.has("quasizero")
    ? [{ name: "ours + spin", server: "quasizero", client: "quasizero", spin: spinSetting }]
    : []),
  { name: "our server", server: "quasizero", client: "baseline" },
  ...(clients.has("quasizero") ? [{ name: "our client", server: "baseline", client: "quasizero" }] : []),
  // One multi-endpoint client over three of our servers (all on the server core).
  ...(clients.has("quasizero")
    ? [{ name: "ours ×3 endpoints", server: "quasizero", client: "quasizero", replicas: 3, only: ["conc64"] }]
    : []),
  ...(Go.available
    ? [
      { name: "go", server: "go", client: "baseline" },
      { name: "go + go", server: "go", client: "go" },
      { name: "ours + go", server: "quasizero", client: "go" },
      ...(clients.has("quasizero") ? [{ name: "go + ours", server: "go", client: "quasizero" }] : [])
    ]
    : [])
]
const cli = args(process.argv.slice(2))
if (cli.external) {
  const [name, address] = cli.external.split("=") as [string, string]
  contenders.push({ name: `${name} (baseline client)`, server: { external: address }, client: "baseline" })
  if (clients.has("quasizero")) {
    contenders.push({ name: `${name} (our client)`, server: { external: address }, client: "quasizero" })
  }
}

const selected = (env: string | undefined, all: ReadonlyArray<string>) => (env ? env.split(",") : all)
const workloadNames = selected(process.env.WORKLOADS, Object.keys(workloads))
const contenderNames = selected(process.env.CONTENDERS, contenders.map((c) => c.name))
const duration = process.env.DURATION ?? "3000"
const warmup = process.env.WARMUP ?? "5000"
const runs = Number(process.env.RUNS ?? 1)

const startServer = (name: string, spin?: string) =>
  new Promise<{
    readonly address: string
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

const runClient = (name: string, address: string, workload: string, spin?: string) =>
  new Promise<Result>((resolve, reject) => {
    if (name === "go") return runGoClient(address, workload).then(resolve, reject)
    const [cmd, argv] = pinned(1, [
      `${here}clients/${name}.ts`,
      "--address",
      address,
      "--workload",
      workload,
      "--duration",
      duration,
      "--warmup",
      warmup
    ])
    const child = ChildProcess.spawn(cmd, argv, { stdio: ["ignore", "pipe", "inherit"], env: envOf(spin) })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.once("exit", (code) => {
      const line = out.trim().split("\n").pop() ?? ""
      if (code === 0 && line.startsWith("{")) resolve(JSON.parse(line) as Result)
      else reject(new Error(`client ${name} (${workload}) exited with ${code}: ${out}`))
    })
  })

/** qz-bench, pinned like our clients, for warm-up + duration (it has no warm-up of its own). */
const runGoClient = (address: string, name: string) =>
  new Promise<Result>((resolve, reject) => {
    const workload = workloads[name]!
    const [cmd, argv] = pinnedCommand(
      1,
      ...Go.benchShell(Go.benchArgs(workload, address, Number(warmup) + Number(duration)))
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

type Row = Result & { readonly serverCpuUs: number | undefined; readonly clientCpuUs?: number }

const measure = async (contender: Contender, workload: string): Promise<Row> => {
  if ((contender.replicas ?? 1) > 1) return measureReplicas(contender, workload)
  const server = typeof contender.server === "string" ? await startServer(contender.server, contender.spin) : undefined
  const address = server?.address ?? (contender.server as { external: string }).external
  server?.markStart()
  const result = await runClient(contender.client, address, workload, contender.spin).finally(() => server?.stop())
  const cpu = await server?.stopped
  return { ...result, serverCpuUs: cpu === undefined ? undefined : Math.round((cpu / result.total) * 100) / 100 }
}

// Several servers, one client over all of them; server CPU is their sum.
const measureReplicas = async (contender: Contender, workload: string): Promise<Row> => {
  const servers = await Promise.all(
    Array.from({ length: contender.replicas! }, () => startServer(contender.server as string))
  )
  for (const server of servers) server.markStart()
  const addresses = servers.map((server) => server.address).join(",")
  const result = await runClient(contender.client, addresses, workload).finally(() => {
    for (const server of servers) server.stop()
  })
  const cpus = await Promise.all(servers.map((server) => server.stopped))
  const cpu = cpus.some((c) => c === undefined) ? undefined : cpus.reduce((a, b) => a! + b!, 0)
  return { ...result, serverCpuUs: cpu === undefined ? undefined : Math.round((cpu / result.total) * 100) / 100 }
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = async () => {
  const cpu = Os.cpus()[0]?.model ?? "unknown CPU"
  console.error(
    `# quasizero bench: node ${process.version}, ${Os.cpus().length}x ${cpu}, `
      + `${hasTaskset ? "server on core 0, client on core 1 (taskset)" : "NOT pinned (no taskset)"}, `
      + `warmup ${warmup} ms, measure ${duration} ms, ${runs} interleaved round(s) (median); `
      + `"ours + spin": spin ${spinSetting}`
  )
  if (!Go.available) console.error(`# Go contenders left out: no qz-server / qz-bench in ${Go.binDir}`)
  else {
    console.error(
      `# Go: qz-server and qz-bench from ${Go.binDir}; qz-bench has no warm-up, so it runs `
        + `${Number(warmup) + Number(duration)} ms (warm-up + measure) and reports over all of it`
    )
  }
  const chosen = contenders.filter((c) => contenderNames.includes(c.name))
  const results = new Map<string, Array<Row>>()
  // Interleaved rounds: every workload × contender once per round.
  for (let r = 0; r < runs; r++) {
    if (runs > 1) console.error(`# round ${r + 1} of ${runs}`)
    for (const workload of workloadNames) {
      for (const contender of chosen) {
        if (contender.only !== undefined && !contender.only.includes(workload)) continue
        const result = await measure(contender, workload)
        const key = `${workload}\u0000${contender.name}`
        results.set(key, [...(results.get(key) ?? []), result])
        console.error(
          `  ${workload.padEnd(8)} ${contender.name.padEnd(22)} ${String(result.rps).padStart(9)} req/s  `
            + `p50 ${result.p50us} µs  p99 ${result.p99us} µs  CPU µs/req server ${result.serverCpuUs ?? "?"} client ${
              result.clientCpuUs ?? "?"
            }`
            + (result.errors ? `  ${result.errors} errors` : "")
        )
      }
    }
  }
  const rows: Array<Row & { readonly contender: string }> = []
  for (const workload of workloadNames) {
    for (const contender of chosen) {
      const rounds = results.get(`${workload}\u0000${contender.name}`)
      if (rounds === undefined) continue
      const best = rounds.find((x) => x.rps === median(rounds.map((y) => y.rps)))!
      rows.push({ ...best, contender: contender.name })
    }
  }
  const lines = [
    "| workload | contender | req/s | p50 µs | p99 µs | CPU µs/req server / client | req/s vs baseline | p50 vs baseline "
    + "| req/s vs go + go |",
    "|---|---|--:|--:|--:|--:|--:|--:|--:|"
  ]
  for (const row of rows) {
    const base = rows.find((r) => r.workload === row.workload && r.contender === "baseline")
    const go = rows.find((r) => r.workload === row.workload && r.contender === "go + go")
    const ratio = (a: number, b: number | undefined) => (b ? (a / b).toFixed(2) + "×" : "–")
    lines.push(
      `| ${row.workload} | ${row.contender} | ${row.rps} | ${row.p50us} | ${row.p99us} | ${row.serverCpuUs ?? "–"} / ${
        row.clientCpuUs ?? "–"
      } | `
        + `${ratio(row.rps, base?.rps)} | ${ratio(row.p50us, base?.p50us)} | ${ratio(row.rps, go?.rps)} |`
    )
  }
  console.log(lines.join("\n"))
  Fs.mkdirSync(`${here}results`, { recursive: true })
  Fs.writeFileSync(
    `${here}results/latest.json`,
    JSON.stringify({ node: process.version, cpu, pinned: hasTaskset, rows }, null, 2)
  )
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
