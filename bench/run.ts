// The benchmark suite: each server in its own process pinned to core 0, each
// client in another pinned to core 1 (`taskset`, when present), the raw
// node:net baseline in the same run, ratios against it.
//
//   npm run bench                         all contenders and workloads
//   WORKLOADS=seq,pipe100 DURATION=5000 npm run bench
//   npm run bench -- --external go=127.0.0.1:7701   add any server speaking the wire
//
// Env: WORKLOADS, CONTENDERS, DURATION (ms, default 3000), WARMUP (ms, default 1000), RUNS (default 1).
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import { args, type Result, workloads } from "./lib/stats.ts"

const here = new URL(".", import.meta.url).pathname
const node = process.execPath
const hasTaskset = ChildProcess.spawnSync("taskset", ["-c", "0", "true"]).status === 0
const pinned = (core: number, argv: ReadonlyArray<string>): [string, Array<string>] =>
  hasTaskset ? ["taskset", ["-c", String(core), node, ...argv]] : [node, [...argv]]

interface Contender {
  readonly name: string
  readonly server: string | { readonly external: string }
  readonly client: string
}

const clients = new Set(Fs.readdirSync(`${here}clients`).map((f) => f.replace(/\.ts$/, "")))
const contenders: Array<Contender> = [
  { name: "baseline", server: "baseline", client: "baseline" },
  ...(clients.has("quasizero") ? [{ name: "ours", server: "quasizero", client: "quasizero" }] : []),
  { name: "our server", server: "quasizero", client: "baseline" },
  ...(clients.has("quasizero") ? [{ name: "our client", server: "baseline", client: "quasizero" }] : [])
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
const warmup = process.env.WARMUP ?? "1000"
const runs = Number(process.env.RUNS ?? 1)

const startServer = (name: string) =>
  new Promise<{
    readonly address: string
    readonly stop: () => void
    /** Restarts the server's CPU accounting (after its start-up). */
    readonly markStart: () => void
    /** The server's CPU time in µs, when it reports one, once it exited. */
    readonly stopped: Promise<number | undefined>
  }>((resolve, reject) => {
    const [cmd, argv] = pinned(0, [`${here}servers/${name}.ts`])
    const child = ChildProcess.spawn(cmd, argv, { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    const stopped = new Promise<number | undefined>((done) =>
      child.once("exit", () => {
        const cpu = /cpu (\d+)/.exec(out)
        done(cpu ? Number(cpu[1]) : undefined)
      })
    )
    child.stdout.on("data", (d) => {
      out += d
      const match = /listening on (\S+)/.exec(out)
      if (match) {
        resolve({
          address: match[1]!,
          stop: () => child.kill("SIGTERM"),
          markStart: () => child.kill("SIGUSR1"),
          stopped
        })
      }
    })
    child.once("exit", (code) => {
      if (!/listening on/.test(out)) reject(new Error(`server ${name} exited with ${code}`))
    })
  })

const runClient = (name: string, address: string, workload: string) =>
  new Promise<Result>((resolve, reject) => {
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
    const child = ChildProcess.spawn(cmd, argv, { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.once("exit", (code) => {
      const line = out.trim().split("\n").pop() ?? ""
      if (code === 0 && line.startsWith("{")) resolve(JSON.parse(line) as Result)
      else reject(new Error(`client ${name} (${workload}) exited with ${code}: ${out}`))
    })
  })

type Row = Result & { readonly serverCpuUs: number | undefined; readonly clientCpuUs?: number }

const measure = async (contender: Contender, workload: string): Promise<Row> => {
  const server = typeof contender.server === "string" ? await startServer(contender.server) : undefined
  const address = server?.address ?? (contender.server as { external: string }).external
  server?.markStart()
  const result = await runClient(contender.client, address, workload).finally(() => server?.stop())
  const cpu = await server?.stopped
  return { ...result, serverCpuUs: cpu === undefined ? undefined : Math.round((cpu / result.total) * 100) / 100 }
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = async () => {
  const cpu = Os.cpus()[0]?.model ?? "unknown CPU"
  console.error(
    `# quasizero bench: node ${process.version}, ${Os.cpus().length}x ${cpu}, `
      + `${hasTaskset ? "server on core 0, client on core 1 (taskset)" : "NOT pinned (no taskset)"}, `
      + `warmup ${warmup} ms, measure ${duration} ms, ${runs} run(s) each (median)`
  )
  const rows: Array<Row & { readonly contender: string }> = []
  for (const workload of workloadNames) {
    for (const contender of contenders.filter((c) => contenderNames.includes(c.name))) {
      const results: Array<Row> = []
      for (let r = 0; r < runs; r++) {
        const result = await measure(contender, workload)
        results.push(result)
        console.error(
          `  ${workload.padEnd(8)} ${contender.name.padEnd(22)} ${String(result.rps).padStart(9)} req/s  `
            + `p50 ${result.p50us} µs  p99 ${result.p99us} µs  CPU µs/req server ${result.serverCpuUs ?? "?"} client ${
              result.clientCpuUs ?? "?"
            }`
            + (result.errors ? `  ${result.errors} errors` : "")
        )
      }
      const best = results.find((x) => x.rps === median(results.map((y) => y.rps)))!
      rows.push({ ...best, contender: contender.name })
    }
  }
  const lines = [
    "| workload | contender | req/s | p50 µs | p99 µs | CPU µs/req server / client | req/s vs baseline | p50 vs baseline |",
    "|---|---|--:|--:|--:|--:|--:|--:|"
  ]
  for (const row of rows) {
    const base = rows.find((r) => r.workload === row.workload && r.contender === "baseline")
    const ratio = (a: number, b: number | undefined) => (b ? (a / b).toFixed(2) + "×" : "–")
    lines.push(
      `| ${row.workload} | ${row.contender} | ${row.rps} | ${row.p50us} | ${row.p99us} | ${row.serverCpuUs ?? "–"} / ${
        row.clientCpuUs ?? "–"
      } | `
        + `${ratio(row.rps, base?.rps)} | ${ratio(row.p50us, base?.p50us)} |`
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
