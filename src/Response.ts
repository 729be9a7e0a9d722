/**
 * A quasizero response: `errorMessage` (empty on success), string `metadata`
 * and a byte `payload`, as in Go's `quasizero.Response`. Like Go, an error
 * message is data, not a failure: a handler may set payload and metadata and
 * still report an error, and all three travel. Go's `Release` and
 * `ResponseBatch.Release` (sync.Pool) have no equivalent here.
 *
 * @since 0.1.0
 */
import * as Message from "./Message.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Response {
  readonly errorMessage: string
  readonly metadata: Message.Metadata
  readonly payload: Uint8Array
}

/**
 * Builds a response. It cannot throw for well-typed input: only a payload
 * that is not bytes or a string, or non-string metadata (values the types
 * already forbid), throw `MessageError`.
 *
 * @example
 * ```ts
 * import { Response } from "quasizero"
 * const res = Response.make({ payload: "OK", metadata: { took: "1ms" } })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: {
  readonly errorMessage?: string | undefined
  readonly payload?: Message.PayloadInput | undefined
  readonly metadata?: Message.MetadataInput | undefined
}): Response => ({
  errorMessage: options?.errorMessage === undefined ? "" : String(options.errorMessage),
  metadata: Message.toMetadata(options?.metadata),
  payload: Message.toPayload(options?.payload)
})

/**
 * Builds a response from already-validated parts without any check (used by
 * the decoder), like `Request.makeUnchecked`.
 *
 * @example
 * ```ts
 * import { Message, Response } from "quasizero"
 * const res = Response.makeUnchecked("", Message.emptyMetadata, Message.emptyPayload)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnchecked = (errorMessage: string, metadata: Message.Metadata, payload: Uint8Array): Response => ({
  errorMessage,
  metadata,
  payload
})

/**
 * The former name of `makeUnchecked` (it never threw, unlike
 * `Request.makeUnsafe`).
 *
 * @deprecated use `Response.makeUnchecked`.
 * @since 0.1.0
 * @category constructors
 */
export const makeUnsafe: (errorMessage: string, metadata: Message.Metadata, payload: Uint8Array) => Response =
  makeUnchecked

/**
 * The empty success response (Go's zero `Response`).
 *
 * @since 0.1.0
 * @category constants
 */
export const empty: Response = makeUnchecked("", Message.emptyMetadata, Message.emptyPayload)

/**
 * A success response carrying a payload (Go's `Set` / `SetString`).
 *
 * @example
 * ```ts
 * import { Response } from "quasizero"
 * const pong = Response.ok("PONG")
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const ok = (payload: Message.PayloadInput): Response =>
  makeUnchecked("", Message.emptyMetadata, Message.toPayload(payload))

/**
 * An error response (Go's `SetError`): the message travels as
 * `error_message`. Accepts a string or anything with a `message`.
 *
 * @example
 * ```ts
 * import { Response } from "quasizero"
 * const res = Response.error("something went wrong")
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const error = (error: string | { readonly message: string }): Response =>
  makeUnchecked(typeof error === "string" ? error : error.message, Message.emptyMetadata, Message.emptyPayload)

/**
 * An error response from a Go-style template (Go's `SetErrorf`): `%s`, `%v`,
 * `%d`, `%q` and `%%` are understood.
 *
 * @example
 * ```ts
 * import { Response } from "quasizero"
 * Response.errorf("unknown command code %d", 7).errorMessage // "unknown command code 7"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const errorf = (template: string, ...args: ReadonlyArray<unknown>): Response => error(sprintf(template, args))

/**
 * Reads a metadata value; `undefined` when absent.
 *
 * @since 0.1.0
 * @category getters
 */
export const getMeta = (self: Response, key: string): string | undefined => self.metadata.get(key)

/**
 * Returns a copy with one metadata pair set (Go's `SetMeta`).
 *
 * @example
 * ```ts
 * import { Response } from "quasizero"
 * const res = Response.withMeta(Response.ok("x"), "took", "1ms")
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withMeta = (self: Response, key: string, value: string): Response => ({
  ...self,
  metadata: Message.setMetadata(self.metadata, key, value)
})

/**
 * Returns a copy with another payload (Go's `Set` / `SetString`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPayload = (self: Response, payload: Message.PayloadInput): Response => ({
  ...self,
  payload: Message.toPayload(payload)
})

/**
 * Returns a copy with `errorMessage` set, keeping payload and metadata (what
 * Go sends when a handler filled the response and then returned an error).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withError = (self: Response, error: string | { readonly message: string }): Response => ({
  ...self,
  errorMessage: typeof error === "string" ? error : error.message
})

/**
 * `true` for a value shaped like a `Response`: a string `errorMessage`, a
 * `Uint8Array` payload and a map of metadata.
 *
 * @example
 * ```ts
 * import { Response } from "quasizero"
 * Response.isResponse(Response.ok("x")) // true
 * Response.isResponse({ payload: "x" }) // false
 * ```
 *
 * @since 0.1.0
 * @category guards
 */
export const isResponse = (u: unknown): u is Response => {
  if (typeof u !== "object" || u === null) return false
  const { errorMessage, metadata, payload } = u as Partial<Record<keyof Response, unknown>>
  return typeof errorMessage === "string" && payload instanceof Uint8Array && typeof metadata === "object"
    && metadata !== null && typeof (metadata as Map<string, string>).get === "function"
    && typeof (metadata as Map<string, string>)[Symbol.iterator] === "function"
}

/**
 * `true` when the response carries an error message.
 *
 * @since 0.1.0
 * @category guards
 */
export const isError = (self: Response): boolean => self.errorMessage.length > 0

const decoder = new TextDecoder("utf-8", { ignoreBOM: true })

/**
 * The payload decoded as UTF-8 (invalid sequences become U+FFFD).
 *
 * @example
 * ```ts
 * import { Response } from "quasizero"
 * Response.text(Response.ok("PONG")) // "PONG"
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const text = (self: Response): string => decoder.decode(self.payload)

const sprintf = (template: string, args: ReadonlyArray<unknown>): string => {
  let i = 0
  return template.replace(/%([%sdvq])/g, (_match, verb: string) => {
    if (verb === "%") return "%"
    if (i >= args.length) return `%!${verb}(MISSING)`
    const arg = args[i++]
    switch (verb) {
      case "d":
        if (typeof arg === "bigint") return arg.toString()
        return typeof arg === "number" && Number.isFinite(arg) ? String(Math.trunc(arg)) : `%!d(${String(arg)})`
      case "q":
        return JSON.stringify(String(arg))
      default:
        return arg instanceof Error ? arg.message : String(arg)
    }
  })
}
