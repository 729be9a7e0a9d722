// Memory per pooled client connection: one process opens CONNECTIONS pooled
// connections (pool.initialSize = maxCap = CONNECTIONS) to the raw node:net
// server (bench/servers/baseline.ts, its own process), one call on each so
// every connection has carried a request, then reports RSS and heap after
// gc(), before and after, per connection. The raw net client (CONTENDER=raw:
// N bare net.connect sockets, one request each) is the reference.
//
//   node bench/clientMemory.ts                       our client, 2,000 connections
//   CONNECTIONS=8000 node bench/clientMemory.ts
//   CONTENDER=raw node bench/clientMemory.ts
//
// It re-runs itself with --expose-gc. The number is RSS (what the machine
// pays), so it includes V8's heap slack: compare contenders at the same N.
import * as Effect from "effect/Effect"
import * as Net from "node:net"
import * as V8 from "node:v8"
import * as Client from "../src/Client.ts"
import * as NodeClient from "../src/node/NodeClient.ts"
import * as Request from "../src/Request.ts"
import * as Wire from "../src/Wire.ts"
import { exposeGc, startBaselineServer } from "./lib/memory.ts"

const gc = exposeGc()

const connections = Number(process.env.CONNECTIONS ?? 2000)
const contender = process.env.CONTENDER ?? "ours"

const startServer = startBaselineServer

const settle = async () => {
  // Several full collections a while apart: V8 frees emptied pages in the background.
  for (let i = 0; i < 10; i++) {
    gc()
    await new Promise((r) => setTimeout(r, 100))
  }
  const usage = process.memoryUsage()
  if (process.env.VERBOSE) {
    const spaces = V8.getHeapSpaceStatistics().map((s) => `${s.space_name} ${(s.space_size / 1048576).toFixed(1)}`)
    console.error(
      `rss ${(usage.rss / 1048576).toFixed(1)} MiB, heap total ${(usage.heapTotal / 1048576).toFixed(1)} used ${
        (usage.heapUsed / 1048576).toFixed(1)
      }, external ${(usage.external / 1048576).toFixed(1)}; ${spaces.join(", ")}`
    )
  }
  return { rss: usage.rss, heap: usage.heapUsed }
}

const ping = Request.makeUnsafe(1)

const ours = (host: string, port: number, connections: number, measure: () => Promise<void>) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const client = yield* Client.make({ pool: { initialSize: connections, maxCap: connections } })
      // Every connection idle: one call on each, all at once, lands one per connection.
      yield* Effect.forEach(Array.from({ length: connections }), () => client.call(ping), {
        concurrency: "unbounded",
        discard: true
      })
      const stats = yield* client.stats
      if (stats.open !== connections) throw new Error(`only ${stats.open} connections open`)
      yield* Effect.promise(measure)
    }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialer({ host, port })))
  )

const raw = async (host: string, port: number, connections: number, measure: () => Promise<void>) => {
  const sockets = await Promise.all(
    Array.from({ length: connections }, () =>
      new Promise<Net.Socket>((resolve, reject) => {
        const socket = Net.connect({ host, port, noDelay: true })
        socket.once("error", reject)
        socket.once("data", () => resolve(socket))
        socket.once("connect", () => socket.write(Wire.encodeRequests([ping])))
      }))
  )
  await measure()
  for (const socket of sockets) socket.destroy()
}

const main = async () => {
  const server = await startServer()
  const run = contender === "raw" ? raw : ours
  // Warm the code paths first (a few connections), so loaded code is not billed to connections.
  await run(server.host, server.port, 4, async () => {})
  const before = await settle()
  let after = before
  await run(server.host, server.port, connections, async () => {
    after = await settle()
    if (process.env.HEAPSNAPSHOT) console.error(`heap snapshot: ${V8.writeHeapSnapshot(process.env.HEAPSNAPSHOT)}`)
  })
  // Every connection closed and collected: what RSS keeps now is the
  // allocator's residue (freed memory not handed back to the system), not
  // live connections.
  const closed = await settle()
  server.stop()
  const kib = (bytes: number) => (bytes / 1024 / connections).toFixed(2)
  console.log(
    `${contender}: ${connections} connections: RSS +${((after.rss - before.rss) / 1048576).toFixed(1)} MiB `
      + `= ${kib(after.rss - before.rss)} KiB per connection (JS heap ${kib(after.heap - before.heap)} KiB); `
      + `all closed: RSS still +${kib(closed.rss - before.rss)} KiB per connection (JS heap ${
        kib(closed.heap - before.heap)
      } KiB)`
  )
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
