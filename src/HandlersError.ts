/**
 * The errors of the handler table, and how a handler's failure becomes text:
 * a table that cannot be served fails `Handlers.make` / `Handlers.layer` with
 * `HandlersError`; a handler that succeeds with something that is not a reply
 * is a defect caused by `InvalidResult`. Re-exported by `Handlers`.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * How a typed failure without `mapError` becomes the reply's `error_message`,
 * never empty (an empty `error_message` would read as a success): a non-empty
 * string as it is; else a non-empty string `message`; else a string `_tag`;
 * else the value as JSON (`{ code: 42 }` → `{"code":42}`); else `String(error)`;
 * else `"handler failed"`.
 *
 * @example
 * ```ts
 * import { Handlers } from "quasizero"
 * Handlers.failureMessage(new Error("boom")) // "boom"
 * Handlers.failureMessage({ _tag: "NotFound" }) // "NotFound"
 * Handlers.failureMessage({ code: 42 }) // '{"code":42}'
 * ```
 *
 * @since 0.1.0
 * @category conversions
 */
export const failureMessage = (error: unknown): string => {
  if (typeof error === "string" && error.length > 0) return error
  if (typeof error === "object" && error !== null) {
    const { message, _tag } = error as { readonly message?: unknown; readonly _tag?: unknown }
    if (typeof message === "string" && message.length > 0) return message
    if (typeof _tag === "string" && _tag.length > 0) return _tag
  }
  let json: string | undefined
  try {
    json = JSON.stringify(error)
  } catch {
    json = undefined
  }
  if (json !== undefined && json !== "{}" && json !== '""') return json
  const text = String(error)
  return text.length > 0 && text !== "[object Object]" ? text : "handler failed"
}

/** @since 0.1.0 @category errors */
export class DuplicateCode extends Data.TaggedError("DuplicateCode")<{ readonly code: number }> {
  override get message(): string {
    return `duplicate handler for code ${this.code}`
  }
}

/** @since 0.1.0 @category errors */
export class InvalidCode extends Data.TaggedError("InvalidCode")<{ readonly key: string }> {
  override get message(): string {
    return `key ${JSON.stringify(this.key)} is not an int32 code`
  }
}

/** @since 0.1.0 @category errors */
export class NotAFunction extends Data.TaggedError("NotAFunction")<{ readonly code: number }> {
  override get message(): string {
    return `handler for code ${this.code} is not a function`
  }
}

/**
 * Two commands of one `CommandGroup` share a name (the key of its handlers).
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicateName extends Data.TaggedError("DuplicateName")<{ readonly name: string }> {
  override get message(): string {
    return `two commands named ${JSON.stringify(this.name)}`
  }
}

/**
 * Why a handler table was rejected.
 *
 * @since 0.1.0
 * @category errors
 */
export type HandlersErrorReason = DuplicateCode | InvalidCode | NotAFunction | DuplicateName

/**
 * A handler table that cannot be served: building `Handlers.make` /
 * `Handlers.layer` fails with it (a typed error of the layer, not a defect).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Handlers } from "quasizero"
 * const h = () => Effect.void
 * const failed = Handlers.make([[1, h], [1, h]]).pipe(
 *   Effect.catchTag("HandlersError", (e) => Effect.succeed(e.reason._tag)) // "DuplicateCode"
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class HandlersError extends Data.TaggedError("HandlersError")<{ readonly reason: HandlersErrorReason }> {
  override get message(): string {
    return `Handlers: ${this.reason.message}`
  }
}

/**
 * A handler succeeded with something that is not a `Response`, bytes, a
 * string or void, or returned something that is not an Effect: the cause of
 * its `HandlerDefect` (an `internal error` reply).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidResult extends Data.TaggedError("InvalidResult")<{
  readonly code: number
  readonly received: string
}> {
  override get message(): string {
    return `handler for code ${this.code} ${this.received}: expected a Response, bytes, a string or void`
  }
}

const describeValue = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "an array" : typeof value === "object" ? "an object" : typeof value

/**
 * The defect for a handler that succeeded with an invalid value.
 *
 * @since 0.1.0
 * @category errors
 * @internal
 */
export const invalidSuccess = (code: number, value: unknown): InvalidResult =>
  new InvalidResult({ code, received: `succeeded with ${describeValue(value)}` })

/**
 * The defect for a handler that returned something other than an Effect.
 *
 * @since 0.1.0
 * @category errors
 * @internal
 */
export const notAnEffect = (code: number, value: unknown): InvalidResult =>
  new InvalidResult({ code, received: `returned ${describeValue(value)}, not an Effect` })
