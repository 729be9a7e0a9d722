/**
 * What decoding one message may cost: bounds on its metadata, checked while
 * it is decoded, and on the nesting of unknown groups. Re-exported by `Wire`.
 *
 * @since 0.2.0
 */

/**
 * Bounds on what decoding one message may cost, checked while it is decoded:
 * the number of metadata entries read (duplicates count: they cost as much to
 * decode) and the total UTF-8 bytes of their keys and values. The first entry
 * past a limit stops decoding with a `MetadataLimit` error. `Infinity`
 * disables a limit.
 *
 * @example
 * ```ts
 * import { Wire } from "quasizero"
 * const limits: Wire.DecodeLimits = { maxMetadataEntries: 64, maxMetadataBytes: 16 * 1024 }
 * const request = Wire.decodeRequestUnsafe(new Uint8Array([0x08, 0x01]), limits)
 * ```
 *
 * @since 0.2.0
 * @category decoding
 */
export interface DecodeLimits {
  /** Metadata entries per message. */
  readonly maxMetadataEntries: number
  /** Sum of the UTF-8 lengths of metadata keys and values per message. */
  readonly maxMetadataBytes: number
}

/**
 * The limits used when none are given: 1024 metadata entries and 1 MiB of
 * metadata keys and values per message. A message at the limits costs at most
 * ~1.1 MB of heap and ~0.1 ms to decode; without them, a 16 MiB frame of tiny
 * distinct keys costs ~100 MB and over a second of CPU.
 *
 * @example
 * ```ts
 * import { Wire } from "quasizero"
 * Wire.defaultDecodeLimits.maxMetadataEntries // 1024
 * ```
 *
 * @since 0.2.0
 * @category decoding
 */
export const defaultDecodeLimits: DecodeLimits = { maxMetadataEntries: 1024, maxMetadataBytes: 1 << 20 }

/**
 * No limits: only for bodies from a trusted source.
 *
 * @example
 * ```ts
 * import { Wire } from "quasizero"
 * const trusted = Wire.decodeResponseUnsafe(new Uint8Array(0), Wire.noDecodeLimits)
 * ```
 *
 * @since 0.2.0
 * @category decoding
 */
export const noDecodeLimits: DecodeLimits = { maxMetadataEntries: Infinity, maxMetadataBytes: Infinity }

/**
 * How deep unknown groups may nest: 10,000, Go's protobuf recursion limit.
 *
 * @example
 * ```ts
 * import { Wire } from "quasizero"
 * Wire.maxGroupDepth // 10000
 * ```
 *
 * @since 0.2.0
 * @category decoding
 */
export const maxGroupDepth = 10_000
