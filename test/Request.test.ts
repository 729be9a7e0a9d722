import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Message from "../src/Message.ts"
import * as Request from "../src/Request.ts"

const reasonTag = (thunk: () => unknown): string => {
  try {
    thunk()
  } catch (e) {
    if (e instanceof Message.MessageError) return e.reason._tag
    throw e
  }
  return "none"
}

describe("Request.make", () => {
  it.effect("make is an Effect: a bad code is a typed failure, not a throw inside Effect.gen", () =>
    Effect.gen(function*() {
      const ok = yield* Request.make(2, { payload: "hi" })
      expect(Request.text(ok)).toBe("hi")
      const error = yield* Effect.flip(Request.make(2 ** 31))
      expect(error).toBeInstanceOf(Message.MessageError)
      expect(error.reason._tag).toBe("InvalidCode")
    }))

  it("defaults to empty metadata and payload", () => {
    const req = Request.makeUnsafe(3)
    expect(req.code).toBe(3)
    expect(req.metadata).toBe(Message.emptyMetadata)
    expect(req.payload).toBe(Message.emptyPayload)
  })

  it("takes a string or bytes payload and metadata", () => {
    const bytes = new Uint8Array([0xde, 0xad])
    const req = Request.makeUnsafe(-7, { payload: bytes, metadata: { trace: "abc" } })
    expect(req.code).toBe(-7)
    expect(req.payload).toBe(bytes)
    expect(Request.getMeta(req, "trace")).toBe("abc")
    expect(Request.text(Request.makeUnsafe(2, { payload: "héllo" }))).toBe("héllo")
  })

  it("makeUnsafe throws MessageError for invalid parts", () => {
    expect(reasonTag(() => Request.makeUnsafe(2 ** 31))).toBe("InvalidCode")
    expect(reasonTag(() => Request.makeUnsafe(-(2 ** 31) - 1))).toBe("InvalidCode")
    expect(reasonTag(() => Request.makeUnsafe(1.5))).toBe("InvalidCode")
    expect(reasonTag(() => Request.makeUnsafe(Number.NaN))).toBe("InvalidCode")
    expect(reasonTag(() => Request.makeUnsafe("1" as unknown as number))).toBe("InvalidCode")
    expect(reasonTag(() => Request.makeUnsafe(1, { payload: 5 as unknown as string }))).toBe("InvalidPayload")
    expect(reasonTag(() => Request.makeUnsafe(1, { payload: null as unknown as string }))).toBe("InvalidPayload")
    expect(reasonTag(() => Request.makeUnsafe(1, { payload: {} as unknown as string }))).toBe("InvalidPayload")
    expect(reasonTag(() => Request.makeUnsafe(1, { metadata: { k: 1 as unknown as string } }))).toBe("InvalidMetadata")
  })

  it("makeUnchecked keeps its parts as they are", () => {
    const meta = new Map([["k", "v"]])
    const payload = new Uint8Array([1])
    const req = Request.makeUnchecked(5, meta, payload)
    expect(req.metadata).toBe(meta)
    expect(req.payload).toBe(payload)
  })
})

describe("Request helpers", () => {
  it("withMeta returns a copy and leaves the original alone", () => {
    const req = Request.makeUnsafe(1, { metadata: { a: "1" } })
    const next = Request.withMeta(req, "b", "2")
    expect(next).not.toBe(req)
    expect(Request.getMeta(req, "b")).toBeUndefined()
    expect(Request.getMeta(next, "a")).toBe("1")
    expect(Request.getMeta(next, "b")).toBe("2")
    expect(next.code).toBe(1)
    expect(Request.getMeta(Request.withMeta(next, "a", "x"), "a")).toBe("x")
  })

  it("withMeta works on the shared empty metadata without mutating it", () => {
    const next = Request.withMeta(Request.makeUnsafe(1), "k", "v")
    expect(Request.getMeta(next, "k")).toBe("v")
    expect(Message.emptyMetadata.size).toBe(0)
  })

  it("withPayload replaces the payload only", () => {
    const req = Request.makeUnsafe(1, { metadata: { a: "1" }, payload: "old" })
    const next = Request.withPayload(req, "new")
    expect(Request.text(req)).toBe("old")
    expect(Request.text(next)).toBe("new")
    expect(next.metadata).toBe(req.metadata)
    expect(reasonTag(() => Request.withPayload(req, 1 as unknown as string))).toBe("InvalidPayload")
  })

  it("text decodes UTF-8, keeps a BOM and replaces invalid bytes", () => {
    expect(Request.text(Request.makeUnsafe(1, { payload: new Uint8Array([0xef, 0xbb, 0xbf, 0x41]) }))).toBe("\uFEFFA")
    expect(Request.text(Request.makeUnsafe(1, { payload: new Uint8Array([0x61, 0xff]) }))).toBe("a\uFFFD")
    expect(Request.text(Request.makeUnsafe(1))).toBe("")
  })
})
