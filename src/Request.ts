/**
 * A quasizero request: an int32 command `code`, string `metadata` and a byte
 * `payload`, as in Go's `quasizero.Request`. Values are immutable; the
 * `with*` helpers return copies. Go's `Release` (a sync.Pool) has no
 * equivalent: the garbage collector owns message memory here.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Message from "./Message.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Request {
  readonly code: number
  readonly metadata: Message.Metadata
  readonly payload: Uint8Array
}

/**
 * What `make` / `makeUnsafe` accept besides the code.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly payload?: Message.PayloadInput | undefined
  readonly metadata?: Message.MetadataInput | undefined
}

/**
 * Builds a request, or throws `MessageError` when `code` is not an int32
 * (`2 ** 31`, `1.5`), the payload is not bytes or a string, or metadata holds
 * a non-string. For literal codes this cannot throw; for computed ones, or
 * inside an Effect, prefer `make`.
 *
 * @example
 * ```ts
 * import { Request } from "quasizero"
 * const req = Request.makeUnsafe(2, { payload: "hello", metadata: { trace: "abc" } })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnsafe = (code: number, options?: Options): Request => ({
  code: Message.checkCode(code),
  metadata: Message.toMetadata(options?.metadata),
  payload: Message.toPayload(options?.payload)
})

/**
 * Builds a request as an Effect: fails with a typed `MessageError` where
 * `makeUnsafe` throws.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Client, Request } from "quasizero"
 * declare const code: number // computed, maybe out of range
 * const program = Request.make(code, { payload: "hi" }).pipe(Effect.flatMap(Client.call))
 * // Effect<Response, MessageError | ClientError, Client>
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (code: number, options?: Options): Effect.Effect<Request, Message.MessageError> =>
  Effect.try({ try: () => makeUnsafe(code, options), catch: (e) => e as Message.MessageError })

/**
 * Builds a request from already-validated parts without any check (used by
 * the decoder; prefer `make` or `makeUnsafe`).
 *
 * @example
 * ```ts
 * import { Message, Request } from "quasizero"
 * const req = Request.makeUnchecked(1, Message.emptyMetadata, Message.emptyPayload)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnchecked = (code: number, metadata: Message.Metadata, payload: Uint8Array): Request => ({
  code,
  metadata,
  payload
})

/**
 * Reads a metadata value (Go's `req.Metadata[key]`); `undefined` when absent.
 *
 * @example
 * ```ts
 * import { Request } from "quasizero"
 * Request.getMeta(Request.makeUnsafe(1, { metadata: { k: "v" } }), "k") // "v"
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const getMeta = (self: Request, key: string): string | undefined => self.metadata.get(key)

/**
 * Returns a copy with one metadata pair set (Go's `SetMeta`).
 *
 * @example
 * ```ts
 * import { Request } from "quasizero"
 * const req = Request.withMeta(Request.makeUnsafe(1), "trace", "abc")
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withMeta = (self: Request, key: string, value: string): Request => ({
  ...self,
  metadata: Message.setMetadata(self.metadata, key, value)
})

/**
 * Returns a copy with another payload (bytes as they are, strings as UTF-8).
 *
 * @example
 * ```ts
 * import { Request } from "quasizero"
 * const req = Request.withPayload(Request.makeUnsafe(2), "hello")
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPayload = (self: Request, payload: Message.PayloadInput): Request => ({
  ...self,
  payload: Message.toPayload(payload)
})

const decoder = new TextDecoder("utf-8", { ignoreBOM: true })

/**
 * The payload decoded as UTF-8 (invalid sequences become U+FFFD).
 *
 * @example
 * ```ts
 * import { Request } from "quasizero"
 * Request.text(Request.makeUnsafe(2, { payload: "hi" })) // "hi"
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const text = (self: Request): string => decoder.decode(self.payload)
