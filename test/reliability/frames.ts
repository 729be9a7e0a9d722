// Generators of hostile request bodies and stream tails for the fuzz suite.
//
// Structured cases (valid, unknown fields, groups, repetition, bad UTF-8,
// bad wire types, oversized varints) come with an expectation from an
// independent model written here, so a decoder bug cannot hide behind an
// oracle that shares it. Mutated and random bodies have no model: for them
// the oracle is `Wire.decodeRequest`, and the check is that the server
// answers exactly what its own codec says, once, in order.
import * as Result from "effect/Result"
import * as Wire from "../../src/Wire.ts"
import {
  concat,
  demoReply,
  errorReply,
  type Expected,
  lengthDelimited,
  metadataEntry,
  type Rng,
  tag,
  utf8Bytes,
  uvarint
} from "./support.ts"

export interface Case {
  readonly kind: string
  readonly body: Uint8Array
  /** What the server must reply, from `Wire.decodeRequest` + the demo handlers. */
  readonly expected: Expected
  /** What an independent model says: a reply, or "malformed"; absent for random bodies. */
  readonly model?: Expected | "malformed"
}

// -----------------------------------------------------------------------------
// the oracle
// -----------------------------------------------------------------------------

export const oracle = (body: Uint8Array): Expected => {
  const decoded = Wire.decodeRequest(body)
  if (Result.isFailure(decoded)) {
    const refused = decoded.failure.reason._tag === "MetadataLimit"
    return errorReply(`${refused ? "request refused" : "malformed request"}: ${decoded.failure.message}`)
  }
  const req = decoded.success
  return demoReply(req.code, req.metadata, req.payload)
}

// -----------------------------------------------------------------------------
// strings and fields
// -----------------------------------------------------------------------------

const specialTexts = [
  "",
  "a",
  "trace",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "__defineGetter__",
  "then",
  "é",
  "日本語",
  "🚀",
  "\uFEFFbom",
  "a\u0000b",
  "x".repeat(63),
  "y".repeat(64),
  "ü".repeat(40)
]

// Code points that are valid UTF-8 scalars (no surrogates): one to four bytes each.
const codePoint = (r: Rng): number => {
  switch (r.int(4)) {
    case 0:
      return r.range(0x20, 0x7e)
    case 1:
      return r.range(0x80, 0x7ff)
    case 2:
      return r.chance(0.5) ? r.range(0x800, 0xd7ff) : r.range(0xe000, 0xffff)
    default:
      return r.range(0x10000, 0x10ffff)
  }
}

export const text = (r: Rng): string => {
  switch (r.int(5)) {
    case 0:
      return r.pick(specialTexts)
    case 1:
    case 2: {
      let s = ""
      const n = r.int(20)
      for (let i = 0; i < n; i++) s += String.fromCharCode(r.range(0x20, 0x7e))
      return s
    }
    case 3: {
      let s = ""
      const n = r.int(12)
      for (let i = 0; i < n; i++) s += String.fromCodePoint(codePoint(r))
      return s
    }
    default: {
      // Past the short-string fast path, into TextDecoder.
      let s = ""
      const n = r.range(60, 150)
      for (let i = 0; i < n; i++) s += String.fromCodePoint(r.chance(0.9) ? r.range(0x61, 0x7a) : codePoint(r))
      return s
    }
  }
}

type Field =
  | { readonly _tag: "code"; readonly wire: bigint }
  | { readonly _tag: "entry"; readonly key: string; readonly value: string; readonly extra?: Uint8Array }
  | { readonly _tag: "payload"; readonly bytes: Uint8Array }

// What an int32 field holds after a decoder keeps the low 32 bits of the varint.
const codeOf = (wire: bigint): number => Number(BigInt.asIntN(32, wire))

const codeWire = (r: Rng): bigint => {
  switch (r.int(6)) {
    case 0:
    case 1:
    case 2:
      return BigInt(r.range(0, 6)) // mostly codes the demo handles
    case 3:
      return BigInt.asUintN(64, BigInt(r.range(-(2 ** 31), 2 ** 31 - 1))) // any int32, negatives as 10 bytes
    case 4:
      return BigInt(r.pick([2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53, 0]))
    default:
      return (BigInt(r.int(2 ** 32)) << 32n) | BigInt(r.int(2 ** 32)) // any uint64
  }
}

const encodeField = (f: Field): Uint8Array => {
  switch (f._tag) {
    case "code":
      return concat([[0x08], uvarint(f.wire)])
    case "entry":
      return metadataEntry(utf8Bytes(f.key), utf8Bytes(f.value), f.extra)
    case "payload":
      return lengthDelimited(3, f.bytes)
  }
}

/**
 * The independent model: last scalar wins, map keys keep first-seen order with
 * the last value; past the server's default metadata limits (every entry
 * counts, duplicates too; keys and values by UTF-8 length), the error naming it.
 */
const model = (fields: ReadonlyArray<Field>): Expected => {
  let code = 0
  const metadata = new Map<string, string>()
  let payload: Uint8Array = new Uint8Array(0)
  let entries = 0
  let bytes = 0
  const { maxMetadataBytes, maxMetadataEntries } = Wire.defaultDecodeLimits
  for (const f of fields) {
    if (f._tag === "code") code = codeOf(f.wire)
    else if (f._tag === "entry") {
      if (++entries > maxMetadataEntries) {
        return errorReply(
          `request refused: metadata has more than ${maxMetadataEntries} entries (maxMetadataEntries)`
        )
      }
      bytes += utf8Bytes(f.key).length + utf8Bytes(f.value).length
      if (bytes > maxMetadataBytes) {
        return errorReply(`request refused: metadata is larger than ${maxMetadataBytes} bytes (maxMetadataBytes)`)
      }
      metadata.set(f.key, f.value)
    } else payload = f.bytes
  }
  return demoReply(code, metadata, payload)
}

const validFields = (r: Rng): Array<Field> => {
  const fields: Array<Field> = []
  if (r.chance(0.9)) fields.push({ _tag: "code", wire: codeWire(r) })
  const entries = r.int(5)
  for (let i = 0; i < entries; i++) fields.push({ _tag: "entry", key: text(r), value: text(r) })
  if (r.chance(0.6)) fields.push({ _tag: "payload", bytes: r.bytes(r.chance(0.9) ? r.int(64) : r.int(2000)) })
  if (r.chance(0.1)) fields.push({ _tag: "code", wire: codeWire(r) }) // a duplicate scalar
  if (r.chance(0.3)) {
    // Fields may come in any order.
    for (let i = fields.length - 1; i > 0; i--) {
      const j = r.int(i + 1)
      ;[fields[i], fields[j]] = [fields[j]!, fields[i]!]
    }
  }
  return fields
}

const unknownFieldNumber = (r: Rng, min: number): number => r.chance(0.7) ? r.range(min, 20) : r.range(min, 2 ** 29 - 1)

/** One well-formed field the schema does not know, possibly a (nested) group. */
export const unknownField = (r: Rng, min = 4, depth = 0): Uint8Array => {
  const field = unknownFieldNumber(r, min)
  switch (r.int(depth < 3 ? 5 : 4)) {
    case 0:
      return concat([tag(field, 0), uvarint((BigInt(r.int(2 ** 32)) << BigInt(r.int(33))) | BigInt(r.int(128)))])
    case 1:
      return concat([tag(field, 1), r.bytes(8)])
    case 2:
      return lengthDelimited(field, r.bytes(r.int(40)))
    case 3:
      return concat([tag(field, 5), r.bytes(4)])
    default: {
      const inner: Array<Uint8Array> = []
      const n = r.int(4)
      for (let i = 0; i < n; i++) inner.push(unknownField(r, 1, depth + 1))
      return concat([tag(field, 3), ...inner, tag(field, 4)])
    }
  }
}

/** Encodes fields with `insert(i)` bytes placed before field i (and at the end, i = length). */
const assemble = (fields: ReadonlyArray<Field>, insert: (i: number) => Uint8Array | undefined): Uint8Array => {
  const parts: Array<Uint8Array> = []
  for (let i = 0; i <= fields.length; i++) {
    const extra = insert(i)
    if (extra !== undefined) parts.push(extra)
    if (i < fields.length) parts.push(encodeField(fields[i]!))
  }
  return concat(parts)
}

const withModel = (kind: string, body: Uint8Array, expected: Expected | "malformed"): Case => ({
  kind,
  body,
  expected: oracle(body),
  model: expected
})

// -----------------------------------------------------------------------------
// case generators
// -----------------------------------------------------------------------------

const valid = (r: Rng): Case => {
  const fields = validFields(r)
  return withModel("valid", assemble(fields, () => undefined), model(fields))
}

const unknownFields = (r: Rng): Case => {
  const fields = validFields(r).map((f): Field =>
    f._tag === "entry" && r.chance(0.3) ? { ...f, extra: unknownField(r, 3) } : f
  )
  const body = assemble(fields, () => (r.chance(0.5) ? unknownField(r) : undefined))
  return withModel("unknown fields", body, model(fields))
}

const nestedGroups = (r: Rng): Case => {
  const fields = validFields(r)
  const depth = r.chance(0.95) ? r.range(1, 100) : r.range(1000, 5000)
  const numbers = Array.from({ length: depth }, () => r.range(4, 2047)) // two-byte tags
  const open = concat([numbers.flatMap((f) => tag(f, 3))])
  const close = concat([numbers.toReversed().flatMap((f) => tag(f, 4))])
  const broken = r.chance(0.3)
  // Broken: an end tag that does not match, or the group left open.
  const group = broken
    ? r.chance(0.5) ? concat([open, close.subarray(0, close.length - 1), tag(numbers[0]! + 1, 4)]) : open
    : concat([open, r.chance(0.5) ? unknownField(r) : [], close])
  const at = broken && group === open ? fields.length : r.int(fields.length + 1)
  const body = assemble(fields, (i) => (i === at ? group : undefined))
  return withModel(broken ? "broken groups" : "nested groups", body, broken ? "malformed" : model(fields))
}

const repeated = (r: Rng): Case => {
  const fields: Array<Field> = []
  const n = r.range(2_000, 10_000)
  switch (r.int(3)) {
    case 0: {
      // Up to 10k metadata entries, many of them the same key; often right at the entry limit.
      fields.push({ _tag: "code", wire: 4n })
      const entries = r.chance(0.5) ? Wire.defaultDecodeLimits.maxMetadataEntries + r.range(-2, 1) : n
      const keys = r.range(1, entries)
      for (let i = 0; i < entries; i++) fields.push({ _tag: "entry", key: `k${r.int(keys)}`, value: String(i) })
      break
    }
    case 1:
      fields.push({ _tag: "code", wire: 2n })
      for (let i = 0; i < n; i++) fields.push({ _tag: "payload", bytes: r.bytes(r.int(8)) })
      break
    default:
      for (let i = 0; i < n; i++) fields.push({ _tag: "code", wire: codeWire(r) })
  }
  return withModel("repeated fields", assemble(fields, () => undefined), model(fields))
}

// Byte sequences TextDecoder({ fatal: true }) must reject, as Go's proto.Unmarshal does.
const badUtf8: ReadonlyArray<ReadonlyArray<number>> = [
  [0x80],
  [0xbf],
  [0xc0, 0x80],
  [0xc1, 0xbf],
  [0xc3],
  [0xe0, 0x80, 0x80],
  [0xe2, 0x82],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf0, 0x80, 0x80, 0x80],
  [0xf0, 0x9f, 0x98],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xfe],
  [0xff],
  [0xc3, 0x28]
]

const invalidUtf8 = (r: Rng): Case => {
  const fields = validFields(r)
  const prefix = utf8Bytes(r.chance(0.5) ? "" : "k".repeat(r.int(r.chance(0.5) ? 10 : 90)))
  const bad = concat([prefix, r.pick(badUtf8), utf8Bytes(r.chance(0.5) ? "" : "tail")])
  const good = utf8Bytes(text(r))
  const entry = r.chance(0.5) ? metadataEntry(bad, good) : metadataEntry(good, bad)
  const at = r.int(fields.length + 1)
  return withModel("invalid UTF-8", assemble(fields, (i) => (i === at ? entry : undefined)), "malformed")
}

const badWireType = (r: Rng): Case => {
  const fields = validFields(r)
  const field = unknownFieldNumber(r, 1)
  const bad = r.pick<() => Uint8Array>([
    () => concat([tag(field, 6 + r.int(2)), r.bytes(r.int(4))]), // wire types 6 and 7 do not exist
    () => concat([tag(field, 4)]), // a group end with no group
    () => concat([[r.int(8)], r.bytes(r.int(3))]), // field number 0
    () => concat([tag(field + 3, 3), [r.int(8)], r.bytes(8), tag(field + 3, 4)]), // field number 0 inside a group
    () => lengthDelimited(1, r.bytes(r.int(4))), // code as bytes
    () => concat([tag(2, 0), uvarint(r.int(1000))]), // metadata entry as a varint
    () => concat([tag(3, 5), r.bytes(4)]), // payload as fixed32
    () => metadataEntry(utf8Bytes("k"), utf8Bytes("v"), concat([tag(1, 0), [1]])) // entry key as a varint
  ])()
  const at = r.int(fields.length + 1)
  return withModel("bad wire type", assemble(fields, (i) => (i === at ? bad : undefined)), "malformed")
}

const bigVarint = (r: Rng): Case => {
  const fields = validFields(r)
  const bad = r.pick<() => Uint8Array>([
    () => concat([new Uint8Array(10).fill(0x80 | r.int(128)), [r.range(1, 127)]]), // an 11-byte tag
    () => concat([[0x08], new Uint8Array(10).fill(0xff), [0x01]]), // an 11-byte code
    () => concat([tag(unknownFieldNumber(r, 4), 2), uvarint(1n << BigInt(r.range(31, 63)))]), // a 2^31..2^63-byte field
    () => concat([tag(3, 2), uvarint(2 ** 32 + r.int(1000)), r.bytes(r.int(20))]), // a 4 GiB payload in a small body
    () => concat([tag(2, 2), uvarint(r.range(1, 1000))]) // an entry longer than the body
  ])()
  // At the end, so the declared lengths really overrun the body.
  return withModel("oversized varint", assemble(fields, (i) => (i === fields.length ? bad : undefined)), "malformed")
}

const mutate = (r: Rng, body: Uint8Array): Uint8Array => {
  const bytes = Array.from(body)
  const n = r.range(1, 4)
  for (let k = 0; k < n; k++) {
    const at = r.int(bytes.length + 1)
    switch (r.int(6)) {
      case 0:
        if (at < bytes.length) bytes[at] = bytes[at]! ^ (1 << r.int(8))
        break
      case 1:
        if (at < bytes.length) bytes[at] = r.int(256)
        break
      case 2:
        bytes.splice(at, 0, r.int(256))
        break
      case 3:
        bytes.splice(at, 1)
        break
      case 4:
        bytes.length = at // truncate
        break
      default:
        bytes.splice(at, 0, ...bytes.slice(r.int(bytes.length + 1), r.int(bytes.length + 1))) // duplicate a slice
    }
  }
  return Uint8Array.from(bytes)
}

const corrupted = (r: Rng): Case => {
  const source = r.chance(0.7) ? valid(r) : unknownFields(r)
  const body = mutate(r, source.body)
  return { kind: "corrupted", body, expected: oracle(body) }
}

const random = (r: Rng): Case => {
  const body = r.bytes(r.int(65))
  return { kind: "random bytes", body, expected: oracle(body) }
}

const empty = (): Case => withModel("empty", new Uint8Array(0), demoReply(0, new Map(), new Uint8Array(0)))

const generators: ReadonlyArray<readonly [number, (r: Rng) => Case]> = [
  [22, valid],
  [12, unknownFields],
  [6, nestedGroups],
  [0.08, repeated],
  [8, invalidUtf8],
  [8, badWireType],
  [6, bigVarint],
  [20, corrupted],
  [14, random],
  [1, empty]
]
const totalWeight = generators.reduce((n, [w]) => n + w, 0)

export const generate = (r: Rng): Case => {
  let x = r.next() * totalWeight
  for (const [w, g] of generators) {
    if (x < w) return g(r)
    x -= w
  }
  return valid(r)
}

// -----------------------------------------------------------------------------
// stream tails: what may end a batch
// -----------------------------------------------------------------------------

export interface Tail {
  readonly kind: string
  readonly bytes: Uint8Array
  /** Replies the tail itself produces, after those of the batch's frames. */
  readonly expected: ReadonlyArray<Expected | RegExp>
  /** The server closes the connection by itself (a framing error). */
  readonly closesConnection: boolean
  /** We must half-close for the server to see the end (an incomplete frame). */
  readonly needsEnd: boolean
}

const tooLarge = (limit: number) => new RegExp(`^frame of \\S+ bytes exceeds the maximum frame size of ${limit} bytes$`)

/**
 * An independent reading of a raw byte stream as frames: the complete
 * frames, then "too large", "overflow" or "incomplete".
 */
export const referenceFrames = (bytes: Uint8Array, limit: number) => {
  const frames: Array<Uint8Array> = []
  let at = 0
  while (at < bytes.length) {
    let value = 0n
    let prefix = -1
    for (let i = 0; i < 10; i++) {
      if (at + i >= bytes.length) return { frames, end: "incomplete" as const }
      const b = bytes[at + i]!
      value += BigInt(b & 0x7f) << BigInt(7 * i)
      if (value > BigInt(limit)) return { frames, end: "too large" as const }
      if (b < 0x80) {
        prefix = i + 1
        break
      }
    }
    if (prefix < 0) return { frames, end: "overflow" as const }
    const size = Number(value)
    if (at + prefix + size > bytes.length) return { frames, end: "incomplete" as const }
    frames.push(bytes.subarray(at + prefix, at + prefix + size))
    at += prefix + size
  }
  return { frames, end: "incomplete" as const }
}

export const tail = (r: Rng, limit: number): Tail | undefined => {
  const x = r.next()
  if (x < 0.45) return undefined
  if (x < 0.6) {
    // A declared length past the limit: up to 2^64, in a minimal or padded prefix.
    const size = r.chance(0.5)
      ? BigInt(limit + 1 + r.int(2 ** 31))
      : (BigInt(r.int(2 ** 32)) << 32n) | BigInt(r.int(2 ** 32))
    const declared = size > BigInt(limit) ? size : BigInt(limit) + 1n
    const prefix = uvarint(declared)
    const exact = declared < 2n ** 53n
    return {
      kind: "huge length",
      bytes: concat([prefix, r.bytes(r.int(100))]),
      expected: [
        exact
          ? errorReply(`frame of ${declared} bytes exceeds the maximum frame size of ${limit} bytes`)
          : tooLarge(limit)
      ],
      closesConnection: true,
      needsEnd: false
    }
  }
  if (x < 0.7) {
    // 11+ continuation bytes whose value stays under the limit.
    const bytes = concat([[0x80 | r.int(8)], new Uint8Array(r.range(10, 20)).fill(0x80), r.bytes(r.int(20))])
    return {
      kind: "varint overflow",
      bytes,
      expected: [errorReply("frame length varint at byte 0 is longer than 10 bytes")],
      closesConnection: true,
      needsEnd: false
    }
  }
  if (x < 0.85) {
    // A frame that never completes: the peer ends the stream inside it.
    const declared = r.chance(0.5) ? r.range(1, 300) : r.range(1, limit)
    const sent = r.int(Math.min(declared, 300))
    return {
      kind: "truncated frame",
      bytes: concat([uvarint(declared), r.bytes(sent)]),
      expected: [],
      closesConnection: false,
      needsEnd: true
    }
  }
  const bytes = r.bytes(r.range(1, 100))
  const read = referenceFrames(bytes, limit)
  const expected: Array<Expected | RegExp> = read.frames.map(oracle)
  if (read.end === "too large") expected.push(tooLarge(limit))
  if (read.end === "overflow") expected.push(errorReply("frame length varint at byte 0 is longer than 10 bytes"))
  return {
    kind: "random stream",
    bytes,
    expected,
    closesConnection: read.end !== "incomplete",
    needsEnd: read.end === "incomplete"
  }
}
