/**
 * Shared parts of quasizero messages: metadata, payload coercion and the one
 * construction error, `MessageError`.
 *
 * Metadata is untrusted input from the network, so it is a `ReadonlyMap`:
 * every key string (`"__proto__"`, `"constructor"`, `""`) round-trips as data
 * and can never reach an object prototype. `bench/metadata.ts` compares it
 * with a null-prototype record; see README "Metadata".
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * String key/value pairs carried by requests and responses.
 *
 * @example
 * ```ts
 * import { Message } from "quasizero"
 * const meta: Message.Metadata = new Map([["trace", "abc123"]])
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Metadata = ReadonlyMap<string, string>

/**
 * What constructors accept as metadata: a map, an iterable of pairs, or a
 * plain record (only its own enumerable string keys are read).
 *
 * @since 0.1.0
 * @category models
 */
export type MetadataInput = Metadata | Iterable<readonly [string, string]> | { readonly [key: string]: string }

/**
 * What constructors accept as a payload: bytes (kept as they are, not
 * copied) or a string (encoded as UTF-8).
 *
 * @since 0.1.0
 * @category models
 */
export type PayloadInput = Uint8Array | string

/**
 * The shared empty metadata. Typed read-only: never mutate it.
 *
 * @since 0.1.0
 * @category constants
 */
export const emptyMetadata: Metadata = new Map<string, string>()

/**
 * The shared empty payload.
 *
 * @since 0.1.0
 * @category constants
 */
export const emptyPayload: Uint8Array = new Uint8Array(0)

/**
 * The code was not an int32 (Go's `int32 code`).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidCode extends Data.TaggedError("InvalidCode")<{ readonly code: unknown }> {
  override get message(): string {
    return `code must be an int32 in [-2147483648, 2147483647], got ${String(this.code)}`
  }
}

/**
 * A payload was neither a `Uint8Array` nor a string.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPayload extends Data.TaggedError("InvalidPayload")<{ readonly received: string }> {
  override get message(): string {
    return `payload must be a Uint8Array or a string, got ${this.received}`
  }
}

/**
 * A metadata key or value was not a string.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidMetadata extends Data.TaggedError("InvalidMetadata")<{ readonly key: string }> {
  override get message(): string {
    return `metadata ${JSON.stringify(this.key)}: keys and values must be strings`
  }
}

/**
 * Why a message could not be constructed.
 *
 * @since 0.1.0
 * @category errors
 */
export type MessageErrorReason = InvalidCode | InvalidPayload | InvalidMetadata

/**
 * The failure of `Request.make` (thrown by `Request.makeUnsafe` and
 * `Response.make`) on values Go could not represent; branch on
 * `error.reason._tag`.
 *
 * @example
 * ```ts
 * import { Request, Message } from "quasizero"
 * try {
 *   Request.makeUnsafe(2 ** 31)
 * } catch (e) {
 *   if (e instanceof Message.MessageError) console.log(e.reason._tag) // "InvalidCode"
 * }
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class MessageError extends Data.TaggedError("MessageError")<{ readonly reason: MessageErrorReason }> {
  override get message(): string {
    return this.reason.message
  }
}

const encoder = new TextEncoder()

/**
 * Checks a value is an int32, throwing `MessageError` otherwise.
 *
 * @since 0.1.0
 * @category guards
 */
export const checkCode = (code: unknown): number => {
  if (typeof code !== "number" || !Number.isInteger(code) || code < -2147483648 || code > 2147483647) {
    throw new MessageError({ reason: new InvalidCode({ code }) })
  }
  return code
}

/**
 * Turns a `PayloadInput` into bytes (strings as UTF-8), throwing
 * `MessageError` on anything else.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toPayload = (payload: unknown): Uint8Array => {
  if (payload === undefined) return emptyPayload
  if (payload instanceof Uint8Array) return payload
  if (typeof payload === "string") return payload.length === 0 ? emptyPayload : encoder.encode(payload)
  throw new MessageError({
    reason: new InvalidPayload({ received: payload === null ? "null" : typeof payload })
  })
}

/**
 * Turns a `MetadataInput` into a fresh `Metadata`, throwing `MessageError`
 * when a key or value is not a string.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toMetadata = (input: MetadataInput | undefined): Metadata => {
  if (input === undefined) return emptyMetadata
  const out = new Map<string, string>()
  const entries: Iterable<readonly [unknown, unknown]> = isIterable(input) ? input : Object.entries(input)
  for (const [key, value] of entries) {
    if (typeof key !== "string" || typeof value !== "string") {
      throw new MessageError({ reason: new InvalidMetadata({ key: String(key) }) })
    }
    out.set(key, value)
  }
  return out.size === 0 ? emptyMetadata : out
}

const isIterable = (u: object): u is Iterable<readonly [unknown, unknown]> =>
  typeof (u as { [Symbol.iterator]?: unknown })[Symbol.iterator] === "function"

/**
 * Returns a copy of `metadata` with `key` set to `value`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const setMetadata = (metadata: Metadata, key: string, value: string): Metadata => {
  if (typeof key !== "string" || typeof value !== "string") {
    throw new MessageError({ reason: new InvalidMetadata({ key: String(key) }) })
  }
  const out = new Map(metadata)
  out.set(key, value)
  return out
}

/**
 * Plain-object view of metadata for JSON output. The record has a null
 * prototype, so keys such as `"__proto__"` stay ordinary properties.
 *
 * @since 0.1.0
 * @category conversions
 */
export const metadataToRecord = (metadata: Metadata): Record<string, string> => {
  const out: Record<string, string> = Object.create(null)
  for (const [key, value] of metadata) {
    // Safe on a null-prototype object: there is no inherited `__proto__` setter.
    out[key] = value
  }
  return out
}
