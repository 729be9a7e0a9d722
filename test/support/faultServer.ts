// Our server in a process of its own, so a fault test can SIGKILL it (a real
// crash: the kernel, not our code, closes its sockets) or SIGTERM it (a real
// graceful shutdown, through NodeRuntime), and still know what it did.
//
//   QZ_PORT      port to bind on 127.0.0.1 (default 0: a free one)
//   QZ_OPTIONS   Server.Options as JSON (durations as numbers of ms)
//
// Serves the demo codes plus:
//   STALL (6)    never replies
//   DEFECT (7)   dies (a defect) with the probability in its payload, e.g. "0.01"
//   TRACK (8)    payload "ID" or "ID:MS": writes `seen ID` to stdout, waits MS
//                milliseconds, replies with ID. The line is written before
//                the reply, synchronously (stdout is a pipe: synchronous on
//                Linux), so the parent's log is a superset of the replies
//                sent, even after a SIGKILL.
//
// Prints `listening on 127.0.0.1:PORT` once serving, and `exit` once a
// graceful shutdown has finished.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as Demo from "../../src/Demo.ts"
import * as Handlers from "../../src/Handlers.ts"
import * as NodeServer from "../../src/node/NodeServer.ts"
import * as Request from "../../src/Request.ts"
import * as Server from "../../src/Server.ts"

export const STALL = 6
export const DEFECT = 7
export const TRACK = 8

const track: Handlers.Handler = (request) => {
  const text = Request.text(request)
  const at = text.indexOf(":")
  const id = at < 0 ? text : text.slice(0, at)
  process.stdout.write(`seen ${id}\n`)
  const ms = at < 0 ? 0 : Number(text.slice(at + 1))
  return ms > 0 ? Effect.as(Effect.sleep(ms), id) : Effect.succeed(id)
}

const table: Handlers.Table<unknown, never> = [
  ...Demo.table,
  [STALL, () => Effect.never],
  [DEFECT, (request) =>
    Math.random() < Number(Request.text(request))
      ? Effect.die(new Error("random defect"))
      : Effect.succeed("survived")],
  [TRACK, track]
]

// Run directly (not imported by a test for its constants).
if (process.argv[1] === new URL(import.meta.url).pathname) {
  const options = JSON.parse(process.env.QZ_OPTIONS ?? "{}") as Server.Options
  const ServerLive = Server.layer(options).pipe(
    Layer.provide(Handlers.layer(table)),
    Layer.provide(NodeServer.layer({ host: "127.0.0.1", port: Number(process.env.QZ_PORT ?? 0) }))
  )
  NodeRuntime.runMain(
    Effect.gen(function*() {
      const server = yield* Server.Server
      if (!NetAddress.isInetAddress(server.address)) throw new Error("expected TCP")
      process.stdout.write(`listening on 127.0.0.1:${server.address.port}\n`)
      return yield* Effect.never
    }).pipe(
      Effect.provide(ServerLive),
      Effect.ensuring(Effect.sync(() => process.stdout.write("exit\n")))
    ),
    { disableErrorReporting: true }
  )
}
