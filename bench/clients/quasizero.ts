// Our client as users run it: Client.make on NodeClient, default options, the
// workload driver shared with `quasizero bench`. Prints one JSON Result line;
// with `--session`, one per window the runner asks for (bench/lib/session.ts).
// SPIN (the dialer's `spin`, e.g. 50us) comes from the environment; bench/run.ts
// sets it for "ours + spin" only.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Workload from "../../src/bin/workload.ts"
import * as Client from "../../src/Client.ts"
import * as NodeClient from "../../src/node/NodeClient.ts"
import type * as Options from "../../src/Options.ts"
import * as Session from "../lib/session.ts"
import { args, markClientStart, resultLine } from "../lib/stats.ts"

const opts = args(process.argv.slice(2))
const workload = Workload.workloads[opts.workload ?? "seq"]
if (!workload) throw new Error(`unknown workload ${opts.workload}`)
const address = opts.address ?? "127.0.0.1:7701"
const [host, port] = address.split(":") as [string, string]
const spin = process.env.SPIN as Options.DurationInput | undefined

const drive = (client: Client.Client["Service"]) =>
  opts.session !== undefined ? session(client) : Effect.gen(function*() {
    const result = yield* Workload.run(client, workload, {
      warmupMs: Number(opts.warmup ?? 1000),
      durationMs: Number(opts.duration ?? 3000)
    })
    console.log(resultLine(result))
  })

// Every window runs the same driver over the same client (its connections stay open in between).
const session = (client: Client.Client["Service"]) =>
  Effect.flatMap(Effect.context<never>(), (context) =>
    Effect.promise(() =>
      Session.serve(
        (warmupMs, durationMs) =>
          Effect.runPromiseWith(context)(Workload.run(client, workload, { warmupMs, durationMs })),
        () => {}
      )
    ))

// `--address a,b,c`: one multi-endpoint client over all of them.
NodeRuntime.runMain(
  Effect.sync(markClientStart).pipe(
    Effect.andThen(
      address.includes(",")
        ? Effect.flatMap(Client.make({ endpoints: address.split(",") }), drive).pipe(
          Effect.provide(NodeClient.layerDialers)
        )
        : Effect.flatMap(Client.make(), drive).pipe(
          Effect.provide(NodeClient.layerDialer({ host, port: Number(port), spin }))
        )
    ),
    Effect.scoped
  )
)
