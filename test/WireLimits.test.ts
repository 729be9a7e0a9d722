// Metadata decode limits (issue 11, item 1): entries and key + value bytes are
// counted while a body is decoded, and decoding stops at the first entry past
// a limit, for requests and responses alike.
import { describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import * as Wire from "../src/Wire.ts"

const utf8 = new TextEncoder()

const varint = (n: number): Array<number> => {
  const out: Array<number> = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}

const field = (
  tag: number,
  bytes: ArrayLike<number>
): Array<number> => [tag, ...varint(bytes.length), ...Array.from(bytes)]

const entry = (key: string | Uint8Array, value: string | Uint8Array): Array<number> =>
  field(0x12, [
    ...field(0x0a, typeof key === "string" ? utf8.encode(key) : key),
    ...field(0x12, typeof value === "string" ? utf8.encode(value) : value)
  ])

const body = (...parts: ReadonlyArray<ReadonlyArray<number>>): Uint8Array => new Uint8Array(parts.flat())

const limitOf = (decode: () => unknown) => {
  try {
    decode()
  } catch (e) {
    if (e instanceof Wire.WireError && e.reason._tag === "MetadataLimit") return e
    throw e
  }
  throw new Error("decoded without reaching a limit")
}

const decoders = [
  ["request", (b: Uint8Array, l?: Wire.DecodeLimits) => Wire.decodeRequestUnsafe(b, l).metadata],
  ["response", (b: Uint8Array, l?: Wire.DecodeLimits) => Wire.decodeResponseUnsafe(b, l).metadata]
] as const

describe("Wire decode limits", () => {
  for (const [kind, decode] of decoders) {
    it(`${kind}: exactly maxMetadataEntries entries pass, one more stops decoding`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 5 }), (max, distinct) => {
          const limits = { maxMetadataEntries: max, maxMetadataBytes: Infinity }
          // Duplicates count: each costs as much to decode as a new key.
          const entries = Array.from({ length: max }, (_, i) => entry(`k${i % distinct}`, "v"))
          expect(decode(body(...entries), limits).size).toBe(Math.min(max, distinct))
          const error = limitOf(() => decode(body(...entries, entry("x", "y")), limits))
          expect(error.reason).toMatchObject({ limit: "entries", max })
          expect(error.message).toContain("maxMetadataEntries")
          expect(error.message).toContain(String(max))
          expect(error.isFraming).toBe(false)
        }),
        { numRuns: 200 }
      )
    })

    it(`${kind}: key + value bytes up to maxMetadataBytes pass, one byte more stops decoding`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 })), { maxLength: 20 }),
          (pairs) => {
            const total = pairs.reduce((n, [k, v]) => n + utf8.encode(k).length + utf8.encode(v).length, 0)
            const entries = pairs.map(([k, v]) => entry(k, v))
            const exact = { maxMetadataEntries: Infinity, maxMetadataBytes: total }
            expect(decode(body(...entries), exact).size).toBe(new Set(pairs.map(([k]) => k)).size)
            const under = { maxMetadataEntries: Infinity, maxMetadataBytes: total - 1 }
            if (total === 0) return
            const error = limitOf(() => decode(body(...entries), under))
            expect(error.reason).toMatchObject({ limit: "bytes", max: total - 1 })
            expect(error.message).toContain("maxMetadataBytes")
          }
        ),
        { numRuns: 300 }
      )
    })

    it(`${kind}: nothing after the entry past a limit is decoded`, () => {
      const limits = { maxMetadataEntries: 2, maxMetadataBytes: 8 }
      // Invalid UTF-8 and a broken field after the limit: the limit is what is reported.
      const garbage = [0x0f, 0xff, 0xff]
      expect(limitOf(() => decode(body(entry("a", "b"), entry("c", "d"), entry("e", "f"), garbage), limits)).reason)
        .toMatchObject({ limit: "entries" })
      // The key's length is charged before its bytes are read (they are not valid UTF-8).
      const bad = new Uint8Array(9).fill(0xff)
      expect(limitOf(() => decode(body(entry(bad, ""), garbage), limits)).reason).toMatchObject({ limit: "bytes" })
    })
  }

  it("defaultDecodeLimits apply when no limits are given, also to the Result variants", () => {
    const { maxMetadataBytes, maxMetadataEntries } = Wire.defaultDecodeLimits
    const many = Array.from({ length: maxMetadataEntries + 1 }, (_, i) => entry(String(i), ""))
    expect(limitOf(() => Wire.decodeRequestUnsafe(body(...many))).reason).toMatchObject({ limit: "entries" })
    const r = Wire.decodeResponse(body(...many))
    expect(Result.isFailure(r) && r.failure.reason._tag).toBe("MetadataLimit")
    const big = body(entry("k", "v".repeat(maxMetadataBytes)))
    expect(Result.isFailure(Wire.decodeRequest(big))).toBe(true)
    expect(Wire.decodeRequestUnsafe(big, Wire.noDecodeLimits).metadata.get("k")?.length).toBe(maxMetadataBytes)
    // Limits reset per message: many small messages in a row each get the full allowance.
    const atLimit = body(...many.slice(1))
    for (let i = 0; i < 3; i++) expect(Wire.decodeRequestUnsafe(atLimit).metadata.size).toBe(maxMetadataEntries)
  })

  it("a frame of tiny distinct keys costs the limit, not its length", () => {
    // 4 MiB of 1-byte-key entries (~0.7 million): decoding stops after 1024 of them.
    const one = entry("", "")
    const count = Math.floor((4 << 20) / one.length)
    const frame = new Uint8Array(count * one.length)
    for (let i = 0; i < count; i++) frame.set(one, i * one.length)
    const start = performance.now()
    limitOf(() => Wire.decodeRequestUnsafe(frame))
    const limited = performance.now() - start
    const start2 = performance.now()
    Wire.decodeRequestUnsafe(frame, Wire.noDecodeLimits)
    const unlimited = performance.now() - start2
    console.log(
      `[reliability] metadata bomb of ${count} entries (4 MiB): default limits stop after `
        + `${Wire.defaultDecodeLimits.maxMetadataEntries} in ${limited.toFixed(2)} ms; unlimited ${
          unlimited.toFixed(1)
        } ms`
    )
  })

  it("FrameDecoder.push stops at maxFrames on a frame boundary; pushing the rest gives the same frames", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 50 }),
        (bodies, maxFrames, chunkSize) => {
          const stream = new Uint8Array(bodies.flatMap((b) => [...varint(b.length), ...b]))
          const decoder = new Wire.FrameDecoder()
          const got: Array<Array<number>> = []
          for (let at = 0; at < stream.length; at += chunkSize) {
            let rest = stream.subarray(at, at + chunkSize)
            while (true) {
              const out: Array<Uint8Array> = []
              expect(decoder.push(rest, out, maxFrames)).toBeUndefined()
              expect(out.length).toBeLessThanOrEqual(maxFrames)
              got.push(...out.map((f) => Array.from(f)))
              if (decoder.consumed === rest.length) break
              expect(out.length).toBe(maxFrames)
              rest = rest.subarray(decoder.consumed)
            }
          }
          expect(got).toEqual(bodies.map((b) => Array.from(b)))
        }
      ),
      { numRuns: 500 }
    )
  })
})
