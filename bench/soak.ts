// Long-running figures the test suite is too short for (not in CI). Bounded:
// every phase stops by itself, in about two minutes for all of them.
//
//   ./node_modules/.bin/node bench/soak.ts
//   PHASES=idle,soak,slowloris IDLE_CONNECTIONS=10000 SOAK_MS=30000 ./node_modules/.bin/node bench/soak.ts
//
// idle       IDLE_CONNECTIONS (10,000) connections, each answered one PING, then
//            held idle: server RSS per connection. Our server as users run it
//            (`quasizero serve`) next to the raw node:net baseline server.
// soak       SOAK_MS (30 s) of the conc64 workload (bench/clients/baseline.ts):
//            server RSS, heap, event-loop delay and utilization every second;
//            first vs last seconds and the trend (least-squares slope).
// slowloris  SLOWLORIS (500) connections trickling a frame one byte per 100 ms
//            at a server with a 300 ms timeout: a normal client's PING latency
//            and conc64 throughput, without and with them.
//
// Servers run pinned to core 0 and clients to core 1 (taskset, when present).
// Each side needs a descriptor per connection: when `ulimit -n` is too low for
// IDLE_CONNECTIONS, the script re-runs itself under `ulimit -n` raised to the
// hard limit.
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Readline from "node:readline"
import type { Result } from "./lib/stats.ts"

const root = new URL("..", import.meta.url).pathname
const node = process.execPath
const phases = (process.env.PHASES ?? "idle,soak,slowloris").split(",")
const idleConnections = Number(process.env.IDLE_CONNECTIONS ?? 10_000)
const soakMs = Number(process.env.SOAK_MS ?? 30_000)
const slowlorisConnections = Number(process.env.SLOWLORIS ?? 500)

// -----------------------------------------------------------------------------
// descriptors
// -----------------------------------------------------------------------------

const shellLimit = (flag: string) => ChildProcess.execSync(`ulimit ${flag}`, { shell: "/bin/sh" }).toString().trim()
const needed = idleConnections + 512
const soft = shellLimit("-Sn")
if (phases.includes("idle") && soft !== "unlimited" && Number(soft) < needed) {
  const hard = shellLimit("-Hn")
  const target = hard === "unlimited" ? needed : Math.min(Number(hard), needed)
  if (process.env.SOAK_REEXEC === "1" || target <= Number(soft)) {
    console.error(`# ulimit -n is ${soft} (hard ${hard}); ${needed} needed: lower IDLE_CONNECTIONS`)
    process.exit(1)
  }
  console.error(`# ulimit -n ${soft} → ${target}, re-running`)
  const quoted = [node, ...process.argv.slice(1)].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ")
  const rerun = ChildProcess.spawnSync("/bin/sh", ["-c", `ulimit -n ${target} && exec ${quoted}`], {
    stdio: "inherit",
    env: { ...process.env, SOAK_REEXEC: "1" }
  })
  process.exit(rerun.status ?? 1)
}

// -----------------------------------------------------------------------------
// processes
// -----------------------------------------------------------------------------

const hasTaskset = ChildProcess.spawnSync("taskset", ["-c", "0", "true"]).status === 0
const pinned = (core: number, argv: ReadonlyArray<string>): [string, Array<string>] =>
  hasTaskset ? ["taskset", ["-c", String(core), node, ...argv]] : [node, [...argv]]

interface Stats {
  readonly t: number
  readonly rss: number
  readonly heapUsed: number
  readonly external: number
  readonly connections: number
  readonly delayP50: number
  readonly delayP99: number
  readonly delayMax: number
  readonly utilization: number
}

interface Running {
  readonly port: number
  readonly pid: number
  readonly stats: Array<Stats>
  /** Live memory after a full GC, one per SIGUSR2 (bench/servers/quasizero.ts under --expose-gc). */
  readonly collected: Array<{ readonly t: number; readonly heapUsed: number; readonly rss: number }>
  readonly stop: () => Promise<void>
}

const startServer = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<Running>((resolve, reject) => {
    const [cmd, args] = pinned(0, argv)
    const child = ChildProcess.spawn(cmd, args, {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ...env }
    })
    const stats: Array<Stats> = []
    const collected: Array<{ t: number; heapUsed: number; rss: number }> = []
    let port = 0
    Readline.createInterface({ input: child.stdout }).on("line", (line: string) => {
      const listening = /listening on 127\.0\.0\.1:(\d+)/.exec(line)
      if (listening && port === 0) {
        port = Number(listening[1])
        resolve({
          port,
          pid: child.pid!, // taskset execs node: same process
          stats,
          collected,
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null) return done()
              child.once("exit", () => done())
              child.kill("SIGTERM")
            })
        })
      } else if (line.startsWith("stats ")) stats.push(JSON.parse(line.slice(6)) as Stats)
      else if (line.startsWith("gc ")) collected.push(JSON.parse(line.slice(3)))
    })
    child.once("exit", (code) => {
      if (port === 0) reject(new Error(`${argv.join(" ")} exited with ${code}`))
    })
  })

const runClient = (port: number, workload: string, durationMs: number, warmupMs = 1000) =>
  new Promise<Result>((resolve, reject) => {
    const [cmd, args] = pinned(1, [
      `${root}bench/clients/baseline.ts`,
      "--address",
      `127.0.0.1:${port}`,
      "--workload",
      workload,
      "--duration",
      String(durationMs),
      "--warmup",
      String(warmupMs)
    ])
    const child = ChildProcess.spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.once("exit", (code) => {
      const line = out.trim().split("\n").pop() ?? ""
      if (code === 0 && line.startsWith("{")) resolve(JSON.parse(line) as Result)
      else reject(new Error(`client exited with ${code}: ${out}`))
    })
  })

const clockTicks = Number(ChildProcess.execSync("getconf CLK_TCK").toString().trim()) || 100

/** CPU time of a process in microseconds (utime + stime from /proc). */
const cpuOf = (pid: number): number => {
  const fields = Fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks
}

const rssOf = (pid: number): number => {
  const status = Fs.readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const kb = (bytes: number) => (bytes / 1024).toFixed(1)
const mb = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1)

const pingFrame = Uint8Array.of(2, 8, 1)

/** Connects, sends one PING, resolves with the socket once the reply is in. */
const pingedConnection = (port: number) =>
  new Promise<Net.Socket>((resolve, reject) => {
    const socket = Net.connect({ port, host: "127.0.0.1", noDelay: true })
    socket.once("connect", () => socket.write(pingFrame))
    socket.once("data", () => resolve(socket))
    socket.once("error", reject)
  })

const pingLatencies = async (port: number, ms: number): Promise<Array<number>> => {
  const socket = await pingedConnection(port)
  const out: Array<number> = []
  const until = performance.now() + ms
  while (performance.now() < until) {
    const start = performance.now()
    await new Promise<void>((resolve) => {
      socket.once("data", () => resolve())
      socket.write(pingFrame)
    })
    out.push((performance.now() - start) * 1000)
  }
  socket.destroy()
  return out.sort((a, b) => a - b)
}

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

// -----------------------------------------------------------------------------
// phases
// -----------------------------------------------------------------------------

const table: Array<[string, string]> = []
const figure = (name: string, value: string) => {
  table.push([name, value])
  console.error(`  ${name}: ${value}`)
}

const idle = async () => {
  console.error(`# idle: ${idleConnections} connections held open`)
  const servers: Array<[string, ReadonlyArray<string>]> = [
    ["quasizero serve", [`${root}src/bin/quasizero.ts`, "serve", "--port", "0"]],
    ["raw node:net baseline", [`${root}bench/servers/baseline.ts`]]
  ]
  for (const [name, argv] of servers) {
    const server = await startServer(argv)
    // Warm up (JIT, pools) so the baseline is a steady idle server.
    for (let i = 0; i < 5; i++) {
      ;(await Promise.all(Array.from({ length: 100 }, () => pingedConnection(server.port)))).forEach((s) => s.destroy())
    }
    await sleep(1000)
    const before = rssOf(server.pid)
    const sockets: Array<Net.Socket> = []
    const started = performance.now()
    while (sockets.length < idleConnections) {
      const n = Math.min(250, idleConnections - sockets.length)
      sockets.push(...await Promise.all(Array.from({ length: n }, () => pingedConnection(server.port))))
    }
    const openMs = performance.now() - started
    await sleep(2000)
    const held = rssOf(server.pid)
    const check = await pingLatencies(server.port, 200)
    for (const s of sockets) s.destroy()
    await sleep(2000)
    const after = rssOf(server.pid)
    await server.stop()
    figure(
      `idle ${idleConnections} connections, ${name}`,
      `RSS ${mb(before)} → ${mb(held)} MB = ${kb((held - before) / idleConnections)} KB per connection `
        + `(opened and PINGed in ${(openMs / 1000).toFixed(1)} s; PING p50 with all open ${
          quantile(check, 0.5).toFixed(0)
        } µs; `
        + `${mb(after)} MB after closing them)`
    )
  }
}

const slope = (xs: ReadonlyArray<number>, ys: ReadonlyArray<number>) => {
  const n = xs.length
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my)
    den += (xs[i]! - mx) ** 2
  }
  return den === 0 ? 0 : num / den
}

const soak = async () => {
  console.error(`# soak: conc64 for ${soakMs / 1000} s`)
  const server = await startServer(["--expose-gc", `${root}bench/servers/quasizero.ts`], { STATS: "1000" })
  // Three full GCs under load (start, middle, end): live memory with the
  // garbage gone, the figure a leak would move.
  const marks = [0.15, 0.5, 0.95].map((at) => setTimeout(() => process.kill(server.pid, "SIGUSR2"), 1000 + at * soakMs))
  const result = await runClient(server.port, "conc64", soakMs)
  marks.forEach(clearTimeout)
  await sleep(1100) // one more stats line, after the load
  await server.stop()
  const during = server.stats.filter((s) => s.connections === 64)
  if (during.length < 6) throw new Error(`only ${during.length} stats lines under load`)
  const head = during.slice(1, 4) // skip the first second: warm-up
  const tail = during.slice(-3)
  const avg = (xs: ReadonlyArray<Stats>, f: (s: Stats) => number) => xs.reduce((a, s) => a + f(s), 0) / xs.length
  const minutes = during.map((s) => s.t / 60_000)
  console.error("  t(s)   rss MB  heap MB  delay p50/p99/max ms  utilization")
  for (const s of during) {
    console.error(
      `  ${(s.t / 1000).toFixed(0).padStart(4)}  ${mb(s.rss).padStart(7)}  ${mb(s.heapUsed).padStart(7)}  `
        + `${s.delayP50}/${s.delayP99}/${s.delayMax}`.padStart(20) + `  ${s.utilization}`
    )
  }
  figure(
    "soak conc64 throughput",
    `${result.rps} req/s, p50 ${result.p50us} µs, p99 ${result.p99us} µs, ${result.errors} errors over ${
      result.seconds.toFixed(0)
    } s`
  )
  // RSS steps up once or twice while V8 sizes its young generation for the
  // allocation rate; a leak is a slope that persists, so the trend is taken
  // over the second half. Heap used between GCs is a sawtooth; the live heap
  // after a forced full GC is what a leak would move.
  const second = during.slice(Math.floor(during.length / 2))
  figure(
    "soak RSS first 3 s → last 3 s",
    `${mb(avg(head, (s) => s.rss))} → ${mb(avg(tail, (s) => s.rss))} MB; trend over the second half `
      + `${mb(slope(second.map((s) => s.t / 60_000), second.map((s) => s.rss)))} MB/min `
      + `(whole run ${mb(slope(minutes, during.map((s) => s.rss)))} MB/min)`
  )
  figure(
    "soak live heap after a full GC, at 15% / 50% / 95% of the run",
    `${server.collected.map((c) => mb(c.heapUsed)).join(" / ")} MB (heap used between GCs: `
      + `${mb(Math.min(...during.map((s) => s.heapUsed)))}–${mb(Math.max(...during.map((s) => s.heapUsed)))} MB)`
  )
  figure(
    "soak event-loop delay p50/p99 first 3 s → last 3 s",
    `${avg(head, (s) => s.delayP50).toFixed(2)}/${avg(head, (s) => s.delayP99).toFixed(2)} → `
      + `${avg(tail, (s) => s.delayP50).toFixed(2)}/${avg(tail, (s) => s.delayP99).toFixed(2)} ms `
      + `(max ${Math.max(...during.map((s) => s.delayMax))} ms; 1 ms sampling resolution; utilization ${
        avg(during, (s) => s.utilization).toFixed(2)
      })`
  )
}

const slowloris = async () => {
  console.error(`# slowloris: ${slowlorisConnections} connections, 1 byte per 100 ms, server timeout 300 ms`)
  const server = await startServer([`${root}bench/servers/quasizero.ts`], { TIMEOUT: "300" })
  await pingLatencies(server.port, 500) // warm up
  const base = await pingLatencies(server.port, 3000)
  const baseRps = await runClient(server.port, "conc64", 3000)
  const [cmd, args] = pinned(1, [`${root}test/reliability/slowloris.ts`])
  const attacker = ChildProcess.spawn(cmd, args, {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, PORT: String(server.port), CONNECTIONS: String(slowlorisConnections), DURATION: "12000" }
  })
  let out = ""
  attacker.stdout.on("data", (d) => (out += d))
  while (!out.includes("ready")) await sleep(50)
  await sleep(500)
  // What the attack alone costs the server (and the attacker, which shares
  // core 1 with the load client: the throughput figure below includes that).
  const cpu = [cpuOf(server.pid), cpuOf(attacker.pid!)]
  await sleep(2000)
  const attackCpu = [cpuOf(server.pid) - cpu[0]!, cpuOf(attacker.pid!) - cpu[1]!].map((us) => (us / 2e6) * 100)
  const attacked = await pingLatencies(server.port, 3000)
  const attackedRps = await runClient(server.port, "conc64", 3000)
  await new Promise((r) => attacker.once("exit", r))
  await server.stop()
  const report = JSON.parse(out.trim().split("\n").pop()!) as { opened: number; closedByServer: number }
  figure(
    `slowloris ×${slowlorisConnections}: sequential PING`,
    `p50 ${quantile(base, 0.5).toFixed(0)} → ${quantile(attacked, 0.5).toFixed(0)} µs (×${
      (quantile(attacked, 0.5) / quantile(base, 0.5)).toFixed(2)
    }), `
      + `p99 ${quantile(base, 0.99).toFixed(0)} → ${quantile(attacked, 0.99).toFixed(0)} µs (×${
        (quantile(attacked, 0.99) / quantile(base, 0.99)).toFixed(2)
      })`
  )
  figure(
    `slowloris ×${slowlorisConnections}: conc64 throughput`,
    `${baseRps.rps} → ${attackedRps.rps} req/s (×${
      (attackedRps.rps / baseRps.rps).toFixed(2)
    }), the attacker sharing the client's core; `
      + `the server cut ${report.closedByServer} trickling connections of ${report.opened} opened`
  )
  figure(
    `slowloris ×${slowlorisConnections}: CPU of the attack alone`,
    `server ${attackCpu[0]!.toFixed(0)}% of a core (accepting, timing out and closing ~${
      Math.round(slowlorisConnections / 0.3)
    } connections/s), attacker ${attackCpu[1]!.toFixed(0)}%`
  )
}

const main = async () => {
  console.error(
    `# quasizero soak: node ${process.version}, ${Os.cpus().length}x ${Os.cpus()[0]?.model ?? "?"}, `
      + `${hasTaskset ? "server on core 0, clients on core 1" : "NOT pinned"}, ulimit -n ${shellLimit("-Sn")}`
  )
  if (phases.includes("idle")) await idle()
  if (phases.includes("soak")) await soak()
  if (phases.includes("slowloris")) await slowloris()
  console.log(["| figure | value |", "|---|---|", ...table.map(([k, v]) => `| ${k} | ${v} |`)].join("\n"))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
