// JS heap allocated per dial (garbage included): one process opens DIALS
// pooled connections to the raw node:net server (bench/servers/baseline.ts)
// and reports the heapUsed growth across the dials with no collection in
// between (the young generation is made large enough, and a collection
// during the run is reported as an invalid measurement). CONTENDER=raw: bare
// net.connect sockets, for reference.
//
//   node bench/clientDialAlloc.ts
//   DIALS=2000 CONTENDER=raw node bench/clientDialAlloc.ts
//
// It re-runs itself with --expose-gc and a 512 MiB semi-space: a measuring
// tool, not what a user's process pays (bench/clientMemory.ts is that).
import * as Effect from "effect/Effect"
import * as Net from "node:net"
import { PerformanceObserver } from "node:perf_hooks"
import * as Client from "../src/Client.ts"
import * as NodeClient from "../src/node/NodeClient.ts"
import { exposeGc, startBaselineServer } from "./lib/memory.ts"

const gc = exposeGc(["--min-semi-space-size=512", "--max-semi-space-size=512"])

const dials = Number(process.env.DIALS ?? 1000)
const contender = process.env.CONTENDER ?? "ours"

const startServer = startBaselineServer

// Opens `n` connections, calls `measure` while they are open, then closes them.
const ours = (host: string, port: number, n: number, measure: () => void) =>
  Effect.runPromise(
    Effect.gen(function*() {
      yield* Client.make({ pool: { initialSize: n, maxCap: n } })
      measure()
    }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialer({ host, port })))
  )

const raw = async (host: string, port: number, n: number, measure: () => void) => {
  const sockets = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<Net.Socket>((resolve, reject) => {
        const socket = Net.connect({ host, port, noDelay: true })
        socket.once("error", reject)
        socket.once("connect", () => resolve(socket))
      }))
  )
  measure()
  for (const socket of sockets) socket.destroy()
}

const main = async () => {
  const server = await startServer()
  const run = contender === "raw" ? raw : ours
  let collections = 0
  const observer = new PerformanceObserver((list) => {
    collections += list.getEntries().length
  })
  // Warm the code paths first.
  for (let i = 0; i < 3; i++) await run(server.host, server.port, 64, () => {})
  gc()
  gc()
  observer.observe({ entryTypes: ["gc"] })
  const before = process.memoryUsage().heapUsed
  let after = before
  await run(server.host, server.port, dials, () => {
    after = process.memoryUsage().heapUsed
  })
  // Entries are delivered asynchronously.
  await new Promise((r) => setTimeout(r, 50))
  observer.disconnect()
  server.stop()
  console.log(
    `${contender}: ${dials} dials: ${((after - before) / 1024 / dials).toFixed(2)} KiB allocated per dial`
      + (collections > 0 ? ` (INVALID: ${collections} collections during the run)` : "")
  )
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
