import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Client from "../src/Client.ts"
import * as Command from "../src/Command.ts"
import * as CommandGroup from "../src/CommandGroup.ts"
import * as Handlers from "../src/Handlers.ts"
import * as NodeClient from "../src/node/NodeClient.ts"
import * as NodeServer from "../src/node/NodeServer.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as Server from "../src/Server.ts"

class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { id: Schema.String }) {}
class Users extends Context.Service<Users, { readonly names: ReadonlyMap<string, string> }>()("test/Users") {}
class Audit extends Context.Service<Audit, { readonly log: (line: string) => void }>()("test/Audit") {}

const GetUser = Command.make("GetUser", { code: 20, payload: Schema.String, success: Schema.String, error: NotFound })
const CountUsers = Command.make("CountUsers", { code: 21, success: Schema.Number })
const Forget = Command.make("Forget", { code: 22, payload: Schema.String })
const UserCommands = CommandGroup.make(GetUser, CountUsers, Forget)

const handlers = {
  GetUser: (id: string) =>
    Effect.flatMap(Effect.service(Users), (users) => {
      const name = users.names.get(id)
      return name === undefined ? Effect.fail(new NotFound({ id })) : Effect.succeed(name)
    }),
  CountUsers: () => Effect.map(Effect.service(Users), (users) => users.names.size),
  Forget: (id: string) => Effect.map(Effect.service(Audit), (audit) => audit.log(`forget ${id}`))
}

describe("CommandGroup", () => {
  it("types: the server must handle every command; requirements are the union; the client is derived", () => {
    const layer = UserCommands.toLayer(handlers)
    expectTypeOf(layer).toEqualTypeOf<Layer.Layer<Handlers.Handlers, Handlers.HandlersError, Users | Audit>>()
    // @ts-expect-error: CountUsers and Forget are not handled
    UserCommands.toLayer({ GetUser: handlers.GetUser })
    // @ts-expect-error: a handler must succeed with the command's success type
    UserCommands.toLayer({ ...handlers, CountUsers: () => Effect.succeed("many") })

    const client = CommandGroup.client(UserCommands)
    type UsersClient = Effect.Success<typeof client>
    expectTypeOf<Parameters<UsersClient["GetUser"]>>().toEqualTypeOf<
      [input: string, metadata?: Parameters<UsersClient["GetUser"]>[1]]
    >()
    expectTypeOf<ReturnType<UsersClient["GetUser"]>>().toEqualTypeOf<
      Effect.Effect<string, NotFound | Command.CommandError | Client.ClientError>
    >()
    expectTypeOf<ReturnType<UsersClient["CountUsers"]>>().toEqualTypeOf<
      Effect.Effect<number, Command.CommandError | Client.ClientError>
    >()

    // A command without input runs without a dummy argument; one with input needs it.
    expectTypeOf(Client.run(CountUsers)).toEqualTypeOf<
      Effect.Effect<number, Command.CommandError | Client.ClientError, Client.Client>
    >()
    // @ts-expect-error: GetUser takes an input
    Client.run(GetUser)
  })

  it.live("round trip: handlers by name, a typed client, typed errors, raw handlers mixed in", () =>
    Effect.gen(function*() {
      const forgotten: Array<string> = []
      const table = Handlers.layer([...UserCommands.toHandlers(handlers), [1, () => Effect.succeed("PONG")]])
      const context = yield* Layer.build(
        Server.layer().pipe(
          Layer.provide(table),
          Layer.provide(Layer.succeed(Users)({ names: new Map([["1", "Ada"], ["2", "Grace"]]) })),
          Layer.provide(Layer.succeed(Audit)({ log: (line) => void forgotten.push(line) })),
          Layer.provideMerge(NodeServer.layer({ host: "127.0.0.1", port: 0 }))
        )
      )
      const port = Server.portOf(Context.get(context, Server.Server).address)!
      const result = yield* Effect.gen(function*() {
        const users = yield* CommandGroup.client(UserCommands)
        const name = yield* users.GetUser("1")
        const count = yield* users.CountUsers()
        yield* users.Forget("2")
        const missing = yield* Effect.flip(users.GetUser("9"))
        const pong = yield* Client.call(Request.makeUnsafe(1))
        const viaRun = yield* Client.run(CountUsers)
        return { name, count, missing, pong: Response.text(pong), viaRun }
      }).pipe(Effect.provide(NodeClient.layer({ host: "127.0.0.1", port })))
      expect(result.name).toBe("Ada")
      expect(result.count).toBe(2)
      expect(result.viaRun).toBe(2)
      expect(result.missing).toBeInstanceOf(NotFound)
      expect(result.pong).toBe("PONG")
      expect(forgotten).toEqual(["forget 2"])
    }))

  it.effect("a group with two commands on one code fails the layer with a typed error", () =>
    Effect.gen(function*() {
      const Clash = Command.make("Clash", { code: 20 })
      const group = CommandGroup.make(GetUser, Clash)
      const error = yield* Effect.flip(
        Layer.build(group.toLayer({ GetUser: () => Effect.succeed("x"), Clash: () => Effect.void }))
      )
      expect(error.reason._tag).toBe("DuplicateCode")
    }))

  it.effect("two commands with one name fail the layer with a typed error", () =>
    Effect.gen(function*() {
      const Other = Command.make("GetUser", { code: 29, payload: Schema.String, success: Schema.String })
      const group = CommandGroup.make(GetUser, Other)
      const error = yield* Effect.flip(Layer.build(group.toLayer({ GetUser: (id) => Effect.succeed(id) })))
      expect(error.reason._tag).toBe("DuplicateName")
      expect(error.message).toBe('Handlers: two commands named "GetUser"')
    }))
})
