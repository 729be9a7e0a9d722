/**
 * The hand-written encoder for `proto/quasizero.proto` bodies and frames:
 * byte-identical to Go for the same message. Re-exported by `Wire`.
 *
 * @since 0.1.0
 */
import type * as Message from "./Message.ts"
import type * as Request from "./Request.ts"
import type * as Response from "./Response.ts"

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
  (req.code === 0 ? 0 : 1 + int32Size(req.code))
  + (req.metadata.size === 0 ? 0 : metadataSize(req.metadata))
  + payloadSize(req.payload)

/**
 * Size of a response's protobuf body.
 *
 * @since 0.1.0
 * @category encoding
 */
export const responseBodySize = (res: Response.Response): number =>
  (res.errorMessage.length === 0 ? 0 : stringFieldSize(utf8Length(res.errorMessage)))
  + (res.metadata.size === 0 ? 0 : metadataSize(res.metadata))
  + payloadSize(res.payload)

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
 * Wire.encodeRequests([Request.makeUnsafe(1)]) // Uint8Array [2, 8, 1]
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
