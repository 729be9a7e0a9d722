/**
 * Payload codecs of typed commands: JSON through `Schema` (the default), raw
 * bytes (`Schema.Uint8Array`, no copy), none, or a protobufjs message type.
 * Re-exported by `Command`.
 *
 * @since 0.1.0
 */
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Message from "./Message.ts"

/**
 * How a value becomes payload bytes and back. Failures are issue texts.
 *
 * @since 0.1.0
 * @category models
 */
export interface Codec<A> {
  readonly encode: (value: A) => Result.Result<Uint8Array, string>
  readonly decode: (bytes: Uint8Array) => Result.Result<A, string>
}

/** @internal */
export const utf8 = new TextEncoder()
const utf8Decoder = new TextDecoder("utf-8", { fatal: true })
/** @internal */
export const textDecoder = new TextDecoder()

const exitToResult = <A>(exit: Exit.Exit<A, Schema.SchemaError>): Result.Result<A, string> =>
  Exit.isSuccess(exit)
    ? Result.succeed(exit.value)
    : Result.fail(Exit.findErrorOption(exit).pipe((e) => (e._tag === "Some" ? e.value.message : "invalid value")))

/**
 * JSON through a Schema (its canonical JSON codec).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Command } from "quasizero"
 * const point = Command.json(Schema.Struct({ x: Schema.Number, y: Schema.Number }))
 * ```
 *
 * @since 0.1.0
 * @category codecs
 */
export const json = <S extends Schema.Codec<any, any, never, never>>(schema: S): Codec<S["Type"]> => {
  const codec = Schema.toCodecJson(schema)
  const encode = Schema.encodeUnknownExit(codec)
  const decode = Schema.decodeUnknownExit(codec)
  return {
    encode: (value) => Result.map(exitToResult(encode(value)), (j) => utf8.encode(JSON.stringify(j))),
    decode: (bytes) => {
      let parsed: unknown
      try {
        parsed = JSON.parse(bytes.length === 0 ? "null" : utf8Decoder.decode(bytes))
      } catch (e) {
        return Result.fail(`not JSON: ${(e as Error).message}`)
      }
      return exitToResult(decode(parsed))
    }
  }
}

/**
 * Raw bytes, passed through without copying.
 *
 * @since 0.1.0
 * @category codecs
 */
export const bytes: Codec<Uint8Array> = {
  encode: (value) => (value instanceof Uint8Array ? Result.succeed(value) : Result.fail("expected a Uint8Array")),
  decode: Result.succeed
}

/**
 * No payload at all (an empty body on the wire).
 *
 * @since 0.1.0
 * @category codecs
 */
export const none: Codec<void> = {
  encode: () => Result.succeed(Message.emptyPayload),
  decode: () => Result.succeed(undefined)
}

/**
 * The shape of a protobufjs message type (reflection `Type` or generated
 * static class): what `Command.protobuf` needs.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProtobufType<A> {
  readonly encode: (message: A) => { finish(): Uint8Array }
  readonly decode: (bytes: Uint8Array) => A
  readonly verify?: ((message: Record<string, unknown>) => string | null) | undefined
}

/**
 * A protobufjs message type as the payload codec, for users who already have
 * `.proto` files.
 *
 * @example
 * ```ts
 * import protobuf from "protobufjs"
 * import { Command } from "quasizero"
 * const root = protobuf.parse(`syntax = "proto3"; message Point { int32 x = 1; int32 y = 2; }`).root
 * const point = Command.protobuf<{ x: number; y: number }>(root.lookupType("Point") as never)
 * ```
 *
 * @since 0.1.0
 * @category codecs
 */
export const protobuf = <A>(type: ProtobufType<A>): Codec<A> => ({
  encode: (value) => {
    const issue = type.verify?.(value as Record<string, unknown>)
    if (issue) return Result.fail(issue)
    try {
      return Result.succeed(type.encode(value).finish())
    } catch (e) {
      return Result.fail(String((e as Error).message ?? e))
    }
  },
  decode: (bytes) => {
    try {
      return Result.succeed(type.decode(bytes))
    } catch (e) {
      return Result.fail(String((e as Error).message ?? e))
    }
  }
})

/**
 * A payload codec, or a `Schema` (JSON; `Schema.Uint8Array` is raw bytes).
 *
 * @since 0.1.0
 * @category models
 */
export type CodecInput<A> = Codec<A> | Schema.Codec<A, any, never, never>

const isCodec = (u: unknown): u is Codec<unknown> =>
  typeof u === "object" && u !== null && !Schema.isSchema(u) && "encode" in u && "decode" in u

/** @internal */
export const toCodec = <A>(input: CodecInput<A>): Codec<A> => {
  if (isCodec(input)) return input as Codec<A>
  if ((input as unknown) === Schema.Uint8Array) return bytes as unknown as Codec<A>
  return json(input as Schema.Codec<A, any, never, never>)
}
