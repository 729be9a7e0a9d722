// The benchmark suite: each server in its own process pinned to core 0, each
// client in another pinned to core 1 (`taskset`, when present), the raw
// node:net baseline in the same run, ratios against it.
//
// Two schedules, both so that a noisy minute on this shared VM hurts every
// contender alike:
// - pipe10, pipe100, conc64: RUNS interleaved rounds (round 1 of every
//   workload and contender, then round 2, ...), a fresh server and client per
//   measurement, WARMUP then DURATION.
// - seq, echo1k (one caller, one outstanding request: bound by loopback
//   wake-ups, the noisiest rows): every contender's processes started and
//   warmed once, then LATENCY_ROUNDS rounds of one LATENCY_DURATION window per
//   contender, the order rotated each round (bench/lib/session.ts).
// Reported: per contender the median of its rounds; the ratios against the
// baseline and go + go taken round by round, as median (min–max).
//
// Go's reference programs (../shared/peers/go-quasizero/bin) are contenders
// too: qz-server as a server, qz-bench as a client. qz-bench has no warm-up,
// so in the first schedule it runs for WARMUP + DURATION and reports over all
// of it; in the second it is started for each window (Go starts in a
// millisecond), after one WARMUP-long run against its server.
//
//   npm run bench                         all contenders and workloads (~15 min)
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
// Env: WORKLOADS, CONTENDERS, SPIN, WARMUP (ms, default 5000: Node's JIT is still
// compiling 1–3 s in), RUNS (default 3), DURATION (ms, default 2000),
// LATENCY_ROUNDS (default 9; 0 puts seq and echo1k in the first schedule),
// LATENCY_DURATION (ms, default 1000).
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Go from "./lib/go.ts"
import * as Proc from "./lib/proc.ts"
import { type ClientSession, hasTaskset, openClient, runClient, startServer } from "./lib/processes.ts"
import * as Report from "./lib/report.ts"
import type { Row } from "./lib/report.ts"
import { args, workloads } from "./lib/stats.ts"

const here = new URL(".", import.meta.url).pathname

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

const spinSetting = process.env.SPIN ?? "50us"

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
const duration = Number(process.env.DURATION ?? 2000)
const warmup = Number(process.env.WARMUP ?? 5000)
const runs = Number(process.env.RUNS ?? 3)
const latencyRounds = Number(process.env.LATENCY_ROUNDS ?? 9)
const latencyDuration = Number(process.env.LATENCY_DURATION ?? 1000)
// One caller, one outstanding request: bound by loopback wake-ups, the noisiest rows on a shared VM.
const isLatency = (w: string) => workloads[w]?.callers === 1 && workloads[w]?.depth === 1 && latencyRounds > 0
const latencyNames = workloadNames.filter(isLatency)
const otherNames = workloadNames.filter((w) => !isLatency(w))

const measure = async (contender: Contender, workload: string): Promise<Row> => {
  if ((contender.replicas ?? 1) > 1) return measureReplicas(contender, workload)
  const server = typeof contender.server === "string" ? await startServer(contender.server, contender.spin) : undefined
  const address = server?.address ?? (contender.server as { external: string }).external
  server?.markStart()
  const result = await runClient(contender.client, address, workload, warmup, duration, contender.spin).finally(() =>
    server?.stop()
  )
  const cpu = await server?.stopped
  return { ...result, serverCpuUs: perRequest(cpu, result.total) }
}

const perRequest = (cpuUs: number | undefined, requests: number) =>
  cpuUs === undefined || requests === 0 ? undefined : Math.round((cpuUs / requests) * 100) / 100

// Several servers, one client over all of them; server CPU is their sum.
const measureReplicas = async (contender: Contender, workload: string): Promise<Row> => {
  const servers = await Promise.all(
    Array.from({ length: contender.replicas! }, () => startServer(contender.server as string))
  )
  for (const server of servers) server.markStart()
  const addresses = servers.map((server) => server.address).join(",")
  const result = await runClient(contender.client, addresses, workload, warmup, duration).finally(() => {
    for (const server of servers) server.stop()
  })
  const cpus = await Promise.all(servers.map((server) => server.stopped))
  const cpu = cpus.some((c) => c === undefined) ? undefined : cpus.reduce((a, b) => a! + b!, 0)
  return { ...result, serverCpuUs: perRequest(cpu, result.total) }
}

/**
 * The latency workloads: every contender's server and client started and
 * warmed once (WARMUP each, one contender at a time), then LATENCY_ROUNDS
 * rounds of one LATENCY_DURATION window per contender, the order rotated each
 * round, so a noisy stretch on the shared cores falls on neighbouring windows
 * of different contenders alike. CPU per window: the server's from /proc
 * (all threads, ns), our clients' from their own `process.cpuUsage`, qz-bench's
 * from `times`.
 */
const measureSessions = async (chosen: ReadonlyArray<Contender>, workload: string, rounds: Map<string, Array<Row>>) => {
  const open: Array<{
    readonly contender: Contender
    readonly client: ClientSession
    readonly serverPid: number | undefined
    readonly stop: () => void
  }> = []
  try {
    for (const contender of chosen) {
      const server = typeof contender.server === "string"
        ? await startServer(contender.server, contender.spin)
        : undefined
      const address = server?.address ?? (contender.server as { external: string }).external
      const client = openClient(contender.client, address, workload, contender.spin)
      open.push({ contender, client, serverPid: server?.pid, stop: () => server?.stop() })
      await client.run("warm", warmup)
    }
    for (let r = 0; r < latencyRounds; r++) {
      for (let k = 0; k < open.length; k++) {
        const { client, contender, serverPid } = open[(r + k) % open.length]!
        const before = Proc.cpuUs(serverPid)
        const result = await client.run("go", latencyDuration)
        const after = Proc.cpuUs(serverPid)
        const row: Row = {
          ...result,
          serverCpuUs: perRequest(
            before === undefined || after === undefined ? undefined : after - before,
            result.total
          )
        }
        rounds.set(contender.name, [...(rounds.get(contender.name) ?? []), row])
        log(workload, contender.name, row)
      }
    }
  } finally {
    for (const { client, stop } of open) {
      await client.close()
      stop()
    }
  }
}

const log = (workload: string, contender: string, row: Row) =>
  console.error(
    `  ${workload.padEnd(8)} ${contender.padEnd(22)} ${String(row.rps).padStart(9)} req/s  `
      + `p50 ${row.p50us} µs  p99 ${row.p99us} µs  CPU µs/req server ${row.serverCpuUs ?? "?"} client ${
        row.clientCpuUs ?? "?"
      }`
      + (row.errors ? `  ${row.errors} errors` : "")
  )

const main = async () => {
  const cpu = Os.cpus()[0]?.model ?? "unknown CPU"
  console.error(
    `# quasizero bench: node ${process.version}, ${Os.cpus().length}x ${cpu}, `
      + `${hasTaskset ? "server on core 0, client on core 1 (taskset)" : "NOT pinned (no taskset)"}, `
      + `warmup ${warmup} ms; ${latencyNames.join(", ") || "no workload"}: ${latencyRounds} rotated round(s) of `
      + `${latencyDuration} ms per contender; ${otherNames.join(", ") || "no workload"}: ${runs} interleaved `
      + `round(s) of ${duration} ms; "ours + spin": spin ${spinSetting}`
  )
  if (!Go.available) console.error(`# Go contenders left out: no qz-server / qz-bench in ${Go.binDir}`)
  else {
    console.error(
      `# Go: qz-server and qz-bench from ${Go.binDir}; qz-bench has no warm-up, so it runs `
        + `${warmup + duration} ms (warm-up + measure) and reports over all of it; in the rotated rounds it runs `
        + `each window afresh`
    )
  }
  const chosen = contenders.filter((c) => contenderNames.includes(c.name))
  const results = new Map<string, Map<string, Array<Row>>>(workloadNames.map((w) => [w, new Map()]))
  // Interleaved rounds: every workload × contender once per round.
  for (let r = 0; r < runs && otherNames.length > 0; r++) {
    if (runs > 1) console.error(`# round ${r + 1} of ${runs}`)
    for (const workload of otherNames) {
      for (const contender of chosen) {
        if (contender.only !== undefined && !contender.only.includes(workload)) continue
        const row = await measure(contender, workload)
        const rounds = results.get(workload)!
        rounds.set(contender.name, [...(rounds.get(contender.name) ?? []), row])
        log(workload, contender.name, row)
      }
    }
  }
  for (const workload of latencyNames) {
    console.error(`# ${workload}: ${latencyRounds} rotated rounds`)
    const eligible = chosen.filter((c) =>
      (c.replicas ?? 1) === 1 && (c.only === undefined || c.only.includes(workload))
    )
    await measureSessions(eligible, workload, results.get(workload)!)
  }
  const rows = workloadNames.flatMap((w) => Report.summarise(w, results.get(w)!))
  console.log(Report.table(rows))
  Fs.mkdirSync(`${here}results`, { recursive: true })
  Fs.writeFileSync(
    `${here}results/latest.json`,
    JSON.stringify(
      {
        node: process.version,
        cpu,
        pinned: hasTaskset,
        rows,
        rounds: Object.fromEntries([...results].map(([w, m]) => [w, Object.fromEntries(m)]))
      },
      null,
      2
    )
  )
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
