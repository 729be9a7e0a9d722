import { describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { readFileSync } from "node:fs"
import protobuf from "protobufjs"
import * as Message from "../src/Message.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as Wire from "../src/Wire.ts"

// -----------------------------------------------------------------------------
// helpers
// -----------------------------------------------------------------------------

interface Vector {
  readonly name: string
  readonly kind: "request" | "response"
  readonly fields: {
    readonly code?: number
    readonly error_message?: string
    readonly metadata: Record<string, string>
    readonly payload_len: number
    readonly payload_b64: string
  }
  readonly frame_hex: string
  readonly frame_hex_variants?: ReadonlyArray<string>
  readonly body_len: number
}

const vectors: ReadonlyArray<Vector> = JSON.parse(
  readFileSync(new URL("./fixtures/wire-vectors.json", import.meta.url), "utf8")
)

const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, "hex"))
const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")
const bytes = (...values: ReadonlyArray<number>): Uint8Array => new Uint8Array(values)
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))

// Order-insensitive for metadata (vitest compares Maps by content).
const normRequest = (r: Request.Request) => ({ code: r.code, metadata: new Map(r.metadata), payload: hex(r.payload) })
const normResponse = (r: Response.Response) => ({
  errorMessage: r.errorMessage,
  metadata: new Map(r.metadata),
  payload: hex(r.payload)
})

const decodeRequest = (body: Uint8Array): Request.Request => Wire.decodeRequestUnsafe(body)
const decodeResponse = (body: Uint8Array): Response.Response => Wire.decodeResponseUnsafe(body)

/** Feeds chunks to a fresh decoder; any framing error fails the test. */
const feed = (chunks: ReadonlyArray<Uint8Array>, maxFrameSize?: number) => {
  const decoder = new Wire.FrameDecoder(maxFrameSize)
  const frames: Array<Uint8Array> = []
  for (const chunk of chunks) {
    const error = decoder.push(chunk, frames)
    if (error !== undefined) throw error
  }
  return { frames, pending: decoder.pending }
}

/** Splits `data` at the given (sorted, in-range) offsets; empty chunks included. */
const splitAt = (data: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const chunks: Array<Uint8Array> = []
  let from = 0
  for (const cut of cuts) {
    chunks.push(data.subarray(from, cut))
    from = cut
  }
  chunks.push(data.subarray(from))
  return chunks
}

const cutsArb = (length: number, maxCuts = 40) =>
  fc.uniqueArray(fc.integer({ min: 0, max: length }), { maxLength: Math.min(length + 1, maxCuts) }).map((cuts) =>
    [...cuts].sort((a, b) => a - b)
  )

const prefixSize = (frame: Uint8Array): number => {
  let i = 0
  while (frame[i]! >= 0x80) i++
  return i + 1
}

const wireErrorOf = (thunk: () => unknown): Wire.WireError => {
  try {
    thunk()
  } catch (e) {
    if (e instanceof Wire.WireError) return e
    throw e
  }
  throw new Error("expected a WireError")
}

const uvarint = (n: number): Array<number> => {
  const out: Array<number> = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}

const frameOf = (body: Uint8Array): Uint8Array => new Uint8Array([...uvarint(body.length), ...body])

// protobufjs, loaded by reflection from the schema, is the reference codec.
const root = protobuf.loadSync(new URL("../proto/quasizero.proto", import.meta.url).pathname)
const PbRequest = root.lookupType("quasizero.Request")
const PbResponse = root.lookupType("quasizero.Response")

interface PbMessage {
  readonly code?: number
  readonly errorMessage?: string
  readonly metadata?: Record<string, string>
  readonly payload?: Uint8Array | ReadonlyArray<number>
}

// A null prototype so a "__proto__" key is an ordinary property for protobufjs too.
const toPbMetadata = (metadata: Message.Metadata): Record<string, string> => {
  const out: Record<string, string> = Object.create(null)
  for (const [k, v] of metadata) out[k] = v
  return out
}

// protobufjs leaves absent fields to prototype defaults (an empty payload is `[]`).
const fromPb = (m: PbMessage) => ({
  metadata: new Map(Object.entries(m.metadata ?? {})),
  payload: hex(new Uint8Array(m.payload ?? []))
})

// protobufjs writes map entries in Object.keys order (integer-like keys
// first), so bytes can only match when that order is ours.
const sameKeyOrder = (metadata: Message.Metadata, pb: Record<string, string>): boolean => {
  const ours = [...metadata.keys()]
  const theirs = Object.keys(pb)
  return ours.length === theirs.length && ours.every((k, i) => k === theirs[i])
}

// -----------------------------------------------------------------------------
// arbitraries
// -----------------------------------------------------------------------------

const int32Arb = fc.oneof(
  fc.integer({ min: -2147483648, max: 2147483647 }),
  fc.constantFrom(0, 1, -1, 127, 128, 16383, 16384, -2147483648, 2147483647, 2 ** 28, -(2 ** 28))
)

const textArb = fc.oneof(
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.string({ unit: "binary", minLength: 30, maxLength: 80 }), // past the short-string fast path
  fc.constantFrom("", "__proto__", "constructor", "toString", "\uFEFFbom", "🚀", "1", "42")
)

const metadataArb = fc.array(fc.tuple(textArb, textArb), { maxLength: 5 }).map((pairs): Message.Metadata =>
  new Map(pairs)
)

// Large payloads are filled from a seed: per-byte generation would be slow.
const largePayloadArb = fc.tuple(fc.integer({ min: 0, max: 100_000 }), fc.integer()).map(([size, seed]) => {
  const out = new Uint8Array(size)
  let x = seed | 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x
  }
  return out
})

const payloadArb = fc.oneof(
  { weight: 30, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: largePayloadArb }
)

const requestArb = fc.tuple(int32Arb, metadataArb, payloadArb).map(([code, metadata, payload]) =>
  Request.makeUnsafe(code, { metadata, payload })
)

const responseArb = fc.tuple(textArb, metadataArb, payloadArb).map(([errorMessage, metadata, payload]) =>
  Response.make({ errorMessage, metadata, payload })
)

const fieldNumberArb = fc.oneof(fc.integer({ min: 4, max: 20 }), fc.integer({ min: 4, max: 2 ** 29 - 1 }))
const tagOf = (field: number, wireType: number): Array<number> => uvarint(field * 8 + wireType)

// One unknown field (any wire type, groups holding other unknown fields), as bytes.
const scalarUnknownArb: fc.Arbitrary<Array<number>> = fc.oneof(
  fc.tuple(fieldNumberArb, fc.oneof(fc.nat(), fc.constant(2 ** 63))).map(([f, v]) => [...tagOf(f, 0), ...uvarint(v)]),
  fc.tuple(fieldNumberArb, fc.uint8Array({ minLength: 8, maxLength: 8 })).map(([f, b]) => [...tagOf(f, 1), ...b]),
  fc.tuple(fieldNumberArb, fc.uint8Array({ maxLength: 300 })).map(([f, b]) => [
    ...tagOf(f, 2),
    ...uvarint(b.length),
    ...b
  ]),
  fc.tuple(fieldNumberArb, fc.uint8Array({ minLength: 4, maxLength: 4 })).map(([f, b]) => [...tagOf(f, 5), ...b])
)
const unknownFieldArb: fc.Arbitrary<Array<number>> = fc.oneof(
  { weight: 4, arbitrary: scalarUnknownArb },
  {
    weight: 1,
    arbitrary: fc.tuple(fieldNumberArb, fc.array(scalarUnknownArb, { maxLength: 3 })).map(([f, inner]) => [
      ...tagOf(f, 3),
      ...inner.flat(),
      ...tagOf(f, 4)
    ])
  }
)
const unknownFieldsArb = fc.array(unknownFieldArb, { maxLength: 4 }).map((fields) => fields.flat())

const smallRequestArb = fc.tuple(int32Arb, metadataArb, fc.uint8Array({ maxLength: 40 })).map((
  [code, metadata, payload]
) => Request.makeUnsafe(code, { metadata, payload }))

// -----------------------------------------------------------------------------
// Go vectors
// -----------------------------------------------------------------------------

describe("Go wire vectors", () => {
  it("covers all 32 cases", () => {
    expect(vectors.length).toBe(32)
  })

  for (const vector of vectors) {
    const frame = fromHex(vector.frame_hex)
    const body = frame.subarray(prefixSize(frame))
    const payload = new Uint8Array(Buffer.from(vector.fields.payload_b64, "base64"))
    const metadata = new Map(Object.entries(vector.fields.metadata))
    const accepted = new Set([vector.frame_hex, ...(vector.frame_hex_variants ?? [])])
    const large = frame.length > 50_000

    it(`${vector.name}: decodes to the listed fields and re-encodes byte for byte`, () => {
      expect(body.length).toBe(vector.body_len)
      expect(payload.length).toBe(vector.fields.payload_len)
      const { frames, pending } = feed([frame])
      expect(frames.length).toBe(1)
      expect(pending).toBe(0)
      if (vector.kind === "request") {
        const decoded = decodeRequest(frames[0]!)
        const expected = Request.makeUnsafe(vector.fields.code!, { metadata, payload })
        expect(normRequest(decoded)).toEqual(normRequest(expected))
        expect(accepted.has(hex(Wire.encodeRequest(decoded)))).toBe(true)
        expect(accepted.has(hex(Wire.encodeRequest(expected)))).toBe(true)
        expect(hex(Wire.encodeRequestBody(decoded))).toBe(hex(frames[0]!))
        for (const variant of accepted) {
          expect(normRequest(decodeRequest(fromHex(variant).subarray(prefixSize(frame))))).toEqual(
            normRequest(expected)
          )
        }
      } else {
        const decoded = decodeResponse(frames[0]!)
        const expected = Response.make({ errorMessage: vector.fields.error_message!, metadata, payload })
        expect(normResponse(decoded)).toEqual(normResponse(expected))
        expect(accepted.has(hex(Wire.encodeResponse(decoded)))).toBe(true)
        expect(accepted.has(hex(Wire.encodeResponse(expected)))).toBe(true)
        expect(hex(Wire.encodeResponseBody(decoded))).toBe(hex(frames[0]!))
        for (const variant of accepted) {
          expect(normResponse(decodeResponse(fromHex(variant).subarray(prefixSize(frame))))).toEqual(
            normResponse(expected)
          )
        }
      }
    })

    it(`${vector.name}: one frame whatever byte the stream splits at`, () => {
      let boundaries: Array<number>
      if (large) {
        const edges = Array.from({ length: 65 }, (_, i) => [i, frame.length - i]).flat()
        const random = fc.sample(fc.integer({ min: 0, max: frame.length }), { numRuns: 200, seed: 42 })
        boundaries = [...new Set([...edges, ...random])]
      } else {
        boundaries = Array.from({ length: frame.length + 1 }, (_, i) => i)
      }
      for (const cut of boundaries) {
        const { frames, pending } = feed([frame.subarray(0, cut), frame.subarray(cut)])
        expect(frames.length).toBe(1)
        expect(pending).toBe(0)
        if (!sameBytes(frames[0]!, body)) expect.fail(`body differs when split at ${cut}`)
      }
      if (frame.length <= 1000) {
        const { frames } = feed(Array.from(frame, (b) => bytes(b)))
        expect(frames.length).toBe(1)
        expect(hex(frames[0]!)).toBe(hex(body))
      }
    })

    it(`${vector.name}: one frame for random chunkings`, () => {
      fc.assert(
        fc.property(cutsArb(frame.length), (cuts) => {
          const { frames, pending } = feed(splitAt(frame, cuts))
          expect(frames.length).toBe(1)
          expect(pending).toBe(0)
          expect(sameBytes(frames[0]!, body)).toBe(true)
        }),
        { numRuns: large ? 30 : 100 }
      )
    })
  }
})

// -----------------------------------------------------------------------------
// framing
// -----------------------------------------------------------------------------

describe("FrameDecoder", () => {
  it("yields every frame of a randomly split stream, in order, as views when unsplit", () => {
    fc.assert(
      fc.property(
        fc.array(smallRequestArb, { minLength: 1, maxLength: 8 }).chain((requests) => {
          const stream = Wire.encodeRequests(requests)
          return fc.tuple(fc.constant(requests), fc.constant(stream), cutsArb(stream.length, 12))
        }),
        ([requests, stream, cuts]) => {
          const { frames, pending } = feed(splitAt(stream, cuts))
          expect(pending).toBe(0)
          expect(frames.map((f) => normRequest(decodeRequest(f)))).toEqual(requests.map(normRequest))
          // Where each frame sits in the stream decides whether it may be a view.
          let start = 0
          for (let i = 0; i < requests.length; i++) {
            const size = Wire.requestBodySize(requests[i]!)
            const end = start + uvarint(size).length + size
            const inOneChunk = !cuts.some((cut) => cut > start && cut < end)
            const frame = frames[i]!
            if (inOneChunk) {
              expect(frame.buffer).toBe(stream.buffer)
              expect(frame.byteOffset - stream.byteOffset).toBe(end - size)
            } else {
              expect(frame.buffer).not.toBe(stream.buffer)
            }
            start = end
          }
        }
      ),
      { numRuns: 500 }
    )
  })

  it("pushRanges gives the frames push gives, as offsets, whatever the split", () => {
    fc.assert(
      fc.property(
        fc.array(smallRequestArb, { minLength: 1, maxLength: 8 }).chain((requests) => {
          const stream = Wire.encodeRequests(requests)
          return fc.tuple(fc.constant(requests), fc.constant(stream), cutsArb(stream.length, 12))
        }),
        ([requests, stream, cuts]) => {
          const decoder = new Wire.FrameDecoder()
          const decoded: Array<Request.Request> = []
          for (const chunk of splitAt(stream, cuts)) {
            const ranges: Array<number> = []
            expect(decoder.pushRanges(chunk, ranges)).toBeUndefined()
            for (let i = 0; i < ranges.length; i += 2) {
              const joined = ranges[i]! < 0
              // Only the first frame of a push can be one completed from earlier chunks.
              if (joined) expect(i).toBe(0)
              decoded.push(
                joined
                  ? Wire.decodeRequestUnsafe(decoder.joined.subarray(0, ranges[i + 1]!))
                  : Wire.decodeRequestAtUnsafe(chunk, ranges[i]!, ranges[i + 1]!)
              )
            }
          }
          expect(decoder.pending).toBe(0)
          expect(decoded.map(normRequest)).toEqual(requests.map(normRequest))
        }
      ),
      { numRuns: 300 }
    )
  })

  it("decodeRequestAtUnsafe reports offsets from the body's start", () => {
    const body = Wire.encodeRequestBody(Request.makeUnsafe(7, { payload: "abc" })).subarray(0, 4) // truncated payload
    const padded = new Uint8Array(body.length + 5)
    padded.set(body, 5)
    const direct = (() => {
      try {
        Wire.decodeRequestUnsafe(body)
      } catch (e) {
        return e
      }
    })()
    expect(() => Wire.decodeRequestAtUnsafe(padded, 5, padded.length)).toThrow(direct as Error)
    expect(direct).toBeInstanceOf(Wire.WireError)
  })

  it("decodeResponseAtUnsafe decodes a reply in place and reports offsets from the body's start", () => {
    const reply = Response.makeUnsafe("", new Map([["k", "v"]]), new TextEncoder().encode("abc"))
    const frame = Wire.encodeResponse(reply)
    const padded = new Uint8Array(frame.length + 3)
    padded.set(frame, 3)
    const decoded = Wire.decodeResponseAtUnsafe(padded, 4, padded.length)
    expect(Response.text(decoded)).toBe("abc")
    expect(decoded.metadata.get("k")).toBe("v")
    expect(decoded.payload.buffer).toBe(padded.buffer) // a view, no copy

    const body = Wire.encodeResponseBody(reply).subarray(0, 4) // truncated
    const cut = new Uint8Array(body.length + 5)
    cut.set(body, 5)
    const direct = (() => {
      try {
        Wire.decodeResponseUnsafe(body)
      } catch (e) {
        return e
      }
    })()
    expect(direct).toBeInstanceOf(Wire.WireError)
    expect(() => Wire.decodeResponseAtUnsafe(cut, 5, cut.length)).toThrow(direct as Error)
  })

  it("returns a frame inside one chunk as a view of that chunk", () => {
    const chunk = Wire.encodeRequests([
      Request.makeUnsafe(1, { payload: "hello" }),
      Request.makeUnsafe(2),
      Request.makeUnsafe(3)
    ])
    const { frames } = feed([chunk])
    expect(frames.length).toBe(3)
    for (const frame of frames) expect(frame.buffer).toBe(chunk.buffer)
  })

  it("copies a split frame once it is complete", () => {
    const frame = Wire.encodeRequest(Request.makeUnsafe(7, { payload: "split me" }))
    const decoder = new Wire.FrameDecoder()
    const out: Array<Uint8Array> = []
    expect(decoder.push(frame.subarray(0, 4), out)).toBeUndefined()
    expect(out.length).toBe(0)
    expect(decoder.pending).toBe(4)
    expect(decoder.push(frame.subarray(4), out)).toBeUndefined()
    expect(out.length).toBe(1)
    expect(decoder.pending).toBe(0)
    expect(Request.text(decodeRequest(out[0]!))).toBe("split me")
  })

  it("accepts a padded (non-minimal) 10-byte length prefix split anywhere (Go's binary.ReadUvarint accepts it too)", () => {
    const body = Wire.encodeRequestBody(Request.makeUnsafe(5, { payload: "padded" }))
    const prefix = [body.length | 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]
    const frame = new Uint8Array([...prefix, ...body, ...Wire.encodeRequest(Request.makeUnsafe(6))])
    for (let cut = 0; cut <= frame.length; cut++) {
      const { frames, pending } = feed([frame.subarray(0, cut), frame.subarray(cut)])
      expect(frames.map(hex)).toEqual([hex(body), "0806"])
      expect(pending).toBe(0)
    }
    const { frames } = feed(Array.from(frame, (b) => bytes(b)))
    expect(frames.map(hex)).toEqual([hex(body), "0806"])
  })

  it("accepts a zero-length frame and empty chunks", () => {
    const { frames } = feed([bytes(), bytes(0), bytes(), bytes(0, 0)])
    expect(frames.map((f) => f.length)).toEqual([0, 0, 0])
  })

  it("accepts exactly maxFrameSize and rejects one byte more", () => {
    const limit = 300
    const exact = frameOf(new Uint8Array(limit))
    expect(feed([exact], limit).frames[0]!.length).toBe(limit)
    // Split inside the prefix too.
    expect(feed([exact.subarray(0, 1), exact.subarray(1)], limit).frames[0]!.length).toBe(limit)

    const over = frameOf(new Uint8Array(limit + 1))
    for (const chunks of [[over], [over.subarray(0, 1), over.subarray(1)]]) {
      const decoder = new Wire.FrameDecoder(limit)
      const out: Array<Uint8Array> = []
      let error: Wire.WireError | undefined
      for (const chunk of chunks) error ??= decoder.push(chunk, out)
      expect(out.length).toBe(0)
      expect(error?.reason).toEqual(new Wire.FrameTooLarge({ size: limit + 1, limit }))
      expect(error?.isFraming).toBe(true)
      expect(error?.message).toContain(`${limit}`)
    }
  })

  it("checks the default 16 MiB limit from the prefix alone", () => {
    expect(Wire.defaultMaxFrameSize).toBe(16 * 1024 * 1024)
    const atLimit = new Wire.FrameDecoder()
    const out: Array<Uint8Array> = []
    // Only the prefix: a decoder that accepts it holds just those bytes.
    expect(atLimit.push(bytes(...uvarint(1 << 24)), out)).toBeUndefined()
    expect(atLimit.pending).toBe(uvarint(1 << 24).length)
    expect(out.length).toBe(0)

    const error = new Wire.FrameDecoder().push(bytes(...uvarint((1 << 24) + 1)), out)
    expect(error?.reason).toEqual(new Wire.FrameTooLarge({ size: (1 << 24) + 1, limit: 1 << 24 }))
  })

  it("rejects a 2 GiB declared length from the prefix alone, reporting the declared size", () => {
    const out: Array<Uint8Array> = []
    const twoGiB = new Wire.FrameDecoder().push(bytes(...uvarint(2 ** 31)), out)
    expect(twoGiB?.reason).toEqual(new Wire.FrameTooLarge({ size: 2 ** 31, limit: 1 << 24 }))
    // The limit is passed at the 4th byte; the 5th still counts in the size.
    const max32 = new Wire.FrameDecoder().push(bytes(...uvarint(2 ** 32 - 1)), out)
    expect(max32?.reason).toEqual(new Wire.FrameTooLarge({ size: 2 ** 32 - 1, limit: 1 << 24 }))
    // Even before the prefix is complete.
    const partial = new Wire.FrameDecoder()
    expect(partial.push(bytes(0x80, 0x80), out)).toBeUndefined()
    expect(partial.push(bytes(0x80, 0x80), out)).toBeUndefined()
    expect(partial.push(bytes(0x08), out)?.reason._tag).toBe("FrameTooLarge")
    expect(out.length).toBe(0)
  })

  it("rejects an 11-byte prefix as VarintOverflow and keeps returning the error", () => {
    const decoder = new Wire.FrameDecoder()
    const out: Array<Uint8Array> = []
    const prefix = bytes(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00)
    const error = decoder.push(prefix, out)
    expect(error?.reason._tag).toBe("VarintOverflow")
    expect(error?.isFraming).toBe(true)
    expect(decoder.push(bytes(0x02, 0x08, 0x01), out)).toBe(error)
    expect(decoder.push(bytes(), out)).toBe(error)
    expect(out.length).toBe(0)
    decoder.reset()
    expect(decoder.push(bytes(0x02, 0x08, 0x01), out)).toBeUndefined()
    expect(out.length).toBe(1)
  })

  it("reports VarintOverflow when a prefix arriving a byte at a time reaches a 10th continuation byte", () => {
    const decoder = new Wire.FrameDecoder()
    const out: Array<Uint8Array> = []
    let error: Wire.WireError | undefined
    for (let i = 0; i < 9; i++) error ??= decoder.push(bytes(0x80), out)
    expect(error).toBeUndefined()
    expect(decoder.pending).toBe(9)
    // A 10th byte that still continues already makes the varint too long.
    error = decoder.push(bytes(0x80), out)
    expect(error?.reason._tag).toBe("VarintOverflow")
    expect(error?.isFraming).toBe(true)
    expect(decoder.push(bytes(0x00), out)).toBe(error)
  })

  it("keeps returning FrameTooLarge after it", () => {
    const decoder = new Wire.FrameDecoder(10)
    const out: Array<Uint8Array> = []
    const error = decoder.push(bytes(0x0b), out)
    expect(error?.reason._tag).toBe("FrameTooLarge")
    expect(decoder.push(bytes(0x00), out)).toBe(error)
    expect(out.length).toBe(0)
  })

  it("delivers the frames before a framing error in the same chunk", () => {
    const decoder = new Wire.FrameDecoder(10)
    const out: Array<Uint8Array> = []
    const error = decoder.push(bytes(0x02, 0x08, 0x01, 0x0b, 0x00), out)
    expect(error?.reason._tag).toBe("FrameTooLarge")
    expect(out.map(hex)).toEqual(["0801"])
  })

  it("does not call a malformed body a framing error", () => {
    const error = wireErrorOf(() => decodeRequest(bytes(0x08)))
    expect(error.isFraming).toBe(false)
    expect(wireErrorOf(() => decodeRequest(bytes(0x08, ...Array.from({ length: 10 }, () => 0x80), 0x01))).isFraming)
      .toBe(false)
  })
})

// -----------------------------------------------------------------------------
// body decoding
// -----------------------------------------------------------------------------

describe("malformed bodies", () => {
  const ff = Array.from({ length: 10 }, () => 0x80)
  const cases: ReadonlyArray<{
    readonly name: string
    readonly kind: "request" | "response"
    readonly body: ReadonlyArray<number>
    readonly reason: Wire.WireErrorReason["_tag"]
    readonly check?: (reason: Wire.WireErrorReason) => void
  }> = [
    { name: "truncated tag varint", kind: "request", body: [0x80], reason: "Truncated" },
    { name: "tag without value", kind: "request", body: [0x08], reason: "Truncated" },
    { name: "truncated code varint", kind: "request", body: [0x08, 0xff, 0xff], reason: "Truncated" },
    { name: "11-byte varint in code", kind: "request", body: [0x08, ...ff, 0x01], reason: "VarintOverflow" },
    { name: "11-byte tag", kind: "request", body: [...ff, 0x01], reason: "VarintOverflow" },
    { name: "11-byte length", kind: "request", body: [0x1a, ...ff, 0x01], reason: "VarintOverflow" },
    { name: "truncated payload", kind: "request", body: [0x1a, 0x05, 0x61, 0x62], reason: "Truncated" },
    { name: "truncated payload length", kind: "request", body: [0x1a, 0x80], reason: "Truncated" },
    { name: "truncated error_message", kind: "response", body: [0x0a, 0x03, 0x61], reason: "Truncated" },
    { name: "truncated metadata entry", kind: "request", body: [0x12, 0x05, 0x0a, 0x01], reason: "Truncated" },
    {
      name: "metadata key running past its entry",
      kind: "request",
      body: [0x12, 0x03, 0x0a, 0x05, 0x61, 0x61, 0x61, 0x61, 0x61],
      reason: "Truncated"
    },
    {
      name: "code sent as length-delimited",
      kind: "request",
      body: [0x0a, 0x01, 0x01],
      reason: "WrongWireType",
      check: (r) => expect(r).toMatchObject({ field: 1, wireType: 2 })
    },
    { name: "error_message sent as varint", kind: "response", body: [0x08, 0x01], reason: "WrongWireType" },
    { name: "metadata sent as varint", kind: "request", body: [0x10, 0x01], reason: "WrongWireType" },
    { name: "payload sent as fixed32", kind: "response", body: [0x1d, 0, 0, 0, 0], reason: "WrongWireType" },
    { name: "map key sent as varint", kind: "request", body: [0x12, 0x02, 0x08, 0x01], reason: "WrongWireType" },
    {
      name: "map value sent as fixed64",
      kind: "response",
      body: [0x12, 0x09, 0x11, 1, 2, 3, 4, 5, 6, 7, 8],
      reason: "WrongWireType"
    },
    {
      name: "wire type 6",
      kind: "request",
      body: [0x26, 0x00],
      reason: "WrongWireType",
      check: (r) => expect(r).toMatchObject({ field: 4, wireType: 6 })
    },
    { name: "wire type 7", kind: "response", body: [0x27, 0x00], reason: "WrongWireType" },
    {
      name: "wire type 7 inside a map entry",
      kind: "request",
      body: [0x12, 0x02, 0x1f, 0x00],
      reason: "WrongWireType"
    },
    {
      name: "field number 0",
      kind: "request",
      body: [0x00, 0x01],
      reason: "WrongWireType",
      check: (r) => expect(r).toMatchObject({ field: 0 })
    },
    { name: "field number 0, length-delimited", kind: "response", body: [0x02, 0x00], reason: "WrongWireType" },
    { name: "field number 0 in a map entry", kind: "request", body: [0x12, 0x02, 0x00, 0x00], reason: "WrongWireType" },
    {
      name: "invalid UTF-8 in metadata key",
      kind: "request",
      body: [0x12, 0x05, 0x0a, 0x01, 0xff, 0x12, 0x00],
      reason: "InvalidUtf8",
      check: (r) => expect(r).toMatchObject({ field: "metadata key" })
    },
    {
      name: "invalid UTF-8 in metadata value",
      kind: "response",
      body: [0x12, 0x05, 0x0a, 0x00, 0x12, 0x01, 0xc3],
      reason: "InvalidUtf8",
      check: (r) => expect(r).toMatchObject({ field: "metadata value" })
    },
    {
      name: "invalid UTF-8 in error_message",
      kind: "response",
      body: [0x0a, 0x02, 0xc0, 0x80], // overlong NUL
      reason: "InvalidUtf8",
      check: (r) => expect(r).toMatchObject({ field: "error_message" })
    },
    {
      name: "UTF-16 surrogate encoded in UTF-8",
      kind: "response",
      body: [0x0a, 0x03, 0xed, 0xa0, 0x80],
      reason: "InvalidUtf8"
    },
    {
      name: "invalid UTF-8 in a long error_message",
      kind: "response",
      body: [0x0a, 0x29, ...Array.from({ length: 40 }, () => 0x61), 0xfe],
      reason: "InvalidUtf8"
    },
    {
      name: "unmatched group end",
      kind: "request",
      body: [0x2c],
      reason: "WrongWireType",
      check: (r) => expect(r).toMatchObject({ field: 5, wireType: 4 })
    },
    { name: "group closed by another field", kind: "response", body: [0x2b, 0x34], reason: "WrongWireType" },
    { name: "unterminated group", kind: "request", body: [0x2b, 0x08, 0x01], reason: "Truncated" },
    { name: "truncated unknown fixed64", kind: "request", body: [0x29, 1, 2, 3], reason: "Truncated" },
    { name: "truncated unknown fixed32", kind: "response", body: [0x2d, 1, 2, 3], reason: "Truncated" },
    { name: "truncated unknown length-delimited", kind: "request", body: [0x32, 0x04, 1], reason: "Truncated" }
  ]

  for (const c of cases) {
    it(`${c.kind}: ${c.name} → ${c.reason}`, () => {
      const body = new Uint8Array(c.body)
      const error = wireErrorOf(() => (c.kind === "request" ? decodeRequest(body) : decodeResponse(body)))
      expect(error.reason._tag).toBe(c.reason)
      expect(error.message).toBe(error.reason.message)
      c.check?.(error.reason)
      // The Result API reports the same error instead of throwing.
      const result: Result.Result<unknown, Wire.WireError> = c.kind === "request"
        ? Wire.decodeRequest(body)
        : Wire.decodeResponse(body)
      expect(Result.isFailure(result) && result.failure.reason._tag).toBe(c.reason)
    })
  }

  it("decodes normally after a failure (no state leaks between calls)", () => {
    expect(() => decodeRequest(bytes(0x12, 0x05, 0x0a, 0x01, 0xff, 0x12, 0x00))).toThrow(Wire.WireError)
    expect(normRequest(decodeRequest(bytes(0x08, 0x01, 0x1a, 0x01, 0x61)))).toEqual({
      code: 1,
      metadata: new Map(),
      payload: "61"
    })
  })
})

describe("lenient decoding", () => {
  it("skips unknown fields of every wire type, including nested groups", () => {
    const body = fromHex(
      [
        "209601", // field 4 varint
        "0807", // code 7
        "290102030405060708", // field 5 fixed64
        "3202fffe", // field 6 length-delimited (not UTF-8: bytes are not checked)
        "3b", // field 7 group start
        "0801", // a varint inside the group
        "434d0102030444", // nested group 8 holding a fixed32
        "3c", // field 7 group end
        "4d01020304", // field 9 fixed32
        "120d0a016b1805120176" + "2500000000", // an entry with unknown fields 3 and 4
        "f8ffffff0f00", // field 2^29-1, varint
        "1a0170"
      ].join("")
    )
    expect(normRequest(decodeRequest(body))).toEqual({ code: 7, metadata: new Map([["k", "v"]]), payload: "70" })
    const res = decodeResponse(bytes(0x3b, 0x3c, 0x0a, 0x01, 0x65, 0x20, 0x00))
    expect(res.errorMessage).toBe("e")
    // protobufjs agrees on the request.
    const pb = PbRequest.decode(body) as PbMessage
    expect(pb.code).toBe(7)
    expect(fromPb(pb)).toEqual({ metadata: new Map([["k", "v"]]), payload: "70" })
  })

  it("reads a map entry missing its key or value as an empty string", () => {
    expect(decodeRequest(bytes(0x12, 0x03, 0x12, 0x01, 0x76)).metadata).toEqual(new Map([["", "v"]]))
    expect(decodeRequest(bytes(0x12, 0x03, 0x0a, 0x01, 0x6b)).metadata).toEqual(new Map([["k", ""]]))
    expect(decodeResponse(bytes(0x12, 0x00)).metadata).toEqual(new Map([["", ""]]))
  })

  it("lets the last duplicate key win", () => {
    const entry = (
      k: string,
      v: string
    ) => [0x12, 4 + k.length + v.length, 0x0a, k.length, ...Buffer.from(k), 0x12, v.length, ...Buffer.from(v)]
    const body = new Uint8Array([...entry("k", "1"), ...entry("j", "x"), ...entry("k", "2")])
    expect(decodeRequest(body).metadata).toEqual(new Map([["k", "2"], ["j", "x"]]))
    // Key then value, then the key again inside one entry: the last key wins.
    expect(decodeRequest(bytes(0x12, 0x09, 0x0a, 0x01, 0x61, 0x12, 0x01, 0x76, 0x0a, 0x01, 0x62)).metadata).toEqual(
      new Map([["b", "v"]])
    )
  })

  it("lets the last duplicate scalar field win", () => {
    const req = decodeRequest(bytes(0x08, 0x01, 0x1a, 0x01, 0x61, 0x08, 0x02, 0x1a, 0x02, 0x62, 0x63))
    expect(normRequest(req)).toEqual({ code: 2, metadata: new Map(), payload: "6263" })
    const res = decodeResponse(bytes(0x0a, 0x01, 0x61, 0x0a, 0x01, 0x62))
    expect(res.errorMessage).toBe("b")
  })

  it("preserves a UTF-8 BOM at the start of strings", () => {
    const bom = [0xef, 0xbb, 0xbf]
    expect(decodeResponse(bytes(0x0a, 0x04, ...bom, 0x41)).errorMessage).toBe("\uFEFFA")
    const long = [...bom, ...Array.from({ length: 40 }, () => 0x61)]
    expect(decodeResponse(bytes(0x0a, long.length, ...long)).errorMessage).toBe("\uFEFF" + "a".repeat(40))
    const meta = decodeRequest(bytes(0x12, 0x0a, 0x0a, 0x03, ...bom, 0x12, 0x03, ...bom)).metadata
    expect(meta).toEqual(new Map([["\uFEFF", "\uFEFF"]]))
    // And encoding keeps it.
    const res = Response.make({ errorMessage: "\uFEFFA", metadata: { "\uFEFF": "\uFEFF" } })
    expect(normResponse(decodeResponse(Wire.encodeResponseBody(res)))).toEqual(normResponse(res))
  })

  it("takes the low 32 bits of a code beyond int32, like protobufjs and Go", () => {
    const codes: ReadonlyArray<readonly [number, number]> = [
      [2 ** 32 + 5, 5],
      [2 ** 32 - 1, -1],
      [2 ** 31, -(2 ** 31)],
      [2 ** 63, 0]
    ]
    for (const [wide, expected] of codes) {
      const body = bytes(0x08, ...uvarint(wide))
      expect(decodeRequest(body).code).toBe(expected)
      expect((PbRequest.decode(body) as PbMessage).code ?? 0).toBe(expected)
    }
    const tenBytes = bytes(0x08, 0x85, 0x80, 0x80, 0x80, 0x90, 0x80, 0x80, 0x80, 0x80, 0x01) // 2^63 + 2^32 + 5
    expect(tenBytes.length).toBe(11)
    expect(decodeRequest(tenBytes).code).toBe(5)
    expect((PbRequest.decode(tenBytes) as PbMessage).code).toBe(5)
  })

  it("returns the payload as a view of the body", () => {
    const body = Wire.encodeRequestBody(Request.makeUnsafe(1, { payload: "abc" }))
    expect(decodeRequest(body).payload.buffer).toBe(body.buffer)
  })
})

// -----------------------------------------------------------------------------
// encoding
// -----------------------------------------------------------------------------

describe("encoding", () => {
  it("writes int32 codes as Go does, negatives as 10-byte varints", () => {
    expect(hex(Wire.encodeRequest(Request.makeUnsafe(1)))).toBe("020801")
    expect(hex(Wire.encodeRequest(Request.makeUnsafe(-1)))).toBe("0b08ffffffffffffffffff01")
    expect(hex(Wire.encodeRequest(Request.makeUnsafe(-2147483648)))).toBe("0b0880808080f8ffffffff01")
    expect(hex(Wire.encodeRequest(Request.makeUnsafe(0)))).toBe("00")
  })

  it("writes a lone surrogate as U+FFFD and sizes it so", () => {
    const res = Response.make({ errorMessage: "a\uD800b", metadata: { "\uDC00": "x\uD83D" } })
    const body = Wire.encodeResponseBody(res)
    expect(body.length).toBe(Wire.responseBodySize(res))
    const decoded = decodeResponse(body)
    expect(decoded.errorMessage).toBe("a\uFFFDb")
    expect(decoded.metadata).toEqual(new Map([["\uFFFD", "x\uFFFD"]]))
    expect(Wire.utf8Length("a\uD800b")).toBe(5)
    expect(Wire.utf8Length("🚀é")).toBe(6)
  })

  it("sizes varints", () => {
    const samples = [0, 1, 127, 128, 16383, 16384, 2 ** 21 - 1, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 35, 2 ** 53 - 1]
    for (const n of samples) expect(Wire.varintSize(n)).toBe(uvarint(n).length)
  })

  it("gives every encoded frame bytes of its own, even when carved from a shared slab", () => {
    const requests = Array.from(
      { length: 2000 },
      (_, i) => Request.makeUnsafe(i, { payload: "x".repeat(i % 300), metadata: { i: String(i) } })
    )
    const frames = requests.map((r) => Wire.encodeRequest(r))
    const bodies = requests.map((r) => Wire.encodeRequestBody(r))
    for (let i = 0; i < requests.length; i++) {
      const { frames: decoded } = feed([frames[i]!])
      expect(normRequest(decodeRequest(decoded[0]!))).toEqual(normRequest(requests[i]!))
      expect(normRequest(decodeRequest(bodies[i]!))).toEqual(normRequest(requests[i]!))
    }
  })

  it("encodes an empty batch as no bytes", () => {
    expect(Wire.encodeRequests([]).length).toBe(0)
    expect(Wire.encodeResponses([]).length).toBe(0)
  })
})

// -----------------------------------------------------------------------------
// protobufjs as the reference codec
// -----------------------------------------------------------------------------

describe("against protobufjs", () => {
  it("protobufjs writes both key and value of empty map entries, as Go does", () => {
    const pb = PbRequest.encode(PbRequest.create({ metadata: { "": "" } })).finish()
    expect(hex(pb)).toBe("12040a001200")
    expect(hex(Wire.encodeRequestBody(Request.makeUnsafe(0, { metadata: { "": "" } })))).toBe("12040a001200")
  })

  it("requests: our encoding decodes the same in protobufjs, and bytes match", () => {
    let compared = 0
    fc.assert(
      fc.property(requestArb, (req) => {
        const body = Wire.encodeRequestBody(req)
        expect(body.length).toBe(Wire.requestBodySize(req))
        const frame = Wire.encodeRequest(req)
        expect(hex(frame)).toBe(hex(new Uint8Array([...uvarint(body.length), ...body])))
        const pb = PbRequest.decode(body) as PbMessage
        expect({ code: pb.code ?? 0, ...fromPb(pb) }).toEqual(normRequest(req))
        const pbMeta = toPbMetadata(req.metadata)
        if (sameKeyOrder(req.metadata, pbMeta)) {
          compared++
          const theirs = PbRequest.encode({ code: req.code, metadata: pbMeta, payload: req.payload }).finish()
          expect(sameBytes(theirs, body)).toBe(true)
        }
      }),
      { numRuns: 1000 }
    )
    expect(compared).toBeGreaterThan(500)
  })

  it("requests: protobufjs's encoding decodes the same here", () => {
    fc.assert(
      fc.property(requestArb, (req) => {
        const bytes = PbRequest.encode({ code: req.code, metadata: toPbMetadata(req.metadata), payload: req.payload })
          .finish()
        expect(normRequest(decodeRequest(bytes))).toEqual(normRequest(req))
      }),
      { numRuns: 1000 }
    )
  })

  it("responses: our encoding decodes the same in protobufjs, and bytes match", () => {
    let compared = 0
    fc.assert(
      fc.property(responseArb, (res) => {
        const body = Wire.encodeResponseBody(res)
        expect(body.length).toBe(Wire.responseBodySize(res))
        const pb = PbResponse.decode(body) as PbMessage
        expect({ errorMessage: pb.errorMessage ?? "", ...fromPb(pb) }).toEqual(normResponse(res))
        const pbMeta = toPbMetadata(res.metadata)
        if (sameKeyOrder(res.metadata, pbMeta)) {
          compared++
          const theirs = PbResponse.encode({ errorMessage: res.errorMessage, metadata: pbMeta, payload: res.payload })
            .finish()
          expect(sameBytes(theirs, body)).toBe(true)
        }
      }),
      { numRuns: 1000 }
    )
    expect(compared).toBeGreaterThan(500)
  })

  it("responses: protobufjs's encoding decodes the same here", () => {
    fc.assert(
      fc.property(responseArb, (res) => {
        const bytes = PbResponse.encode({
          errorMessage: res.errorMessage,
          metadata: toPbMetadata(res.metadata),
          payload: res.payload
        }).finish()
        expect(normResponse(decodeResponse(bytes))).toEqual(normResponse(res))
      }),
      { numRuns: 1000 }
    )
  })

  it("unknown fields around the known ones are skipped, as protobufjs does", () => {
    fc.assert(
      fc.property(requestArb, responseArb, unknownFieldsArb, unknownFieldsArb, (req, res, before, after) => {
        const reqBody = new Uint8Array([...before, ...Wire.encodeRequestBody(req), ...after])
        expect(normRequest(decodeRequest(reqBody))).toEqual(normRequest(req))
        const pbReq = PbRequest.decode(reqBody) as PbMessage
        expect({ code: pbReq.code ?? 0, ...fromPb(pbReq) }).toEqual(normRequest(req))
        const resBody = new Uint8Array([...before, ...Wire.encodeResponseBody(res), ...after])
        expect(normResponse(decodeResponse(resBody))).toEqual(normResponse(res))
      }),
      { numRuns: 1000 }
    )
  })

  it("a batch is the concatenation of single frames", () => {
    fc.assert(
      fc.property(fc.array(requestArb, { maxLength: 6 }), fc.array(responseArb, { maxLength: 6 }), (reqs, ress) => {
        expect(hex(Wire.encodeRequests(reqs))).toBe(reqs.map((r) => hex(Wire.encodeRequest(r))).join(""))
        expect(hex(Wire.encodeResponses(ress))).toBe(ress.map((r) => hex(Wire.encodeResponse(r))).join(""))
      }),
      { numRuns: 1000 }
    )
  })
})
