/**
 * Typed commands: one definition per command, used by both the server and the
 * client, with a typed error that crosses the wire and comes back as the same
 * class. Handlers get their services (here a key-value Store) from layers.
 *
 *   npm run example:typed
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Context, Effect, Layer, Schema } from "effect"
import { Client, Command, Handlers, Server } from "../src/index.ts"
import { NodeClient, NodeServer } from "../src/node/index.ts"

// --- the protocol, shared by both sides ---------------------------------------

class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { key: Schema.String }) {
  override get message() {
    return `no such key: ${this.key}` // what a Go client sees as error_message
  }
}

const Entry = Schema.Struct({ key: Schema.String, value: Schema.String })

const Put = Command.make("Put", { code: 20, payload: Entry })
const Get = Command.make("Get", { code: 21, payload: Schema.String, success: Entry, error: NotFound })

// --- the server -----------------------------------------------------------------

class Store extends Context.Service<Store, Map<string, string>>()("example/Store") {}

const HandlersLive = Handlers.layer([
  Put.handle(({ key, value }) => Effect.map(Effect.service(Store), (store) => void store.set(key, value))),
  Get.handle((key) =>
    Effect.flatMap(Effect.service(Store), (store) => {
      const value = store.get(key)
      return value === undefined ? Effect.fail(new NotFound({ key })) : Effect.succeed({ key, value })
    })
  )
]).pipe(Layer.provide(Layer.succeed(Store)(new Map())))

const ServerLive = Server.layer().pipe(
  Layer.provide(HandlersLive),
  Layer.provide(NodeServer.layer({ host: "127.0.0.1", port: 0 }))
)

// --- the client -------------------------------------------------------------------

const program = Effect.gen(function*() {
  const port = yield* Server.port
  const client = yield* Client.make().pipe(Effect.provide(NodeClient.layerDialer({ host: "127.0.0.1", port })))

  yield* client.run(Put, { key: "language", value: "TypeScript" })
  const entry = yield* client.run(Get, "language")
  yield* Console.log(`Get language -> ${entry.value}`)

  const missing = yield* client.run(Get, "weather").pipe(
    Effect.catchTag("NotFound", (e) => Effect.succeed(`NotFound { key: ${JSON.stringify(e.key)} } (${e.message})`))
  )
  yield* Console.log(`Get weather -> ${typeof missing === "string" ? missing : missing.value}`)
}).pipe(Effect.scoped, Effect.provide(ServerLive))

NodeRuntime.runMain(program)
