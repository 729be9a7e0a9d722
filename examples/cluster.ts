/**
 * Beyond one server: three replicas (in-process servers on ephemeral ports,
 * each answering WHOAMI (1) with its name) and one client over all three
 * with key affinity, so every call for one user reaches the same replica
 * while the set is stable. Prints
 *
 *   3 replicas, one key-affinity client
 *   30 users x 3 calls: each user always reached the same replica
 *   every replica serves some users
 *
 *   node examples/cluster.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Schedule } from "effect"
import { Client, Handlers, Request, Response, Server } from "../src/index.ts"
import { NodeClient, NodeServer } from "../src/node/index.ts"

// One replica: WHOAMI replies with the replica's name.
const replica = (name: string) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      Server.layer().pipe(
        Layer.provide(Handlers.layer({ 1: () => Effect.succeed(name) })),
        Layer.provide(NodeServer.layer({ host: "127.0.0.1", port: 0 }))
      )
    )
    const port = yield* Effect.provide(Server.port, context)
    return `127.0.0.1:${port}`
  })

const program = Effect.gen(function*() {
  const endpoints = [yield* replica("a"), yield* replica("b"), yield* replica("c")]
  yield* Console.log(`${endpoints.length} replicas, one key-affinity client`)

  const client = yield* Client.make({
    endpoints,
    balancer: Client.keyAffinity({ metadata: "user" }),
    requestTimeout: "2 seconds",
    retry: Schedule.recurs(2)
  }).pipe(Effect.provide(NodeClient.layerDialers))

  const whoami = (user: string) => Effect.map(client.call(Request.makeUnsafe(1, { metadata: { user } })), Response.text)

  const owners = new Map<string, Set<string>>()
  for (let round = 0; round < 3; round++) {
    for (let u = 0; u < 30; u++) {
      const user = `user-${u}`
      const replica = yield* whoami(user)
      owners.set(user, (owners.get(user) ?? new Set()).add(replica))
    }
  }
  const stable = Array.from(owners.values()).every((replicas) => replicas.size === 1)
  yield* Console.log(`30 users x 3 calls: ${stable ? "each user always reached the same replica" : "KEYS MOVED"}`)
  const used = new Set(Array.from(owners.values()).flatMap((replicas) => Array.from(replicas)))
  yield* Console.log(used.size === 3 ? "every replica serves some users" : `only ${used.size} replicas used`)
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
