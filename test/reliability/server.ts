// A quasizero server in a process of its own, so the suite can measure the
// server's memory apart from the clients that attack it, and see it crash if
// it ever does. Run with --expose-gc.
//
//   QZ_OPTIONS   Server.Options as JSON (durations as numbers of ms)
//   QZ_SLEEP=0   leave the demo SLEEP out (fuzzed bodies could ask for hours)
//   QZ_COUNT=1   print `{"completed":n}` (handlers that finished) at exit
//
// Prints `listening on 127.0.0.1:PORT`; for each `stats` line on stdin, runs
// a full GC and prints one JSON line of memory figures and open connections.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as Fs from "node:fs"
import * as Demo from "../../src/Demo.ts"
import * as Handlers from "../../src/Handlers.ts"
import * as NodeServer from "../../src/node/NodeServer.ts"
import * as Server from "../../src/Server.ts"

const options = JSON.parse(process.env.QZ_OPTIONS ?? "{}") as Server.Options
const demo = process.env.QZ_SLEEP === "0" ? Demo.table.filter(([code]) => code !== Demo.SLEEP) : Demo.table
// QZ_COUNT=1: count the handlers that finished, printed as `{"completed":n}` when the process exits.
let completed = 0
const table = process.env.QZ_COUNT === "1"
  ? demo.map(([code, handler]): (typeof demo)[number] => [
    code,
    (req) =>
      Effect.tap(
        handler(req),
        Effect.sync(() => void completed++)
      )
  ])
  : demo
if (process.env.QZ_COUNT === "1") {
  process.on("exit", () => Fs.writeSync(1, JSON.stringify({ completed }) + "\n"))
}
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})

const ServerLive = Server.layer(options).pipe(
  Layer.provide(Handlers.layer(table)),
  Layer.provide(NodeServer.layer({ host: "127.0.0.1", port: 0 }))
)

NodeRuntime.runMain(
  Effect.gen(function*() {
    const server = yield* Server.Server
    if (!NetAddress.isInetAddress(server.address)) throw new Error("expected TCP")
    process.stdin.setEncoding("utf8")
    const report = () => {
      // Two full GCs a tick apart: V8 frees ArrayBuffer memory on a sweeper
      // thread, so right after one GC dead buffers may still be counted.
      gc()
      setTimeout(() => {
        gc()
        const m = process.memoryUsage()
        process.stdout.write(
          JSON.stringify({
            rss: m.rss,
            heapUsed: m.heapUsed,
            arrayBuffers: m.arrayBuffers,
            external: m.external,
            connections: server.connections(),
            buffered: server.bufferedBytes()
          }) + "\n"
        )
      }, 20)
    }
    process.stdin.on("data", (data: string) => {
      for (const line of data.split("\n")) if (line.trim() === "stats") report()
    })
    process.stdout.write(`listening on 127.0.0.1:${server.address.port}\n`)
    return yield* Effect.never
  }).pipe(Effect.provide(ServerLive))
)
