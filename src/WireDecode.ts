/**
 * The hand-written decoder for `proto/quasizero.proto` bodies: unknown fields
 * skipped, missing map keys or values read as "", the last duplicate wins,
 * invalid UTF-8 rejected. Re-exported by `Wire`.
 *
 * @since 0.1.0
 */
import * as Message from "./Message.ts"
import * as Request from "./Request.ts"
import * as Response from "./Response.ts"
import {
  fail,
  InvalidUtf8,
  MetadataLimit,
  NestingTooDeep,
  Truncated,
  VarintOverflow,
  WireError,
  WrongWireType
} from "./WireError.ts"
import { type DecodeLimits, defaultDecodeLimits, maxGroupDepth } from "./WireLimits.ts"

// A cursor over one body. Fields are module state rather than an object so the
// decoder allocates nothing but the message it returns; decoding is
// synchronous and never re-entered.
let buf: Uint8Array = Message.emptyPayload
let pos = 0
let end = 0
// What the message being decoded may still spend (see DecodeLimits).
let entriesLeft = 0
let metadataBytesLeft = 0
let activeLimits: DecodeLimits = defaultDecodeLimits

// What a failure is about: a name, or the number of an unknown field (only
// formatted when decoding fails: skipping a field allocates nothing).
type What = string | number
const nameOf = (what: What): string => (typeof what === "number" ? `field ${what}` : what)

const readVarint = (what: What): number => {
  const start = pos
  let result = 0
  let multiplier = 1
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return fail(new Truncated({ what: nameOf(what), offset: start }))
    const b = buf[pos++]!
    result += (b & 0x7f) * multiplier
    if (b < 0x80) return result
    multiplier *= 0x80
  }
  return fail(new VarintOverflow({ what: nameOf(what), offset: start }))
}

// int32: the low 32 bits of a (up to 10-byte) varint, as protobuf decoders do.
const readInt32 = (): number => {
  const start = pos
  let lo = 0
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return fail(new Truncated({ what: "code", offset: start }))
    const b = buf[pos++]!
    if (i < 5) lo |= (b & 0x7f) << (7 * i)
    if (b < 0x80) return lo | 0
  }
  return fail(new VarintOverflow({ what: "code", offset: start }))
}

const readLength = (what: What): number => {
  const start = pos
  const len = readVarint(what)
  if (len > end - pos) return fail(new Truncated({ what: nameOf(what), offset: start }))
  return len
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

const readString = (what: string): string => decodeString(what, readLength(what))

// A metadata key or value: its length is charged before its bytes are read.
const readMetadataString = (what: string, entryOffset: number): string => {
  const len = readLength(what)
  metadataBytesLeft -= len
  if (metadataBytesLeft < 0) {
    fail(new MetadataLimit({ limit: "bytes", max: activeLimits.maxMetadataBytes, offset: entryOffset }))
  }
  return decodeString(what, len)
}

const decodeString = (what: string, len: number): string => {
  const start = pos
  pos += len
  if (len === 0) return ""
  if (len >= 64) return decodeUtf8(what, start, pos)
  // Short ASCII (metadata keys and most values) without a TextDecoder call,
  // eight bytes per String.fromCharCode, as protobufjs does: below 64 bytes
  // the call costs more than building the string (bench/codec.ts).
  const b = buf
  let s = ""
  let i = start
  for (; i + 8 <= pos; i += 8) {
    const c1 = b[i]!
    const c2 = b[i + 1]!
    const c3 = b[i + 2]!
    const c4 = b[i + 3]!
    const c5 = b[i + 4]!
    const c6 = b[i + 5]!
    const c7 = b[i + 6]!
    const c8 = b[i + 7]!
    if ((c1 | c2 | c3 | c4 | c5 | c6 | c7 | c8) & 0x80) return decodeUtf8(what, start, pos)
    s += String.fromCharCode(c1, c2, c3, c4, c5, c6, c7, c8)
  }
  for (; i < pos; i++) {
    const c = b[i]!
    if (c & 0x80) return decodeUtf8(what, start, pos)
    s += String.fromCharCode(c)
  }
  return s
}

const decodeUtf8 = (what: string, from: number, to: number): string => {
  try {
    return utf8.decode(buf.subarray(from, to))
  } catch {
    return fail(new InvalidUtf8({ field: what, offset: from }))
  }
}

const readBytes = (): Uint8Array => {
  const len = readLength("payload")
  const start = pos
  pos += len
  // A view, not a copy: the frame buffer is never reused.
  return len === 0 ? Message.emptyPayload : buf.subarray(start, pos)
}

const skipField = (field: number, wireType: number, tagOffset: number): void => {
  switch (wireType) {
    case 0:
      readVarint(field)
      return
    case 1:
    case 5: {
      const size = wireType === 1 ? 8 : 4
      if (end - pos < size) fail(new Truncated({ what: `field ${field}`, offset: tagOffset }))
      pos += size
      return
    }
    case 2: {
      // Not `pos += readLength()`: that adds to `pos` as it was before the
      // length varint was read.
      const len = readLength(field)
      pos += len
      return
    }
    case 3:
      skipGroup(field, tagOffset)
      return
    default:
      fail(new WrongWireType({ field, wireType, offset: tagOffset }))
  }
}

// The field numbers of the groups open while one is skipped, allocated once
// (80 KB: field numbers of unknown fields may pass 2^32). Skipping allocates
// nothing per level, and the end tag of every level is still checked against
// its start, as Go does.
const openGroups = new Float64Array(maxGroupDepth)

// Deprecated proto2 groups may appear as unknown fields; skip to the matching
// end tag iteratively, so nesting can exhaust neither the stack nor memory.
const skipGroup = (field: number, tagOffset: number): void => {
  openGroups[0] = field
  let depth = 1
  while (depth > 0) {
    if (pos >= end) fail(new Truncated({ what: `group ${field}`, offset: tagOffset }))
    const at = pos
    // readTag, with its one-byte case inline: a frame of nested groups is
    // nothing but tags. Field 0 is as invalid inside a group as outside (Go
    // rejects both).
    const first = buf[pos]!
    let tag: number
    if (first < 0x80 && first >= 8) {
      pos++
      tag = first
    } else tag = readTag()
    const f = tag < 0x80000000 ? tag >>> 3 : Math.floor(tag / 8)
    const wt = tag & 7
    if (wt === 4) {
      if (openGroups[--depth] !== f) fail(new WrongWireType({ field: f, wireType: 4, offset: at }))
    } else if (wt === 3) {
      if (depth === maxGroupDepth) fail(new NestingTooDeep({ limit: maxGroupDepth, offset: at }))
      openGroups[depth++] = f
    } else skipField(f, wt, at)
  }
}

const readTag = (): number => {
  const at = pos
  // Tags of fields 1-15 are one byte: every known field, and most of a hostile frame.
  const first = buf[pos]!
  const tag = first < 0x80 && pos < end ? (pos++, first) : readVarint("tag")
  if (tag < 8) fail(new WrongWireType({ field: 0, wireType: tag & 7, offset: at }))
  return tag
}

const expect = (field: number, wireType: number, expected: number, tagOffset: number): void => {
  if (wireType !== expected) fail(new WrongWireType({ field, wireType, offset: tagOffset }))
}

// One map<string,string> entry into `into` (created on first use).
const readMetadataEntry = (into: Map<string, string> | undefined, entryOffset: number): Map<string, string> => {
  if (--entriesLeft < 0) {
    fail(new MetadataLimit({ limit: "entries", max: activeLimits.maxMetadataEntries, offset: entryOffset }))
  }
  const len = readLength("metadata entry")
  const entryEnd = pos + len
  const outerEnd = end
  end = entryEnd
  let key = ""
  let value = ""
  while (pos < end) {
    const at = pos
    const tag = readTag()
    const field = Math.floor(tag / 8)
    const wireType = tag & 7
    if (field === 1) {
      expect(field, wireType, 2, at)
      key = readMetadataString("metadata key", entryOffset)
    } else if (field === 2) {
      expect(field, wireType, 2, at)
      value = readMetadataString("metadata value", entryOffset)
    } else skipField(field, wireType, at)
  }
  end = outerEnd
  const map = into ?? new Map<string, string>()
  map.set(key, value)
  return map
}

const begin = (bytes: Uint8Array, bounds: DecodeLimits, from = 0, to = bytes.length): void => {
  buf = bytes
  pos = from
  end = to
  activeLimits = bounds
  entriesLeft = bounds.maxMetadataEntries
  metadataBytesLeft = bounds.maxMetadataBytes
}

/**
 * Decodes a request body; throws `WireError`. The payload is a view into
 * `body` (no copy). Metadata is bounded by `limits` (default
 * `defaultDecodeLimits`); past a limit decoding stops with `MetadataLimit`.
 *
 * @example
 * ```ts
 * import { Wire } from "quasizero"
 * const request = Wire.decodeRequestUnsafe(new Uint8Array(0), { maxMetadataEntries: 8, maxMetadataBytes: 1024 })
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeRequestUnsafe = (body: Uint8Array, limits: DecodeLimits = defaultDecodeLimits): Request.Request =>
  decodeRequestRange(body, 0, body.length, limits)

/**
 * `decodeRequestUnsafe` of the body at `bytes[start, end)`, with no view made
 * for it (the server decodes frames in place in the chunk they arrived in).
 * Offsets in a `WireError` count from `start`, as if the body had been cut out.
 *
 * @example
 * ```ts
 * import { Wire } from "quasizero"
 * const frame = Wire.encodeRequest({ code: 1, metadata: new Map(), payload: new Uint8Array(0) })
 * const request = Wire.decodeRequestAtUnsafe(frame, 1, frame.length) // skip the 1-byte length prefix
 * ```
 *
 * @since 0.2.0
 * @category decoding
 */
export const decodeRequestAtUnsafe = (
  bytes: Uint8Array,
  start: number,
  end: number,
  limits: DecodeLimits = defaultDecodeLimits
): Request.Request => {
  if (start === 0) return decodeRequestRange(bytes, 0, end, limits)
  try {
    return decodeRequestRange(bytes, start, end, limits)
  } catch (e) {
    // Decoding is deterministic: decoding the cut-out body throws the same
    // error with offsets from the body's start. Failures are rare; views are not made for the others.
    if (e instanceof WireError) return decodeRequestRange(bytes.subarray(start, end), 0, end - start, limits)
    throw e
  }
}

const decodeRequestRange = (body: Uint8Array, from: number, to: number, limits: DecodeLimits): Request.Request => {
  begin(body, limits, from, to)
  let code = 0
  let metadata: Map<string, string> | undefined
  let payload = Message.emptyPayload
  try {
    while (pos < end) {
      const at = pos
      const tag = readTag()
      const field = Math.floor(tag / 8)
      const wireType = tag & 7
      if (field === 1) {
        expect(field, wireType, 0, at)
        code = readInt32()
      } else if (field === 2) {
        expect(field, wireType, 2, at)
        metadata = readMetadataEntry(metadata, at)
      } else if (field === 3) {
        expect(field, wireType, 2, at)
        payload = readBytes()
      } else skipField(field, wireType, at)
    }
  } finally {
    buf = Message.emptyPayload // do not retain the caller's buffer
  }
  return Request.makeUnchecked(code, metadata ?? Message.emptyMetadata, payload)
}

/**
 * Decodes a response body; throws `WireError`. The payload is a view into
 * `body` (no copy). Metadata is bounded by `limits` (default
 * `defaultDecodeLimits`); past a limit decoding stops with `MetadataLimit`.
 *
 * @example
 * ```ts
 * import { Wire } from "quasizero"
 * const response = Wire.decodeResponseUnsafe(new Uint8Array(0), { maxMetadataEntries: 8, maxMetadataBytes: 1024 })
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeResponseUnsafe = (
  body: Uint8Array,
  limits: DecodeLimits = defaultDecodeLimits
): Response.Response => decodeResponseRange(body, 0, body.length, limits)

/**
 * `decodeResponseUnsafe` of the body at `bytes[start, end)`, with no view
 * made for it (the client decodes replies in place in the chunk they arrived
 * in, like the server its requests). Offsets in a `WireError` count from
 * `start`, as if the body had been cut out.
 *
 * @example
 * ```ts
 * import { Wire } from "quasizero"
 * const frame = Wire.encodeResponse({ errorMessage: "", metadata: new Map(), payload: new Uint8Array([7]) })
 * const response = Wire.decodeResponseAtUnsafe(frame, 1, frame.length) // skip the 1-byte length prefix
 * ```
 *
 * @since 0.2.0
 * @category decoding
 */
export const decodeResponseAtUnsafe = (
  bytes: Uint8Array,
  start: number,
  end: number,
  limits: DecodeLimits = defaultDecodeLimits
): Response.Response => {
  if (start === 0) return decodeResponseRange(bytes, 0, end, limits)
  try {
    return decodeResponseRange(bytes, start, end, limits)
  } catch (e) {
    // As in `decodeRequestAtUnsafe`: the cut-out body fails the same way, with offsets from its start.
    if (e instanceof WireError) return decodeResponseRange(bytes.subarray(start, end), 0, end - start, limits)
    throw e
  }
}

const decodeResponseRange = (body: Uint8Array, from: number, to: number, limits: DecodeLimits): Response.Response => {
  begin(body, limits, from, to)
  let errorMessage = ""
  let metadata: Map<string, string> | undefined
  let payload = Message.emptyPayload
  try {
    while (pos < end) {
      const at = pos
      const tag = readTag()
      const field = Math.floor(tag / 8)
      const wireType = tag & 7
      if (field === 1) {
        expect(field, wireType, 2, at)
        errorMessage = readString("error_message")
      } else if (field === 2) {
        expect(field, wireType, 2, at)
        metadata = readMetadataEntry(metadata, at)
      } else if (field === 3) {
        expect(field, wireType, 2, at)
        payload = readBytes()
      } else skipField(field, wireType, at)
    }
  } finally {
    buf = Message.emptyPayload
  }
  return Response.makeUnchecked(errorMessage, metadata ?? Message.emptyMetadata, payload)
}
