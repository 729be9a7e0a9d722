// Throughput of `quasizero serve --workers N` (N processes on one port with
// SO_REUSEPORT) under the conc64 workload, from CLIENTS client processes
// (bench/clients/baseline.ts: 64 connections each).
//
//   ./node_modules/.bin/node bench/workers.ts
//   WORKERS=1,2,4 CLIENTS=1 DURATION=5000 RUNS=3 ./node_modules/.bin/node bench/workers.ts
//
// Nothing is pinned: the workers must be free to spread over the cores, and
// on a small box the client competes with them for those cores (say so when
// reading the ratio). Reported per N: req/s (median of RUNS), the server's CPU
// per request summed over its processes (/proc), and how the kernel spread
// the connections over the workers.
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import type { Result } from "./lib/stats.ts"

const root = new URL("..", import.meta.url).pathname
const node = process.execPath
const workerCounts = (process.env.WORKERS ?? "1,2").split(",").map(Number)
const clients = Number(process.env.CLIENTS ?? 1)
const duration = Number(process.env.DURATION ?? 5000)
const warmup = Number(process.env.WARMUP ?? 1000)
const runs = Number(process.env.RUNS ?? 3)

const children = (pid: number): Array<number> => {
  try {
    return Fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

const clockTicks = Number(ChildProcess.execSync("getconf CLK_TCK").toString().trim()) || 100

/** CPU time of a process in microseconds (utime + stime from /proc). */
const cpuOf = (pid: number): number => {
  const fields = Fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks * 1e6) / clockTicks
}

const sockets = (pid: number): number =>
  Fs.readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return Fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")
    } catch {
      return false
    }
  }).length

const startServer = (workers: number) =>
  new Promise<{ readonly port: number; readonly pids: Array<number>; readonly stop: () => Promise<void> }>(
    (resolve, reject) => {
      const child = ChildProcess.spawn(node, [
        `${root}src/bin/quasizero.ts`,
        "serve",
        "--port",
        "0",
        "--workers",
        String(workers)
      ], {
        stdio: ["ignore", "pipe", "inherit"]
      })
      let out = ""
      child.stdout.on("data", (d) => {
        out += d
        const match = /listening on 127\.0\.0\.1:(\d+)/.exec(out)
        if (match) {
          resolve({
            port: Number(match[1]),
            pids: [child.pid!, ...children(child.pid!)],
            stop: () =>
              new Promise((done) => {
                child.once("exit", () => done())
                child.kill("SIGTERM")
              })
          })
        }
      })
      child.once("exit", (code) => {
        if (!/listening on/.test(out)) reject(new Error(`serve --workers ${workers} exited with ${code}`))
      })
    }
  )

const runClient = (port: number) =>
  new Promise<Result & { readonly clientCpuUs: number }>((resolve, reject) => {
    const child = ChildProcess.spawn(node, [
      `${root}bench/clients/baseline.ts`,
      "--address",
      `127.0.0.1:${port}`,
      "--workload",
      "conc64",
      "--duration",
      String(duration),
      "--warmup",
      String(warmup)
    ], { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.once("exit", (code) => {
      const line = out.trim().split("\n").pop() ?? ""
      if (code === 0 && line.startsWith("{")) resolve(JSON.parse(line))
      else reject(new Error(`client exited with ${code}: ${out}`))
    })
  })

interface Row {
  readonly workers: number
  readonly rps: number
  readonly p50us: number
  readonly serverCpuUs: number
  readonly split: string
}

const measure = async (workers: number): Promise<Row> => {
  const server = await startServer(workers)
  try {
    const before = server.pids.map(cpuOf)
    const baseSockets = server.pids.map(sockets)
    let split = ""
    const sample = setTimeout(() => {
      split = server.pids.map((pid, i) => sockets(pid) - baseSockets[i]!).join("/")
    }, warmup + duration / 2)
    const results = await Promise.all(Array.from({ length: clients }, () => runClient(server.port)))
    clearTimeout(sample)
    const cpu = server.pids.reduce((n, pid, i) => n + cpuOf(pid) - before[i]!, 0)
    const total = results.reduce((n, r) => n + r.total, 0)
    return {
      workers,
      rps: results.reduce((n, r) => n + r.rps, 0),
      p50us: Math.max(...results.map((r) => r.p50us)),
      serverCpuUs: Math.round((cpu / total) * 100) / 100,
      split
    }
  } finally {
    await server.stop()
  }
}

const main = async () => {
  console.error(
    `# quasizero workers: node ${process.version}, ${Os.cpus().length}x ${Os.cpus()[0]?.model ?? "?"}, `
      + `${clients} client process(es) × conc64, ${duration} ms after ${warmup} ms warm-up, median of ${runs}, not pinned`
  )
  const rows: Array<Row> = []
  for (const workers of workerCounts) {
    const samples: Array<Row> = []
    for (let r = 0; r < runs; r++) {
      const row = await measure(workers)
      samples.push(row)
      console.error(
        `  workers ${workers}: ${row.rps} req/s, p50 ${row.p50us} µs, server CPU ${row.serverCpuUs} µs/req, connections per process ${row.split}`
      )
    }
    rows.push(samples.toSorted((a, b) => a.rps - b.rps)[Math.floor(samples.length / 2)]!)
  }
  const one = rows.find((r) => r.workers === 1)
  console.log(
    [
      "| workers | req/s | vs 1 worker | p50 µs | server CPU µs/req | connections per process |",
      "|--:|--:|--:|--:|--:|---|",
      ...rows.map((r) =>
        `| ${r.workers} | ${r.rps} | ${
          one ? (r.rps / one.rps).toFixed(2) + "×" : "–"
        } | ${r.p50us} | ${r.serverCpuUs} | ${r.split} |`
      )
    ].join("\n")
  )
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
