/**
 * The decoders returning a `Result` instead of throwing: the `*Unsafe`
 * decoders of `WireDecode`, with a `WireError` as the failure. Re-exported by
 * `Wire`.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import type * as Request from "./Request.ts"
import type * as Response from "./Response.ts"
import { decodeRequestUnsafe, decodeResponseUnsafe } from "./WireDecode.ts"
import { WireError } from "./WireError.ts"
import { type DecodeLimits, defaultDecodeLimits } from "./WireLimits.ts"

const toResult = <A>(decode: (body: Uint8Array, limits?: DecodeLimits) => A) =>
(
  body: Uint8Array,
  limits: DecodeLimits = defaultDecodeLimits
): Result.Result<A, WireError> => {
  try {
    return Result.succeed(decode(body, limits))
  } catch (e) {
    if (e instanceof WireError) return Result.fail(e)
    throw e
  }
}

/**
 * Decodes a request body into a `Result` (metadata bounded by `limits`, default
 * `defaultDecodeLimits`).
 *
 * @example
 * ```ts
 * import { Wire } from "quasizero"
 * import { Result } from "effect"
 * const r = Wire.decodeRequest(new Uint8Array([0x08, 0x01]))
 * if (Result.isSuccess(r)) console.log(r.success.code) // 1
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeRequest: (
  body: Uint8Array,
  limits?: DecodeLimits
) => Result.Result<Request.Request, WireError> = toResult(
  decodeRequestUnsafe
)

/**
 * Decodes a response body into a `Result` (metadata bounded by `limits`, default
 * `defaultDecodeLimits`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeResponse: (
  body: Uint8Array,
  limits?: DecodeLimits
) => Result.Result<Response.Response, WireError> = toResult(
  decodeResponseUnsafe
)
