// Nested unknown groups (issue 11, item 3): skipping them stops at Go's depth
// of 10,000, allocates nothing per level, and still checks every end tag
// against its start.
import { describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as Wire from "../../src/Wire.ts"
import { concat, gc, rng, seedFromEnv, tag, uvarint } from "./support.ts"

const seed = seedFromEnv()

const reasonOf = (body: Uint8Array) => {
  const r = Wire.decodeRequest(body)
  return Result.isFailure(r) ? r.failure.reason : undefined
}

/** `depth` nested groups of random field numbers (some ≥ 2^32), closed unless `open`. */
const nested = (depth: number, fieldOf: (level: number) => number, open = false): Uint8Array => {
  const starts: Array<Array<number>> = []
  const ends: Array<Array<number>> = []
  for (let i = 0; i < depth; i++) {
    starts.push(tag(fieldOf(i), 3))
    ends.unshift(tag(fieldOf(i), 4))
  }
  return concat([...starts, ...(open ? [] : ends)])
}

describe(`nested groups (seed ${seed})`, () => {
  const r = rng(seed)
  const fieldOf = (level: number) => (level % 7 === 3 ? 2 ** 33 + level : 4 + ((level * 2654435761) % 1000))

  it("exactly maxGroupDepth levels are skipped; one more is refused at its start tag", () => {
    const deepest = nested(Wire.maxGroupDepth, fieldOf)
    const body = concat([tag(1, 0), [7], deepest, tag(3, 2), [1, 0x61]])
    const ok = Wire.decodeRequest(body)
    expect(Result.isSuccess(ok) && ok.success.code).toBe(7)
    const over = nested(Wire.maxGroupDepth + 1, fieldOf)
    const reason = reasonOf(concat([tag(1, 0), [7], over]))
    expect(reason?._tag).toBe("NestingTooDeep")
    // Stopped at the first start tag past the limit: nothing after it was read.
    const offsetOfLast = 2 + nested(Wire.maxGroupDepth, fieldOf, true).length
    expect(reason).toMatchObject({ limit: Wire.maxGroupDepth, offset: offsetOfLast })
    expect(reason?.message).toContain("10000")
  })

  it("every level's end tag must match its start, at any depth", () => {
    for (let run = 0; run < 20; run++) {
      const depth = r.range(2, Wire.maxGroupDepth)
      const body = nested(depth, fieldOf)
      // Corrupt the end tag of a random level into another field number.
      const starts = nested(depth, fieldOf, true).length
      const level = r.int(depth)
      const ends: Array<Array<number>> = []
      for (let i = depth - 1; i >= 0; i--) ends.push(tag(i === level ? fieldOf(i) + 1 : fieldOf(i), 4))
      expect(reasonOf(body)).toBeUndefined()
      expect(reasonOf(concat([body.subarray(0, starts), ...ends]))?._tag).toBe("WrongWireType")
    }
  })

  it("a frame of unclosed group starts costs the depth limit, not its length", () => {
    // 6 MiB of group starts with mixed field numbers and unknown fields between them.
    const piece = concat([tag(9, 3), tag(21, 0), [0x96, 0x01], tag(2 ** 20, 3), tag(6, 5), [1, 2, 3, 4]])
    const count = Math.floor((6 << 20) / piece.length)
    const body = new Uint8Array(count * piece.length)
    for (let i = 0; i < count; i++) body.set(piece, i * piece.length)
    gc()
    const before = process.memoryUsage()
    const start = performance.now()
    let peak = 0
    for (let i = 0; i < 20; i++) {
      expect(reasonOf(body)?._tag).toBe("NestingTooDeep")
      peak = Math.max(peak, process.memoryUsage().heapUsed - before.heapUsed)
    }
    const perFrame = (performance.now() - start) / 20
    // The frame again, with each start closed at once: 6 MiB of groups at depth ≤ 2.
    const flat = concat([tag(9, 3), tag(9, 4)])
    const wide = new Uint8Array(Math.floor((6 << 20) / flat.length) * flat.length)
    for (let i = 0; i < wide.length; i += flat.length) wide.set(flat, i)
    const start2 = performance.now()
    expect(reasonOf(wide)).toBeUndefined()
    const wideMs = performance.now() - start2
    console.log(
      `[reliability] 6 MiB of unclosed group starts: refused at depth ${Wire.maxGroupDepth} in ${
        perFrame.toFixed(2)
      } ms per frame, heap +${(peak / 1e6).toFixed(1)} MB over 20 frames; 6 MiB of flat groups skipped in ${
        wideMs.toFixed(0)
      } ms`
    )
    // A few MB at most, whatever the frame's length: nothing is allocated per level.
    expect(peak).toBeLessThan(16e6)
  })

  it("groups inside metadata entries are bounded the same way", () => {
    const inner = nested(Wire.maxGroupDepth + 1, () => 3, true)
    const entry = concat([tag(2, 2), uvarint(inner.length + 1), inner, tag(3, 4)])
    expect(reasonOf(entry)?._tag).toBe("NestingTooDeep")
  })
})
