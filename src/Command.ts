/**
 * Typed commands: one definition — code, payload, success and error — shared
 * by the server (`Command.handle`) and the client (`Client.run`). Payloads
 * are JSON through `Schema` by default, raw bytes for `Schema.Uint8Array`
 * (no copy), or any protobufjs message type (`Command.protobuf`).
 *
 * A typed failure travels as `error_message` (its `message`, so Go clients
 * read it as usual) plus the reserved metadata entry `quasizero-error`
 * carrying the error encoded with the command's error schema, from which our
 * client rebuilds the very same typed error.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { type Codec, type CodecInput, json, none, textDecoder, toCodec, utf8 } from "./CommandCodec.ts"
import * as Handlers from "./Handlers.ts"
import * as Message from "./Message.ts"
import * as Request from "./Request.ts"
import * as Response from "./Response.ts"

/**
 * The metadata key carrying a typed error, JSON-encoded with the command's
 * error schema.
 *
 * @since 0.1.0
 * @category constants
 */
export const errorMetadataKey = "quasizero-error"

export { bytes, type Codec, type CodecInput, json, none, protobuf, type ProtobufType } from "./CommandCodec.ts"

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/** @since 0.1.0 @category errors */
export class InvalidPayload
  extends Data.TaggedError("InvalidPayload")<{ readonly command: string; readonly issue: string }>
{
  override get message(): string {
    return `${this.command}: invalid payload: ${this.issue}`
  }
}

/** @since 0.1.0 @category errors */
export class InvalidSuccess
  extends Data.TaggedError("InvalidSuccess")<{ readonly command: string; readonly issue: string }>
{
  override get message(): string {
    return `${this.command}: invalid success payload: ${this.issue}`
  }
}

/** @since 0.1.0 @category errors */
export class RemoteFailure extends Data.TaggedError("RemoteFailure")<{
  readonly command: string
  readonly response: Response.Response
}> {
  override get message(): string {
    return `${this.command}: ${this.response.errorMessage}`
  }
}

/**
 * Why a typed command failed other than with its own typed error.
 *
 * @since 0.1.0
 * @category errors
 */
export type CommandErrorReason = InvalidPayload | InvalidSuccess | RemoteFailure

/**
 * The command module's error: the input or the reply did not match the
 * command's schemas (`InvalidPayload`, `InvalidSuccess`), or the server
 * answered with an error that is not this command's typed error
 * (`RemoteFailure`, e.g. `unknown command code N` or `internal error`).
 *
 * @since 0.1.0
 * @category errors
 */
export class CommandError extends Data.TaggedError("CommandError")<{ readonly reason: CommandErrorReason }> {
  override get message(): string {
    return this.reason.message
  }
}

// -----------------------------------------------------------------------------
// commands
// -----------------------------------------------------------------------------

/**
 * A typed command.
 *
 * @since 0.1.0
 * @category models
 */
export interface Command<in out I, in out A, in out E, out Name extends string = string> {
  readonly name: Name
  readonly code: number
  readonly payload: Codec<I>
  readonly success: Codec<A>
  /** The typed error as JSON (absent: failures travel as their message only). */
  readonly error: Codec<E> | undefined
  /** `Command.handle(this, handler)`: a `[code, handler]` entry for `Handlers`. */
  readonly handle: <R>(
    handler: (input: I, request: Request.Request) => Effect.Effect<A, E, R>
  ) => readonly [number, Handlers.Handler<never, R>]
}

/**
 * Any command: what groups and helpers accept.
 *
 * @since 0.1.0
 * @category models
 */
// oxlint-disable-next-line no-explicit-any
export type Any = Command<any, any, any, string> | Command<any, any, never, string>

/**
 * The input type of a command.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Input<C> = C extends Command<infer I, infer _A, infer _E, infer _N> ? I : never

/**
 * The success type of a command.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Success<C> = C extends Command<infer _I, infer A, infer _E, infer _N> ? A : never

/**
 * The typed error of a command.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Failure<C> = C extends Command<infer _I, infer _A, infer E, infer _N> ? E : never

/**
 * The arguments after the command when running it: the input (optional when
 * the command takes none) and optional metadata.
 *
 * @example
 * ```ts
 * import type { Command } from "quasizero"
 * type NoInput = Command.RunArgs<void> // [input?: void, metadata?: ...]
 * type WithInput = Command.RunArgs<string> // [input: string, metadata?: ...]
 * ```
 *
 * @since 0.1.0
 * @category type-level
 */
export type RunArgs<I> = [I] extends [void] ? [input?: I, metadata?: Message.MetadataInput | undefined]
  : [input: I, metadata?: Message.MetadataInput | undefined]

/**
 * Defines a command. `payload` and `success` take a Schema (JSON; raw bytes for
 * `Schema.Uint8Array`) or a `Codec` (`Command.protobuf(Type)`, `Command.none`);
 * `error` a Schema of the typed error (e.g. a `Schema.TaggedError` class).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Command } from "quasizero"
 * class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { key: Schema.String }) {}
 * const Get = Command.make("Get", { code: 10, payload: Schema.String, success: Schema.String, error: NotFound })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const Name extends string, I = void, A = void, E = never>(
  name: Name,
  options: {
    readonly code: number
    readonly payload?: CodecInput<I> | undefined
    readonly success?: CodecInput<A> | undefined
    readonly error?: Schema.Codec<E, any, never, never> | undefined
  }
): Command<I, A, E, Name> => {
  const self: Command<I, A, E, Name> = {
    name,
    code: Message.checkCode(options.code),
    payload: options.payload === undefined ? (none as unknown as Codec<I>) : toCodec(options.payload),
    success: options.success === undefined ? (none as unknown as Codec<A>) : toCodec(options.success),
    error: options.error === undefined ? undefined : json(options.error),
    handle: (handler) => handle(self, handler)
  }
  return self
}

/**
 * The server side: a `[code, handler]` entry for `Handlers.make` /
 * `Handlers.layer`, mixing freely with raw handlers.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Command, Handlers } from "quasizero"
 * const Echo = Command.make("Echo", { code: 2, payload: Schema.String, success: Schema.String })
 * const HandlersLive = Handlers.layer([
 *   Echo.handle((text) => Effect.succeed(text)), // or Command.handle(Echo, ...)
 *   [1, () => Effect.succeed("PONG")]             // raw handlers mix freely
 * ])
 * ```
 *
 * @since 0.1.0
 * @category handlers
 */
export const handle = <I, A, E, R>(
  self: Command<I, A, E>,
  handler: (input: I, request: Request.Request) => Effect.Effect<A, E, R>
): readonly [number, Handlers.Handler<never, R>] => {
  const fail = (error: E): Response.Response => {
    const message = Handlers.failureMessage(error)
    const encoded = self.error?.encode(error)
    return encoded !== undefined && Result.isSuccess(encoded)
      ? Response.makeUnchecked(
        message,
        new Map([[errorMetadataKey, textDecoder.decode(encoded.success)]]),
        Message.emptyPayload
      )
      : Response.error(message)
  }
  const succeed = (value: A): Response.Response => {
    const encoded = self.success.encode(value)
    if (Result.isSuccess(encoded)) return Response.ok(encoded.success)
    // The handler returned something its own schema rejects: a server bug, told plainly.
    return Response.error(new InvalidSuccess({ command: self.name, issue: encoded.failure }).message)
  }
  return [self.code, (request) => {
    const input = self.payload.decode(request.payload)
    if (Result.isFailure(input)) {
      return Effect.succeed(Response.error(new InvalidPayload({ command: self.name, issue: input.failure }).message))
    }
    return Effect.match(handler(input.success, request), { onFailure: fail, onSuccess: succeed })
  }]
}

/**
 * The client side, step one: the request for an input. Fails with
 * `InvalidPayload` when the input does not encode.
 *
 * @since 0.1.0
 * @category client
 */
export const request = <I, A, E>(
  self: Command<I, A, E>,
  input: I,
  metadata?: Message.MetadataInput
): Effect.Effect<Request.Request, CommandError> => {
  const encoded = self.payload.encode(input)
  return Result.isSuccess(encoded)
    ? Effect.succeed(Request.makeUnchecked(self.code, Message.toMetadata(metadata), encoded.success))
    : Effect.fail(new CommandError({ reason: new InvalidPayload({ command: self.name, issue: encoded.failure }) }))
}

/**
 * The client side, step two: the typed result of a reply — the decoded
 * success, the command's own typed error, or a `CommandError`.
 *
 * @since 0.1.0
 * @category client
 */
export const decodeResponse = <I, A, E>(
  self: Command<I, A, E>,
  response: Response.Response
): Effect.Effect<A, E | CommandError> => {
  if (response.errorMessage !== "") {
    const encoded = response.metadata.get(errorMetadataKey)
    if (self.error !== undefined && encoded !== undefined) {
      const decoded = self.error.decode(utf8.encode(encoded))
      if (Result.isSuccess(decoded)) return Effect.fail(decoded.success)
    }
    return Effect.fail(new CommandError({ reason: new RemoteFailure({ command: self.name, response }) }))
  }
  const decoded = self.success.decode(response.payload)
  return Result.isSuccess(decoded)
    ? Effect.succeed(decoded.success)
    : Effect.fail(new CommandError({ reason: new InvalidSuccess({ command: self.name, issue: decoded.failure }) }))
}
