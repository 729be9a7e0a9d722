/**
 * The quasizero wire: frames of `uvarint(length) ++ protobuf body`, with the
 * `Request` / `Response` bodies of `proto/quasizero.proto` encoded by hand.
 * One implementation, shared by server and client.
 *
 * Invariants (checked by `test/Wire.test.ts` against frames written by Go):
 * - encoding is byte-identical to Go: default fields omitted, a negative
 *   int32 is a 10-byte varint, map entries always carry key and value;
 * - decoding skips unknown fields, reads a missing map key or value as "",
 *   lets the last duplicate win, and rejects invalid UTF-8 (as Go does);
 * - a declared frame length is checked against `maxFrameSize` before any
 *   byte of the frame is buffered, and frames may split at any byte.
 *
 * Every failure is a `WireError`; the `*Unsafe` functions throw it, the others
 * return a `Result`.
 *
 * Gotcha: like Node's pooled `Buffer`s, an encoded frame of up to 4 KiB is a
 * view into a shared slab. Use its `byteOffset` / `byteLength`, and never
 * transfer or detach its `.buffer`.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Message from "./Message.ts"
import * as Request from "./Request.ts"
import * as Response from "./Response.ts"

/**
 * Go quasizero's frame limit: 16 MiB (1 << 24), inclusive.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxFrameSize = 1 << 24

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * A frame declared a body longer than the limit. `size` is the declared
 * length; when the prefix was cut short it is a lower bound (the frame is
 * rejected as soon as the limit is passed).
 *
 * @since 0.1.0
 * @category errors
 */
export class FrameTooLarge extends Data.TaggedError("FrameTooLarge")<{ readonly size: number; readonly limit: number }> {
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
export class VarintOverflow extends Data.TaggedError("VarintOverflow")<{ readonly what: string; readonly offset: number }> {
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
 * Why bytes are not a valid quasizero frame or message.
 *
 * @since 0.1.0
 * @category errors
 */
export type WireErrorReason = FrameTooLarge | VarintOverflow | Truncated | WrongWireType | InvalidUtf8

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
    return this.reason._tag === "FrameTooLarge" || (this.reason._tag === "VarintOverflow" && this.reason.what === frameLength)
  }
}

const frameLength = "frame length"

const fail = (reason: WireErrorReason): never => {
  throw new WireError({ reason })
}

// -----------------------------------------------------------------------------
// encoding
// -----------------------------------------------------------------------------

/**
 * Bytes a non-negative integer below 2^53 takes as a varint.
 *
 * @since 0.1.0
 * @category encoding
 */
export const varintSize = (n: number): number => {
  if (n < 0x80) return 1
  if (n < 0x4000) return 2
  if (n < 0x200000) return 3
  if (n < 0x10000000) return 4
  let size = 4
  n = Math.floor(n / 0x10000000)
  while (n > 0) {
    size++
    n = Math.floor(n / 0x80)
  }
  return size
}

const writeVarint = (buf: Uint8Array, pos: number, n: number): number => {
  while (n > 0x7fffffff) {
    buf[pos++] = (n % 0x80) | 0x80
    n = Math.floor(n / 0x80)
  }
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80
    n >>>= 7
  }
  buf[pos++] = n
  return pos
}

// int32 is a varint of the value sign-extended to 64 bits: 10 bytes when negative.
const int32Size = (n: number): number => (n < 0 ? 10 : varintSize(n))

const writeInt32 = (buf: Uint8Array, pos: number, n: number): number => {
  if (n >= 0) return writeVarint(buf, pos, n)
  let lo = n >>> 0
  for (let i = 0; i < 4; i++) {
    buf[pos++] = (lo & 0x7f) | 0x80
    lo >>>= 7
  }
  // bits 28..31 of the low word, and bits 32..34 (all ones), then 29 more ones.
  buf[pos++] = lo | 0x70 | 0x80
  buf[pos++] = 0xff
  buf[pos++] = 0xff
  buf[pos++] = 0xff
  buf[pos++] = 0xff
  buf[pos++] = 0x01
  return pos
}

/**
 * UTF-8 byte length of a string, counting a lone surrogate as U+FFFD (3
 * bytes), as `TextEncoder` writes it.
 *
 * @since 0.1.0
 * @category encoding
 */
export const utf8Length = (s: string): number => {
  let len = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) len += 1
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      len += 2 // a pair: 2 UTF-16 units, 4 bytes
      i++
    } else len += 2
  }
  return len
}

const textEncoder = new TextEncoder()

const writeString = (buf: Uint8Array, pos: number, s: string, byteLength: number): number => {
  if (byteLength === s.length) {
    // ASCII: one byte per unit; cheaper than a TextEncoder call for short keys.
    for (let i = 0; i < s.length; i++) buf[pos + i] = s.charCodeAt(i)
    return pos + byteLength
  }
  textEncoder.encodeInto(s, buf.subarray(pos, pos + byteLength))
  return pos + byteLength
}

const stringFieldSize = (byteLength: number): number => 1 + varintSize(byteLength) + byteLength

const metadataSize = (metadata: Message.Metadata): number => {
  let size = 0
  for (const [key, value] of metadata) {
    const entry = stringFieldSize(utf8Length(key)) + stringFieldSize(utf8Length(value))
    size += 1 + varintSize(entry) + entry
  }
  return size
}

const writeMetadata = (buf: Uint8Array, pos: number, metadata: Message.Metadata): number => {
  for (const [key, value] of metadata) {
    const kl = utf8Length(key)
    const vl = utf8Length(value)
    buf[pos++] = 0x12 // field 2, length-delimited
    pos = writeVarint(buf, pos, stringFieldSize(kl) + stringFieldSize(vl))
    buf[pos++] = 0x0a // entry key: always written, even when empty (as Go does)
    pos = writeVarint(buf, pos, kl)
    pos = writeString(buf, pos, key, kl)
    buf[pos++] = 0x12 // entry value
    pos = writeVarint(buf, pos, vl)
    pos = writeString(buf, pos, value, vl)
  }
  return pos
}

const payloadSize = (payload: Uint8Array): number =>
  payload.length === 0 ? 0 : 1 + varintSize(payload.length) + payload.length

const writePayload = (buf: Uint8Array, pos: number, payload: Uint8Array): number => {
  if (payload.length === 0) return pos
  buf[pos++] = 0x1a // field 3, length-delimited
  pos = writeVarint(buf, pos, payload.length)
  buf.set(payload, pos)
  return pos + payload.length
}

/**
 * Size of a request's protobuf body.
 *
 * @since 0.1.0
 * @category encoding
 */
export const requestBodySize = (req: Request.Request): number =>
  (req.code === 0 ? 0 : 1 + int32Size(req.code)) +
  (req.metadata.size === 0 ? 0 : metadataSize(req.metadata)) +
  payloadSize(req.payload)

/**
 * Size of a response's protobuf body.
 *
 * @since 0.1.0
 * @category encoding
 */
export const responseBodySize = (res: Response.Response): number =>
  (res.errorMessage.length === 0 ? 0 : stringFieldSize(utf8Length(res.errorMessage))) +
  (res.metadata.size === 0 ? 0 : metadataSize(res.metadata)) +
  payloadSize(res.payload)

const writeRequestBody = (buf: Uint8Array, pos: number, req: Request.Request): number => {
  if (req.code !== 0) {
    buf[pos++] = 0x08 // field 1, varint
    pos = writeInt32(buf, pos, req.code)
  }
  if (req.metadata.size !== 0) pos = writeMetadata(buf, pos, req.metadata)
  return writePayload(buf, pos, req.payload)
}

const writeResponseBody = (buf: Uint8Array, pos: number, res: Response.Response): number => {
  if (res.errorMessage.length !== 0) {
    const len = utf8Length(res.errorMessage)
    buf[pos++] = 0x0a // field 1, length-delimited
    pos = writeVarint(buf, pos, len)
    pos = writeString(buf, pos, res.errorMessage, len)
  }
  if (res.metadata.size !== 0) pos = writeMetadata(buf, pos, res.metadata)
  return writePayload(buf, pos, res.payload)
}

// Encoded frames up to 4 KiB are carved from a shared 64 KiB slab, as Node's
// `Buffer.allocUnsafe` does from its pool: V8 puts a typed array over 64
// bytes off-heap, and that allocation costs more than encoding a small
// message (bench/codec.ts). A slab is zero-filled once and never reused, so
// no byte of one frame can show up in another; a frame that outlives the
// rest keeps at most its 64 KiB slab alive.
const slabSize = 64 * 1024
const maxSlabbed = 4 * 1024
let slab = new ArrayBuffer(0)
let slabOffset = 0

const allocate = (size: number): Uint8Array => {
  if (size > maxSlabbed) return new Uint8Array(size)
  if (size > slab.byteLength - slabOffset) {
    slab = new ArrayBuffer(slabSize)
    slabOffset = 0
  }
  const out = new Uint8Array(slab, slabOffset, size)
  slabOffset += (size + 7) & ~7 // keep the next frame 8-byte aligned
  return out
}

// Body sizes of the batch being encoded, so each is computed once.
const sizes: Array<number> = []

const encodeBatch = <A>(
  messages: ReadonlyArray<A>,
  bodySize: (a: A) => number,
  writeBody: (buf: Uint8Array, pos: number, a: A) => number
): Uint8Array => {
  let total = 0
  for (let i = 0; i < messages.length; i++) {
    const size = bodySize(messages[i]!)
    sizes[i] = size
    total += varintSize(size) + size
  }
  const buf = allocate(total)
  let pos = 0
  for (let i = 0; i < messages.length; i++) {
    pos = writeVarint(buf, pos, sizes[i]!)
    pos = writeBody(buf, pos, messages[i]!)
  }
  return buf
}

/**
 * Encodes a request body (no length prefix).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeRequestBody = (req: Request.Request): Uint8Array => {
  const buf = allocate(requestBodySize(req))
  writeRequestBody(buf, 0, req)
  return buf
}

/**
 * Encodes a response body (no length prefix).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeResponseBody = (res: Response.Response): Uint8Array => {
  const buf = allocate(responseBodySize(res))
  writeResponseBody(buf, 0, res)
  return buf
}

/**
 * Encodes requests as consecutive frames into one buffer, sized once.
 *
 * @example
 * ```ts
 * import { Request, Wire } from "quasizero"
 * Wire.encodeRequests([Request.make(1)]) // Uint8Array [2, 8, 1]
 * ```
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeRequests = (requests: ReadonlyArray<Request.Request>): Uint8Array =>
  encodeBatch(requests, requestBodySize, writeRequestBody)

/**
 * Encodes responses as consecutive frames into one buffer, sized once.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeResponses = (responses: ReadonlyArray<Response.Response>): Uint8Array =>
  encodeBatch(responses, responseBodySize, writeResponseBody)

/**
 * Encodes one request frame (length prefix + body).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeRequest = (req: Request.Request): Uint8Array => encodeRequests([req])

/**
 * Encodes one response frame (length prefix + body).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeResponse = (res: Response.Response): Uint8Array => encodeResponses([res])

// -----------------------------------------------------------------------------
// decoding
// -----------------------------------------------------------------------------

// A cursor over one body. Fields are module state rather than an object so the
// decoder allocates nothing but the message it returns; decoding is
// synchronous and never re-entered.
let buf: Uint8Array = Message.emptyPayload
let pos = 0
let end = 0

const readVarint = (what: string): number => {
  const start = pos
  let result = 0
  let multiplier = 1
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return fail(new Truncated({ what, offset: start }))
    const b = buf[pos++]!
    result += (b & 0x7f) * multiplier
    if (b < 0x80) return result
    multiplier *= 0x80
  }
  return fail(new VarintOverflow({ what, offset: start }))
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

const readLength = (what: string): number => {
  const start = pos
  const len = readVarint(what)
  if (len > end - pos) return fail(new Truncated({ what, offset: start }))
  return len
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

const readString = (what: string): string => {
  const len = readLength(what)
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
      readVarint(`field ${field}`)
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
      const len = readLength(`field ${field}`)
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

// Deprecated proto2 groups may appear as unknown fields; skip to the matching
// end tag iteratively so nesting depth cannot exhaust the stack.
const skipGroup = (field: number, tagOffset: number): void => {
  const open: Array<number> = [field]
  while (open.length > 0) {
    if (pos >= end) fail(new Truncated({ what: `group ${field}`, offset: tagOffset }))
    const at = pos
    const tag = readTag() // field 0 is as invalid inside a group as outside (Go rejects both)
    const f = Math.floor(tag / 8)
    const wt = tag & 7
    if (wt === 4) {
      if (open.pop() !== f) fail(new WrongWireType({ field: f, wireType: 4, offset: at }))
    } else if (wt === 3) open.push(f)
    else skipField(f, wt, at)
  }
}

const readTag = (): number => {
  const at = pos
  const tag = readVarint("tag")
  if (tag < 8) fail(new WrongWireType({ field: 0, wireType: tag & 7, offset: at }))
  return tag
}

const expect = (field: number, wireType: number, expected: number, tagOffset: number): void => {
  if (wireType !== expected) fail(new WrongWireType({ field, wireType, offset: tagOffset }))
}

// One map<string,string> entry into `into` (created on first use).
const readMetadataEntry = (into: Map<string, string> | undefined): Map<string, string> => {
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
      key = readString("metadata key")
    } else if (field === 2) {
      expect(field, wireType, 2, at)
      value = readString("metadata value")
    } else skipField(field, wireType, at)
  }
  end = outerEnd
  const map = into ?? new Map<string, string>()
  map.set(key, value)
  return map
}

const begin = (bytes: Uint8Array): void => {
  buf = bytes
  pos = 0
  end = bytes.length
}

/**
 * Decodes a request body; throws `WireError`. The payload is a view into
 * `body` (no copy).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeRequestUnsafe = (body: Uint8Array): Request.Request => {
  begin(body)
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
        metadata = readMetadataEntry(metadata)
      } else if (field === 3) {
        expect(field, wireType, 2, at)
        payload = readBytes()
      } else skipField(field, wireType, at)
    }
  } finally {
    buf = Message.emptyPayload // do not retain the caller's buffer
  }
  return Request.makeUnsafe(code, metadata ?? Message.emptyMetadata, payload)
}

/**
 * Decodes a response body; throws `WireError`. The payload is a view into
 * `body` (no copy).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeResponseUnsafe = (body: Uint8Array): Response.Response => {
  begin(body)
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
        metadata = readMetadataEntry(metadata)
      } else if (field === 3) {
        expect(field, wireType, 2, at)
        payload = readBytes()
      } else skipField(field, wireType, at)
    }
  } finally {
    buf = Message.emptyPayload
  }
  return Response.makeUnsafe(errorMessage, metadata ?? Message.emptyMetadata, payload)
}

const toResult = <A>(decode: (body: Uint8Array) => A) => (body: Uint8Array): Result.Result<A, WireError> => {
  try {
    return Result.succeed(decode(body))
  } catch (e) {
    if (e instanceof WireError) return Result.fail(e)
    throw e
  }
}

/**
 * Decodes a request body into a `Result`.
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
export const decodeRequest: (body: Uint8Array) => Result.Result<Request.Request, WireError> = toResult(
  decodeRequestUnsafe
)

/**
 * Decodes a response body into a `Result`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeResponse: (body: Uint8Array) => Result.Result<Response.Response, WireError> = toResult(
  decodeResponseUnsafe
)

// -----------------------------------------------------------------------------
// framing
// -----------------------------------------------------------------------------

/**
 * Splits a byte stream into frame bodies. Chunks may split frames anywhere,
 * even inside the length varint. A frame inside one chunk is returned as a
 * view of it; only a frame that spans chunks is copied, once, when complete.
 * The declared length is checked before anything is buffered. After a
 * framing error the stream cannot be resynchronised: the decoder keeps
 * returning that error.
 *
 * @example
 * ```ts
 * import { Wire } from "quasizero"
 * const decoder = new Wire.FrameDecoder()
 * const frames: Array<Uint8Array> = []
 * decoder.push(new Uint8Array([2, 8]), frames) // frames: []
 * decoder.push(new Uint8Array([1]), frames)    // frames: [Uint8Array [8, 1]]
 * ```
 *
 * @since 0.1.0
 * @category framing
 */
export class FrameDecoder {
  readonly maxFrameSize: number
  // Chunks of the frame in progress (prefix included) and their total size.
  private parts: Array<Uint8Array> = []
  private buffered = 0
  // Total size of the frame in progress, prefix + body; -1 while its prefix is incomplete.
  private frameSize = -1
  private prefixSize = 0
  private error: WireError | undefined

  constructor(maxFrameSize: number = defaultMaxFrameSize) {
    this.maxFrameSize = maxFrameSize
  }

  /** Bytes of an incomplete frame held back; 0 between frames. */
  get pending(): number {
    return this.buffered
  }

  /**
   * Appends the body of every frame completed by `chunk` to `out`. Returns
   * a framing error (oversized length, varint overflow) or `undefined`.
   */
  push(chunk: Uint8Array, out: Array<Uint8Array>): WireError | undefined {
    if (this.error !== undefined) return this.error
    let offset = 0
    if (this.buffered > 0) {
      offset = this.continueFrame(chunk, out)
      if (offset < 0) return this.error // still incomplete, or failed
    }
    const length = chunk.length
    while (offset < length) {
      const header = this.readPrefix(chunk, offset, length)
      if (header === -2) return this.error
      if (header === -1) {
        // The prefix itself is split: hold the few bytes we have.
        this.hold(chunk.subarray(offset))
        return undefined
      }
      const frameEnd = offset + this.prefixSize + header
      if (frameEnd <= length) {
        out.push(chunk.subarray(offset + this.prefixSize, frameEnd))
        offset = frameEnd
      } else {
        this.frameSize = this.prefixSize + header
        this.hold(chunk.subarray(offset))
        return undefined
      }
    }
    return undefined
  }

  /** Drops any partial frame and error, ready for a fresh stream. */
  reset(): void {
    this.parts = []
    this.buffered = 0
    this.frameSize = -1
    this.error = undefined
  }

  private hold(bytes: Uint8Array): void {
    this.parts.push(bytes)
    this.buffered += bytes.length
  }

  // Completes a frame started in earlier chunks. Returns the offset in `chunk`
  // after it, or -1 when `chunk` was absorbed (or an error was recorded).
  private continueFrame(chunk: Uint8Array, out: Array<Uint8Array>): number {
    if (this.frameSize < 0) {
      // The prefix is split: at most 10 bytes are held, so joining is cheap.
      const head = concat(this.parts, this.buffered, chunk.subarray(0, 11))
      const header = this.readPrefix(head, 0, head.length)
      if (header === -2) return -1
      if (header === -1) {
        this.hold(chunk)
        return -1
      }
      this.frameSize = this.prefixSize + header
    }
    const missing = this.frameSize - this.buffered
    if (chunk.length < missing) {
      this.hold(chunk)
      return -1
    }
    const frame = concat(this.parts, this.buffered, chunk.subarray(0, missing))
    out.push(frame.subarray(this.prefixSize))
    this.parts = []
    this.buffered = 0
    this.frameSize = -1
    return missing
  }

  // Reads a length prefix at `offset`: the body length (setting prefixSize),
  // -1 when the bytes end inside it, -2 on a framing error (recorded).
  private readPrefix(bytes: Uint8Array, offset: number, length: number): number {
    let value = 0
    let multiplier = 1
    for (let i = 0; i < 10; i++) {
      if (offset + i >= length) return -1
      const b = bytes[offset + i]!
      value += (b & 0x7f) * multiplier
      if (value > this.maxFrameSize) {
        // Reject as soon as the limit is passed, but report the declared size
        // rather than the partial sum: read whatever prefix bytes are at hand.
        let j = i
        let last = b
        while (last >= 0x80 && j < 9 && offset + j + 1 < length) {
          j++
          multiplier *= 0x80
          last = bytes[offset + j]!
          value += (last & 0x7f) * multiplier
        }
        this.error = new WireError({ reason: new FrameTooLarge({ size: value, limit: this.maxFrameSize }) })
        return -2
      }
      if (b < 0x80) {
        this.prefixSize = i + 1
        return value
      }
      multiplier *= 0x80
    }
    this.error = new WireError({ reason: new VarintOverflow({ what: frameLength, offset: 0 }) })
    return -2
  }
}

const concat = (parts: ReadonlyArray<Uint8Array>, size: number, last: Uint8Array): Uint8Array => {
  const out = new Uint8Array(size + last.length)
  let at = 0
  for (let i = 0; i < parts.length; i++) {
    out.set(parts[i]!, at)
    at += parts[i]!.length
  }
  out.set(last, at)
  return out
}
