// Our server as users run it: Server.layer + the demo handlers on NodeServer.
// CONCURRENCY and SPANS come from the environment.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as Demo from "../../src/Demo.ts"
import * as Server from "../../src/Server.ts"
import * as NodeServer from "../../src/node/NodeServer.ts"
import { reportCpuOnExit } from "../lib/stats.ts"

const ServerLive = Server.layer({
  concurrency: Number(process.env.CONCURRENCY ?? 1),
  spans: process.env.SPANS === "1"
}).pipe(
  Layer.provide(Demo.layer),
  Layer.provide(NodeServer.layer({ host: "127.0.0.1", port: Number(process.env.PORT ?? 0) }))
)

reportCpuOnExit()

// SIGTERM is left to reportCpuOnExit: a bench server needs no graceful shutdown.
NodeRuntime.runMain(
  Effect.gen(function*() {
    const { address } = yield* Server.Server
    if (!NetAddress.isInetAddress(address)) throw new Error("expected TCP")
    yield* Console.log(`listening on 127.0.0.1:${address.port}`)
    return yield* Effect.never
  }).pipe(Effect.provide(ServerLive))
)
