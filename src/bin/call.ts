/**
 * `quasizero call`: one request (or a pipeline of N copies) to any server
 * speaking the wire, one JSON line per response.
 *
 * @since 0.1.0
 * @internal
 */
import { Command, Flag } from "effect/cli"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Client from "../Client.ts"
import * as Message from "../Message.ts"
import * as NodeClient from "../node/NodeClient.ts"
import type * as Options from "../Options.ts"
import * as Request from "../Request.ts"
import type * as Response from "../Response.ts"
import * as Parse from "./parse.ts"

const strict = new TextDecoder("utf-8", { fatal: true })

/** The JSON line for a response: payload as text, or `{ base64 }` when it is not UTF-8. @since 0.1.0 */
export const toJson = (response: Response.Response): string => {
  let payload: string | { readonly base64: string }
  try {
    payload = strict.decode(response.payload)
  } catch {
    payload = { base64: Buffer.from(response.payload).toString("base64") }
  }
  return JSON.stringify({
    error_message: response.errorMessage,
    metadata: Message.metadataToRecord(response.metadata),
    payload
  })
}

const parseAddress = (s: string) => {
  const address = Parse.address(s)
  if (address === undefined) throw new Error(`expected HOST:PORT, got ${s}`)
  return address
}

// Falls back to QUASIZERO_ADDRESS, the variable NodeClient.layerConfig reads.
const addressFlag = Flag.String("address").pipe(
  Flag.withDescription("server address HOST:PORT (env QUASIZERO_ADDRESS; default 127.0.0.1:7701)"),
  Flag.mapTryCatch(parseAddress, (e) => `--address: ${(e as Error).message}`),
  Flag.withFallbackConfig(
    Config.String("QUASIZERO_ADDRESS").pipe(
      Config.mapEffect((s) =>
        Effect.try({
          try: () => parseAddress(s),
          catch: (e) =>
            new Config.ConfigError(
              new ConfigProvider.SourceError({ message: `QUASIZERO_ADDRESS: ${(e as Error).message}` })
            )
        })
      )
    )
  ),
  Flag.withDefault({ host: "127.0.0.1", port: 7701 })
)

/**
 * A command failed and already said why on stderr; the runner only sets the
 * exit code.
 *
 * @since 0.1.0
 */
export class CommandFailed extends Error {
  readonly _tag = "CommandFailed"
}

/** @since 0.1.0 */
export { addressFlag }

/**
 * Runs a command's client work against `address`: one line on stderr instead
 * of a stack trace when it fails, and `CommandFailed` for the exit code.
 *
 * @since 0.1.0
 */
export const withClient = (
  name: string,
  address: { readonly host: string; readonly port: number; readonly spin?: Options.DurationInput | undefined }
) =>
<A, E extends { readonly message: string }>(
  effect: Effect.Effect<A, E, Scope.Scope | Client.Dialer>
): Effect.Effect<A, CommandFailed> =>
  effect.pipe(
    Effect.scoped,
    Effect.provide(NodeClient.layerDialer(address)),
    Effect.tapError((e) => Console.error(`quasizero ${name}: ${e.message}`)),
    Effect.catchCause(() => Effect.fail(new CommandFailed()))
  )

/** @since 0.1.0 */
export const call = Command.make("call", {
  address: addressFlag,
  code: Flag.Int("code").pipe(Flag.withDescription("command code (int32)")),
  payload: Flag.String("payload").pipe(Flag.withDescription("payload as UTF-8 text"), Flag.withDefault("")),
  meta: Flag.String("meta").pipe(Flag.withDescription("metadata pair k=v (repeatable)"), Flag.atLeast(0)),
  pipeline: Flag.Int("pipeline").pipe(Flag.withDescription("send N copies in one write"), Flag.withDefault(1))
}, (flags) =>
  Effect.gen(function*() {
    const metadata = new Map<string, string>()
    for (const pair of flags.meta) {
      const at = pair.indexOf("=")
      if (at < 0) return yield* Effect.fail(new Error(`--meta: expected k=v, got ${pair}`))
      metadata.set(pair.slice(0, at), pair.slice(at + 1))
    }
    if (flags.pipeline < 1) return yield* Effect.fail(new Error(`--pipeline: expected N >= 1, got ${flags.pipeline}`))
    const request = yield* Effect.try({
      try: () => Request.makeUnsafe(flags.code, { payload: flags.payload, metadata }),
      catch: (e) => e as Error
    })
    const client = yield* Client.make()
    const replies = flags.pipeline === 1
      ? [yield* client.call(request)]
      : yield* client.pipeline(Array.from({ length: flags.pipeline }, () => request))
    for (const reply of replies) yield* Console.log(toJson(reply))
  }).pipe(withClient("call", flags.address))).pipe(
    Command.withDescription("Send a request and print each response as a JSON line")
  )
