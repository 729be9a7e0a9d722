/**
 * A quasizero request: an int32 command `code`, string `metadata` and a byte
 * `payload`, as in Go's `quasizero.Request`. Values are immutable; the
 * `with*` helpers return copies. Go's `Release` (a sync.Pool) has no
 * equivalent: the garbage collector owns message memory here.
 *
 * @since 0.1.0
 */
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
 * Builds a request. Throws `MessageError` when `code` is not an int32, the
 * payload is not bytes or a string, or metadata holds a non-string.
 *
 * @example
 * ```ts
 * import { Request } from "quasizero"
 * const req = Request.make(2, { payload: "hello", metadata: { trace: "abc" } })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  code: number,
  options?: {
    readonly payload?: Message.PayloadInput | undefined
    readonly metadata?: Message.MetadataInput | undefined
  }
): Request => ({
  code: Message.checkCode(code),
  metadata: Message.toMetadata(options?.metadata),
  payload: Message.toPayload(options?.payload)
})

/**
 * Builds a request from already-validated parts without checks (used by the
 * decoder; prefer `make`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnsafe = (code: number, metadata: Message.Metadata, payload: Uint8Array): Request => ({
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
 * Request.getMeta(Request.make(1, { metadata: { k: "v" } }), "k") // "v"
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
 * const req = Request.withMeta(Request.make(1), "trace", "abc")
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
 * const req = Request.withPayload(Request.make(2), "hello")
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
 * Request.text(Request.make(2, { payload: "hi" })) // "hi"
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const text = (self: Request): string => decoder.decode(self.payload)
