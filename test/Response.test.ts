import { describe, expect, it } from "@effect/vitest"
import * as Message from "../src/Message.ts"
import * as Response from "../src/Response.ts"
import * as Wire from "../src/Wire.ts"

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex")

describe("Response constructors", () => {
  it("make defaults to the empty success response", () => {
    const res = Response.make()
    expect(res.errorMessage).toBe("")
    expect(res.metadata).toBe(Message.emptyMetadata)
    expect(res.payload).toBe(Message.emptyPayload)
    expect(Response.isError(res)).toBe(false)
    expect(hex(Wire.encodeResponse(res))).toBe("00")
    expect(Response.empty).toEqual(res)
  })

  it("make takes all three fields", () => {
    const res = Response.make({ errorMessage: "e", metadata: { m: "n" }, payload: "p" })
    expect(Response.isError(res)).toBe(true)
    expect(Response.getMeta(res, "m")).toBe("n")
    expect(Response.text(res)).toBe("p")
    // Go vector res_error_meta_payload.
    expect(hex(Wire.encodeResponse(res))).toBe("0e0a016512060a016d12016e1a0170")
  })

  it("make throws MessageError on a bad payload or metadata", () => {
    expect(() => Response.make({ payload: 1 as unknown as string })).toThrow(Message.MessageError)
    expect(() => Response.make({ metadata: { k: null as unknown as string } })).toThrow(Message.MessageError)
  })

  it("ok carries a payload and no error", () => {
    const res = Response.ok("PONG")
    expect(Response.isError(res)).toBe(false)
    expect(Response.text(res)).toBe("PONG")
    expect(hex(Wire.encodeResponse(res))).toBe("061a04504f4e47") // Go vector res_payload_pong
    const bytes = new Uint8Array([1, 2])
    expect(Response.ok(bytes).payload).toBe(bytes)
    expect(() => Response.ok(null as unknown as string)).toThrow(Message.MessageError)
  })

  it("error takes a string or anything with a message", () => {
    expect(Response.error("something went wrong").errorMessage).toBe("something went wrong")
    expect(Response.error(new Error("boom")).errorMessage).toBe("boom")
    expect(Response.error({ message: "tagged" }).errorMessage).toBe("tagged")
    const res = Response.error("something went wrong")
    expect(Response.isError(res)).toBe(true)
    expect(res.payload.length).toBe(0)
    expect(res.metadata.size).toBe(0)
    expect(hex(Wire.encodeResponse(res))).toBe("160a14736f6d657468696e672077656e742077726f6e67") // res_error_only
  })

  it("an empty error message is not an error (as in Go, it is not even sent)", () => {
    const res = Response.error("")
    expect(Response.isError(res)).toBe(false)
    expect(hex(Wire.encodeResponse(res))).toBe("00")
  })
})

describe("Response.errorf", () => {
  const cases: ReadonlyArray<readonly [string, ReadonlyArray<unknown>, string]> = [
    ["unknown command code %d", [424242], "unknown command code 424242"],
    ["%d", [-7], "-7"],
    ["%d", [12345678901234567890n], "12345678901234567890"],
    ["%d", ["x"], "%!d(x)"],
    ["%d", [Number.NaN], "%!d(NaN)"],
    ["%s and %v", ["a", 1], "a and 1"],
    ["%v", [new Error("boom")], "boom"],
    ["%s", [null], "null"],
    ["%q", ['a"b'], '"a\\"b"'],
    ["100%%", [], "100%"],
    ["%s %s", ["only"], "only %!s(MISSING)"],
    ["%x stays", [1], "%x stays"],
    ["no verbs", [1, 2], "no verbs"]
  ]
  for (const [template, args, expected] of cases) {
    it(`${JSON.stringify(template)} with ${args.length} args → ${JSON.stringify(expected)}`, () => {
      const res = Response.errorf(template, ...args)
      expect(res.errorMessage).toBe(expected)
      expect(res.payload.length).toBe(0)
    })
  }

  it("builds the server's unknown-command reply byte for byte (Go vector res_unknown_command)", () => {
    expect(hex(Wire.encodeResponse(Response.errorf("unknown command code %d", 424242)))).toBe(
      "1d0a1b756e6b6e6f776e20636f6d6d616e6420636f646520343234323432"
    )
  })
})

describe("Response helpers", () => {
  it("withError keeps payload and metadata, so all three travel (Go vector res_error_meta_payload)", () => {
    const filled = Response.withMeta(Response.ok("p"), "m", "n")
    const failed = Response.withError(filled, new Error("e"))
    expect(failed.errorMessage).toBe("e")
    expect(Response.text(failed)).toBe("p")
    expect(Response.getMeta(failed, "m")).toBe("n")
    expect(Response.isError(filled)).toBe(false)
    expect(hex(Wire.encodeResponse(failed))).toBe("0e0a016512060a016d12016e1a0170")
    expect(Response.withError(filled, "plain").errorMessage).toBe("plain")
  })

  it("withMeta and withPayload return copies", () => {
    const base = Response.ok("a")
    const meta = Response.withMeta(base, "k", "v")
    const payload = Response.withPayload(meta, "b")
    expect(Response.getMeta(base, "k")).toBeUndefined()
    expect(Response.getMeta(payload, "k")).toBe("v")
    expect(Response.text(meta)).toBe("a")
    expect(Response.text(payload)).toBe("b")
    expect(Response.getMeta(Response.withMeta(meta, "k", "w"), "k")).toBe("w")
    expect(Response.getMeta(meta, "k")).toBe("v")
  })

  it("text decodes UTF-8 and keeps a BOM", () => {
    expect(Response.text(Response.ok(new Uint8Array([0xef, 0xbb, 0xbf, 0x42])))).toBe("\uFEFFB")
    expect(Response.text(Response.ok(new Uint8Array([0xc3])))).toBe("\uFFFD")
  })
})
