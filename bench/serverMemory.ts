// Memory per idle server connection: RSS (and heap) after a full GC, with
// CONNECTIONS (10,000) connections open that each had one PING answered,
// minus the same figure before they opened. Our bench server without and
// with `timeout` + `idleTimeout`, next to the raw node:net baseline.
//
//   ./node_modules/.bin/node --expose-gc bench/serverMemory.ts
//   CONNECTIONS=2000 SERVERS=ours,timeouts ./node_modules/.bin/node bench/serverMemory.ts
//
// The servers run under --expose-gc and answer SIGUSR2 with a `gc {...}` line
// (bench/servers/*.ts). `ulimit -n` must allow CONNECTIONS + 512 descriptors.
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import * as Readline from "node:readline"
import * as Wire from "../src/Wire.ts"

const here = new URL(".", import.meta.url).pathname
const connections = Number(process.env.CONNECTIONS ?? 10_000)
const servers: Record<string, { file: string; env: Record<string, string> }> = {
  baseline: { file: "baseline", env: {} },
  ours: { file: "quasizero", env: { STATS: "3600000" } },
  timeouts: { file: "quasizero", env: { STATS: "3600000", TIMEOUT: "30000", IDLE_TIMEOUT: "300000" } }
}
const selected = (process.env.SERVERS ?? "baseline,ours,timeouts").split(",")
const pingFrame = Wire.encodeRequest({ code: 1, metadata: new Map(), payload: new Uint8Array(0) })

interface Collected {
  readonly rss: number
  readonly heapUsed: number
  readonly external: number
}

const start = (name: string) => {
  const { env, file } = servers[name]!
  const child = ChildProcess.spawn(process.execPath, ["--expose-gc", `${here}servers/${file}.ts`], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env }
  })
  const waiters: Array<(c: Collected) => void> = []
  const port = new Promise<number>((resolve, reject) => {
    Readline.createInterface({ input: child.stdout }).on("line", (line: string) => {
      const listening = /listening on 127\.0\.0\.1:(\d+)/.exec(line)
      if (listening) resolve(Number(listening[1]))
      else if (line.startsWith("gc ")) waiters.shift()?.(JSON.parse(line.slice(3)) as Collected)
    })
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)))
  })
  const collect = () =>
    new Promise<Collected>((resolve) => {
      waiters.push(resolve)
      child.kill("SIGUSR2")
    })
  return { port, collect, stop: () => child.kill("SIGKILL") }
}

const pinged = (port: number) =>
  new Promise<Net.Socket>((resolve, reject) => {
    const socket = Net.connect({ port, host: "127.0.0.1", noDelay: true })
    socket.once("connect", () => socket.write(pingFrame))
    socket.once("data", () => resolve(socket))
    socket.once("error", reject)
  })

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const kib = (bytes: number) => (bytes / 1024).toFixed(2)

for (const name of selected) {
  const server = start(name)
  const port = await server.port
  // Warm up (JIT, pools) so the first figure is a steady idle server.
  for (let i = 0; i < 5; i++) {
    ;(await Promise.all(Array.from({ length: 100 }, () => pinged(port)))).forEach((s) => s.destroy())
  }
  await sleep(500)
  const before = await server.collect()
  const sockets: Array<Net.Socket> = []
  while (sockets.length < connections) {
    const n = Math.min(250, connections - sockets.length)
    sockets.push(...await Promise.all(Array.from({ length: n }, () => pinged(port))))
  }
  await sleep(1000)
  const held = await server.collect()
  const per = (key: keyof Collected) => kib((held[key] - before[key]) / connections)
  console.log(
    `${name.padEnd(9)} ${connections} idle connections: RSS ${per("rss")} KiB, heap ${per("heapUsed")} KiB, `
      + `external ${per("external")} KiB per connection (after GC)`
  )
  for (const s of sockets) s.destroy()
  server.stop()
}
