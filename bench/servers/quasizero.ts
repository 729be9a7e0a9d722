// Our server as users run it: Server.layer + the demo handlers on NodeServer.
// CONCURRENCY, SPANS, TIMEOUT and IDLE_TIMEOUT (ms) and SPIN (NodeServer's `spin`,
// e.g. 50us; bench/run.ts sets it for "ours + spin" only) come from the environment. STATS=<ms>
// (bench/soak.ts) adds a `stats {...}` line every <ms>: memory, open
// connections, event-loop delay and utilization since the previous line; and,
// run with --expose-gc, a `gc {...}` line of live memory after a full GC on
// each SIGUSR2.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as PerfHooks from "node:perf_hooks"
import * as Demo from "../../src/Demo.ts"
import * as NodeServer from "../../src/node/NodeServer.ts"
import type * as Options from "../../src/Options.ts"
import * as Server from "../../src/Server.ts"
import { reportCpuOnExit } from "../lib/stats.ts"

const ServerLive = Server.layer({
  concurrency: Number(process.env.CONCURRENCY ?? 1),
  spans: process.env.SPANS === "1",
  timeout: Number(process.env.TIMEOUT ?? 0),
  idleTimeout: Number(process.env.IDLE_TIMEOUT ?? 0)
}).pipe(
  Layer.provide(Demo.layer),
  Layer.provide(NodeServer.layer({
    host: "127.0.0.1",
    port: Number(process.env.PORT ?? 0),
    spin: process.env.SPIN as Options.DurationInput | undefined
  }))
)

reportCpuOnExit()

// SIGTERM is left to reportCpuOnExit: a bench server needs no graceful shutdown.
NodeRuntime.runMain(
  Effect.gen(function*() {
    const server = yield* Server.Server
    const { address } = server
    if (!NetAddress.isInetAddress(address)) throw new Error("expected TCP")
    yield* Console.log(`listening on 127.0.0.1:${address.port}`)
    const every = Number(process.env.STATS ?? 0)
    if (every > 0) reportStats(every, server.connections)
    return yield* Effect.never
  }).pipe(Effect.provide(ServerLive))
)

function reportStats(every: number, connections: () => number): void {
  const delay = PerfHooks.monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  let elu = PerfHooks.performance.eventLoopUtilization()
  const started = performance.now()
  setInterval(() => {
    const m = process.memoryUsage()
    const now = PerfHooks.performance.eventLoopUtilization()
    const ms = (ns: number) => Math.round(ns / 1e4) / 100
    const line = {
      t: Math.round(performance.now() - started),
      rss: m.rss,
      heapUsed: m.heapUsed,
      external: m.external,
      connections: connections(),
      delayP50: ms(delay.percentile(50)),
      delayP99: ms(delay.percentile(99)),
      delayMax: ms(delay.max),
      utilization: Math.round(PerfHooks.performance.eventLoopUtilization(now, elu).utilization * 1000) / 1000
    }
    elu = now
    delay.reset()
    process.stdout.write(`stats ${JSON.stringify(line)}\n`)
  }, every).unref()
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) return
  process.on("SIGUSR2", () => {
    gc()
    // A second GC a tick later: V8 frees ArrayBuffer memory on a sweeper thread.
    setTimeout(() => {
      gc()
      const m = process.memoryUsage()
      const line = {
        t: Math.round(performance.now() - started),
        heapUsed: m.heapUsed,
        external: m.external,
        rss: m.rss
      }
      process.stdout.write(`gc ${JSON.stringify(line)}\n`)
    }, 50)
  })
}
