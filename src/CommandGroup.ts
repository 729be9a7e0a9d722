/**
 * Groups of typed commands, in the manner of `effect/rpc`'s `RpcGroup`: one
 * value lists the commands of a service; the server side must handle every
 * one of them (`toLayer` fails to compile when a handler is missing), and the
 * client side is derived from it (`client.GetUser(input)`). Commands keep
 * their wire codes, so a group serves Go clients and raw handlers as usual.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Client from "./Client.ts"
import * as Command from "./Command.ts"
import * as Handlers from "./Handlers.ts"
import type * as Request from "./Request.ts"

/**
 * A group of commands.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandGroup<in out Commands extends Command.Any> {
  readonly commands: ReadonlyArray<Commands>
  /**
   * The server side as `[code, handler]` entries: one handler per command,
   * by name. Spread them into `Handlers.layer([...])` to mix with raw handlers.
   */
  readonly toHandlers: <const H extends HandlersFor<Commands>>(
    handlers: H
  ) => ReadonlyArray<readonly [number, Handlers.Handler<never, ServicesOf<H>>]>
  /**
   * The server side as the `Handlers` layer: every command must be handled.
   * Fails with `HandlersError` on two commands sharing a code or a name.
   */
  readonly toLayer: <const H extends HandlersFor<Commands>>(
    handlers: H
  ) => Layer.Layer<Handlers.Handlers, Handlers.HandlersError, ServicesOf<H>>
}

/**
 * The handler record a group needs: one function per command name, taking the
 * decoded input (and the raw request).
 *
 * @since 0.1.0
 * @category type-level
 */
export type HandlersFor<Commands extends Command.Any> = {
  readonly [C in Commands as C["name"]]: (
    input: Command.Input<C>,
    request: Request.Request
    // oxlint-disable-next-line no-explicit-any
  ) => Effect.Effect<Command.Success<C>, Command.Failure<C>, any>
}

/**
 * The services the handlers of a record require, as a union.
 *
 * @since 0.1.0
 * @category type-level
 */
export type ServicesOf<H> = {
  // oxlint-disable-next-line no-explicit-any
  [K in keyof H]: H[K] extends (...args: any) => Effect.Effect<infer _A, infer _E, infer R> ? R : never
}[keyof H]

/**
 * The client of a group: one method per command name. A command without input
 * is called without arguments.
 *
 * @since 0.1.0
 * @category models
 */
export type GroupClient<Commands extends Command.Any> = {
  readonly [C in Commands as C["name"]]: (
    ...args: Command.RunArgs<Command.Input<C>>
  ) => Effect.Effect<Command.Success<C>, Command.Failure<C> | Command.CommandError | Client.ClientError>
}

/**
 * Groups commands.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Command, CommandGroup } from "quasizero"
 *
 * class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { id: Schema.String }) {}
 * const GetUser = Command.make("GetUser", { code: 20, payload: Schema.String, success: Schema.String, error: NotFound })
 * const CountUsers = Command.make("CountUsers", { code: 21, success: Schema.Number })
 * const Users = CommandGroup.make(GetUser, CountUsers)
 *
 * // server: leaving one out is a compile error
 * const UsersLive = Users.toLayer({
 *   GetUser: (id) => id === "1" ? Effect.succeed("Ada") : Effect.fail(new NotFound({ id })),
 *   CountUsers: () => Effect.succeed(1)
 * })
 *
 * // client: Effect<{ GetUser(id), CountUsers() }, never, Client>
 * const program = Effect.gen(function*() {
 *   const users = yield* CommandGroup.client(Users)
 *   const name = yield* users.GetUser("1")
 *   const count = yield* users.CountUsers()
 *   return `${name} of ${count}`
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const Commands extends ReadonlyArray<Command.Any>>(
  ...commands: Commands
): CommandGroup<Commands[number]> => {
  const toHandlers = (handlers: Record<string, (input: unknown, request: Request.Request) => Effect.Effect<unknown>>) =>
    commands.map((command) =>
      Command.handle(command as Command.Command<unknown, unknown, unknown>, handlers[command.name]!)
    )
  const names = new Set<string>()
  const duplicate = commands.find((command) => names.size === names.add(command.name).size)
  return {
    commands,
    toHandlers: toHandlers as never,
    toLayer: ((handlers: never) =>
      duplicate === undefined
        ? Handlers.layer(toHandlers(handlers))
        : Layer.effect(
          Handlers.Handlers,
          Effect.fail(new Handlers.HandlersError({ reason: new Handlers.DuplicateName({ name: duplicate.name }) }))
        )) as never
  }
}

/**
 * The group's client over a built `Client`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Client, Command, CommandGroup } from "quasizero"
 * const Ping = Command.make("Ping", { code: 1, success: Schema.String })
 * declare const client: Client.Client["Service"]
 * const pong = CommandGroup.fromClient(CommandGroup.make(Ping), client).Ping()
 * ```
 *
 * @since 0.1.0
 * @category client
 */
export const fromClient = <Commands extends Command.Any>(
  group: CommandGroup<Commands>,
  client: Client.Client["Service"]
): GroupClient<Commands> => {
  const out: Record<string, (...args: ReadonlyArray<unknown>) => unknown> = {}
  for (const command of group.commands) {
    out[command.name] = (...args) =>
      client.run(command as Command.Command<unknown, unknown, unknown>, ...(args as Command.RunArgs<unknown>))
  }
  return out as unknown as GroupClient<Commands>
}

/**
 * The group's client, on the `Client` in context.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Command, CommandGroup } from "quasizero"
 * const Echo = Command.make("Echo", { code: 2, payload: Schema.String, success: Schema.String })
 * const Demo = CommandGroup.make(Echo)
 * const hello = Effect.flatMap(CommandGroup.client(Demo), (demo) => demo.Echo("hello"))
 * ```
 *
 * @since 0.1.0
 * @category client
 */
export const client = <Commands extends Command.Any>(
  group: CommandGroup<Commands>
): Effect.Effect<GroupClient<Commands>, never, Client.Client> =>
  Client.Client.use((client) => Effect.succeed(fromClient(group, client)))
