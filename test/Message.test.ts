import { describe, expect, it } from "@effect/vitest"
import * as Message from "../src/Message.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as Wire from "../src/Wire.ts"

const reasonOf = (thunk: () => unknown): Message.MessageErrorReason => {
  try {
    thunk()
  } catch (e) {
    if (e instanceof Message.MessageError) return e.reason
    throw e
  }
  throw new Error("expected a MessageError")
}

const awkwardKeys = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", ""] as const

describe("MessageError", () => {
  it("rejects codes that are not int32 with InvalidCode", () => {
    for (const code of [2 ** 31, -(2 ** 31) - 1, 1.5, Number.NaN, Infinity, -Infinity, "1", null, undefined, 1n]) {
      const reason = reasonOf(() => Message.checkCode(code))
      expect(reason._tag).toBe("InvalidCode")
      expect(reason).toMatchObject({ code })
    }
  })

  it("accepts every int32, including the extremes", () => {
    for (const code of [0, 1, -1, 2 ** 31 - 1, -(2 ** 31)]) expect(Message.checkCode(code)).toBe(code)
  })

  it("rejects payloads that are not bytes or strings with InvalidPayload", () => {
    const cases: ReadonlyArray<readonly [unknown, string]> = [
      [42, "number"],
      [null, "null"],
      [{}, "object"],
      [[1, 2], "object"],
      [new ArrayBuffer(2), "object"],
      [true, "boolean"]
    ]
    for (const [payload, received] of cases) {
      const reason = reasonOf(() => Message.toPayload(payload))
      expect(reason._tag).toBe("InvalidPayload")
      expect(reason).toMatchObject({ received })
    }
  })

  it("rejects non-string metadata with InvalidMetadata naming the key", () => {
    const bad: ReadonlyArray<readonly [unknown, string]> = [
      [{ a: 1 }, "a"],
      [new Map<unknown, unknown>([["k", 1]]), "k"],
      [new Map<unknown, unknown>([[1, "v"]]), "1"],
      [[["x", null]], "x"],
      [JSON.parse('{"__proto__":{"polluted":"x"}}'), "__proto__"]
    ]
    for (const [input, key] of bad) {
      const reason = reasonOf(() => Message.toMetadata(input as Message.MetadataInput))
      expect(reason._tag).toBe("InvalidMetadata")
      expect(reason).toMatchObject({ key })
    }
    expect(reasonOf(() => Message.setMetadata(Message.emptyMetadata, "k", 1 as unknown as string))._tag).toBe(
      "InvalidMetadata"
    )
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined()
  })

  it("is an Error whose message is its reason's", () => {
    try {
      Request.makeUnsafe(2 ** 31)
      expect.fail("make accepted 2**31")
    } catch (e) {
      expect(e).toBeInstanceOf(Error)
      expect(e).toBeInstanceOf(Message.MessageError)
      const error = e as Message.MessageError
      expect(error._tag).toBe("MessageError")
      expect(error.message).toBe(error.reason.message)
      expect(error.message).toContain("2147483648")
    }
  })
})

describe("payloads", () => {
  it("keeps bytes as they are and encodes strings as UTF-8", () => {
    const bytes = new Uint8Array([1, 2, 3])
    expect(Message.toPayload(bytes)).toBe(bytes)
    expect([...Message.toPayload("é🚀")]).toEqual([0xc3, 0xa9, 0xf0, 0x9f, 0x9a, 0x80])
    expect(Message.toPayload("")).toBe(Message.emptyPayload)
    expect(Message.toPayload(undefined)).toBe(Message.emptyPayload)
    const buffer = Buffer.from("abc")
    expect(Message.toPayload(buffer)).toBe(buffer)
  })
})

describe("metadata", () => {
  it("accepts a Map, pairs or a record, and copies it", () => {
    const source = new Map([["a", "1"]])
    const fromMap = Message.toMetadata(source)
    expect(fromMap).not.toBe(source)
    source.set("b", "2")
    expect(fromMap).toEqual(new Map([["a", "1"]]))
    expect(Message.toMetadata([["a", "1"], ["b", "2"]])).toEqual(new Map([["a", "1"], ["b", "2"]]))
    expect(Message.toMetadata({ a: "1" })).toEqual(new Map([["a", "1"]]))
    expect(Message.toMetadata(undefined)).toBe(Message.emptyMetadata)
    expect(Message.toMetadata({})).toBe(Message.emptyMetadata)
  })

  it("reads only a record's own enumerable string keys", () => {
    const proto = { inherited: "no" }
    const record = Object.create(proto) as Record<string | symbol, string>
    record["own"] = "yes"
    record[Symbol("s")] = "no"
    Object.defineProperty(record, "hidden", { value: "no", enumerable: false })
    expect(Message.toMetadata(record)).toEqual(new Map([["own", "yes"]]))
  })

  it("setMetadata returns a copy", () => {
    const original = Message.toMetadata({ a: "1" })
    const updated = Message.setMetadata(original, "b", "2")
    expect(original).toEqual(new Map([["a", "1"]]))
    expect(updated).toEqual(new Map([["a", "1"], ["b", "2"]]))
    expect(Message.setMetadata(updated, "a", "x").get("a")).toBe("x")
  })

  it("round-trips awkward keys as data through make, the wire and metadataToRecord", () => {
    const pairs = awkwardKeys.map((k, i) => [k, `v${i}`] as const)
    const req = Request.makeUnsafe(9, { metadata: pairs })
    expect([...req.metadata]).toEqual(pairs)
    const decoded = Wire.decodeRequestUnsafe(Wire.encodeRequestBody(req))
    expect([...decoded.metadata]).toEqual(pairs)
    const res = Wire.decodeResponseUnsafe(Wire.encodeResponseBody(Response.make({ metadata: req.metadata })))
    expect([...res.metadata]).toEqual(pairs)

    const record = Message.metadataToRecord(decoded.metadata)
    expect(Object.getPrototypeOf(record)).toBeNull()
    expect(Object.keys(record)).toEqual([...awkwardKeys])
    for (const [k, v] of pairs) {
      expect(Object.prototype.hasOwnProperty.call(record, k)).toBe(true)
      expect(record[k]).toBe(v)
    }
    expect(JSON.parse(JSON.stringify(record))).toMatchObject({ constructor: "v1", toString: "v2" })
  })

  it("never pollutes prototypes with JSON-parsed input", () => {
    // JSON.parse makes "__proto__" an own property, not a prototype change.
    const hostile = JSON.parse('{"__proto__":"x","constructor":"y"}') as Record<string, string>
    const req = Request.makeUnsafe(1, { metadata: hostile })
    expect(Request.getMeta(req, "__proto__")).toBe("x")
    expect(Request.getMeta(req, "constructor")).toBe("y")
    const withMeta = Request.withMeta(req, "__proto__", "z")
    expect(Request.getMeta(withMeta, "__proto__")).toBe("z")
    const record = Message.metadataToRecord(Wire.decodeRequestUnsafe(Wire.encodeRequestBody(withMeta)).metadata)
    expect(record["__proto__"]).toBe("z")
    expect(Object.getPrototypeOf(record)).toBeNull()

    // A nested object under "__proto__" is refused instead of merged.
    const nested = JSON.parse('{"__proto__":{"polluted":"x"}}') as Record<string, string>
    expect(() => Request.makeUnsafe(1, { metadata: nested })).toThrow(Message.MessageError)
    expect(() => Response.make({ metadata: nested })).toThrow(Message.MessageError)

    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined()
    expect(({} as Record<string, unknown>)["x"]).toBeUndefined()
    expect(Object.getPrototypeOf({})).toBe(Object.prototype)
  })

  it("gives undefined, not inherited members, for absent keys", () => {
    const req = Request.makeUnsafe(1)
    for (const key of ["__proto__", "constructor", "toString"]) expect(Request.getMeta(req, key)).toBeUndefined()
    expect(Message.metadataToRecord(req.metadata)["toString"]).toBeUndefined()
  })
})
