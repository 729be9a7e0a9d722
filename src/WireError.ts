/**
 * The wire's one error, `WireError`, and its reasons. Re-exported by `Wire`.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * A frame declared a body longer than the limit. `size` is the declared
 * length; when the prefix was cut short it is a lower bound (the frame is
 * rejected as soon as the limit is passed).
 *
 * @since 0.1.0
 * @category errors
 */
export class FrameTooLarge
  extends Data.TaggedError("FrameTooLarge")<{ readonly size: number; readonly limit: number }>
{
  override get message(): string {
    return `frame of ${this.size} bytes exceeds the maximum frame size of ${this.limit} bytes`
  }
}

/**
 * A varint ran past 10 bytes (or past 64 bits).
 *
 * @since 0.1.0
 * @category errors
 */
export class VarintOverflow
  extends Data.TaggedError("VarintOverflow")<{ readonly what: string; readonly offset: number }>
{
  override get message(): string {
    return `${this.what} varint at byte ${this.offset} is longer than 10 bytes`
  }
}

/**
 * The body ended inside a field.
 *
 * @since 0.1.0
 * @category errors
 */
export class Truncated extends Data.TaggedError("Truncated")<{ readonly what: string; readonly offset: number }> {
  override get message(): string {
    return `truncated ${this.what} at byte ${this.offset}`
  }
}

/**
 * A field used a wire type its schema does not allow, an invalid wire type
 * (6, 7, an unmatched group end) or field number 0.
 *
 * @since 0.1.0
 * @category errors
 */
export class WrongWireType extends Data.TaggedError("WrongWireType")<{
  readonly field: number
  readonly wireType: number
  readonly offset: number
}> {
  override get message(): string {
    return `field ${this.field} has invalid wire type ${this.wireType} at byte ${this.offset}`
  }
}

/**
 * A string field held bytes that are not UTF-8 (proto3 forbids it; Go
 * rejects the message).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidUtf8 extends Data.TaggedError("InvalidUtf8")<{ readonly field: string; readonly offset: number }> {
  override get message(): string {
    return `${this.field} is not valid UTF-8 (at byte ${this.offset})`
  }
}

/**
 * A message's metadata went past a decode limit (`maxMetadataEntries` or
 * `maxMetadataBytes`, see `Wire.DecodeLimits`). Decoding stopped there: no
 * more of the message was read. Framing is intact, so a server answers with
 * an error and keeps the connection.
 *
 * @since 0.2.0
 * @category errors
 */
export class MetadataLimit extends Data.TaggedError("MetadataLimit")<{
  readonly limit: "entries" | "bytes"
  readonly max: number
  readonly offset: number
}> {
  override get message(): string {
    return this.limit === "entries"
      ? `metadata has more than ${this.max} entries (maxMetadataEntries)`
      : `metadata is larger than ${this.max} bytes (maxMetadataBytes)`
  }
}

/**
 * Unknown groups nested deeper than `limit` (10,000, Go's recursion limit).
 * Skipping stops at that depth, so a frame of group starts costs no more.
 *
 * @since 0.2.0
 * @category errors
 */
export class NestingTooDeep
  extends Data.TaggedError("NestingTooDeep")<{ readonly limit: number; readonly offset: number }>
{
  override get message(): string {
    return `groups nested deeper than ${this.limit} at byte ${this.offset}`
  }
}

/**
 * Why bytes are not a valid quasizero frame or message.
 *
 * @since 0.1.0
 * @category errors
 */
export type WireErrorReason =
  | FrameTooLarge
  | VarintOverflow
  | Truncated
  | WrongWireType
  | InvalidUtf8
  | MetadataLimit
  | NestingTooDeep

/**
 * The wire module's one error; branch on `error.reason._tag`.
 *
 * @example
 * ```ts
 * import { Wire } from "quasizero"
 * import { Result } from "effect"
 * const r = Wire.decodeRequest(new Uint8Array([0x08]))
 * if (Result.isFailure(r)) console.log(r.failure.reason._tag) // "Truncated"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class WireError extends Data.TaggedError("WireError")<{ readonly reason: WireErrorReason }> {
  override get message(): string {
    return this.reason.message
  }
  /** `true` for framing errors: the byte stream is lost and the connection must close. */
  get isFraming(): boolean {
    return this.reason._tag === "FrameTooLarge"
      || (this.reason._tag === "VarintOverflow" && this.reason.what === frameLength)
  }
}

/** @internal */
export const frameLength = "frame length"

/** @internal */
export const fail = (reason: WireErrorReason): never => {
  throw new WireError({ reason })
}
