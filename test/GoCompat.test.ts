// Frames captured from Go quasizero (test/fixtures/wire-vectors.json) sent to
// our server over TCP: every request decodes, and handlers that do what the Go
// capture server did produce the very bytes Go produced.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Handlers from "../src/Handlers.ts"
import * as Response from "../src/Response.ts"
import { encodeResponse } from "../src/Wire.ts"
import * as Harness from "./support/harness.ts"
import * as Raw from "./support/rawClient.ts"

interface Vector {
  readonly name: string
  readonly kind: "request" | "response"
  readonly frame_hex: string
  readonly frame_hex_variants?: ReadonlyArray<string>
  readonly fields: { readonly payload_b64: string; readonly code?: number; readonly error_message?: string }
}

const vectors: ReadonlyArray<Vector> = JSON.parse(
  Fs.readFileSync(new URL("./fixtures/wire-vectors.json", import.meta.url), "utf8")
)
const byName = new Map(vectors.map((v) => [v.name, v]))
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")
const payloadOf = (name: string) => Buffer.from(byName.get(name)!.fields.payload_b64, "base64")

// Handlers reproducing what the Go capture server answered, one per code.
const goLike: ReadonlyArray<readonly [number, Handlers.Handler<unknown>]> = [
  [0, () => Effect.void],
  [1, () => Effect.succeed("PONG")],
  [4, (req) => Effect.succeed(Response.makeUnchecked("", req.metadata, new TextEncoder().encode("META")))],
  [100, () => Effect.fail({ message: "something went wrong" })],
  [101, () => Effect.fail({ message: byName.get("res_error_unicode")!.fields.error_message! })],
  [102, Handlers.writer((_req, res) => Effect.suspend(() => (res.set("partial"), Effect.fail("partial failure"))))],
  [103, Handlers.writer((_req, res) => Effect.suspend(() => (res.setMeta("m", "n"), res.set("p"), Effect.fail("e"))))],
  [104, () => Effect.succeed(payloadOf("res_payload_binary_0_255"))],
  [105, () => Effect.succeed(payloadOf("res_large_1MiB"))],
  [106, () => Effect.succeed(Response.make({ payload: "META", metadata: [["x", "1"], ["y", "2"]] }))]
]

const cases: ReadonlyArray<readonly [request: string, response: string]> = [
  ["req_empty", "res_empty"],
  ["req_code_1", "res_payload_pong"],
  ["req_meta_single", "res_meta_payload"]
]

describe("compatibility with Go quasizero", () => {
  it.live("replies to captured Go requests byte-for-byte like Go", () =>
    Effect.gen(function*() {
      const { port } = yield* Harness.tcp(undefined, goLike)
      const client = yield* Raw.connect(port)
      for (const [request, response] of cases) {
        yield* client.write(Buffer.from(byName.get(request)!.frame_hex, "hex"))
        const [reply] = yield* client.read(1)
        const encoded = hex(encodeResponse(reply!))
        expect(encoded, request).toBe(byName.get(response)!.frame_hex)
      }
      // Go's own unknown-command reply was captured for code 424242.
      yield* client.write(new Uint8Array([0x04, 0x08, 0xb2, 0xf2, 0x19]))
      expect(hex(encodeResponse((yield* client.read(1))[0]!))).toBe(byName.get("res_unknown_command")!.frame_hex)
      const generated: ReadonlyArray<readonly [number, string]> = [
        [100, "res_error_only"],
        [101, "res_error_unicode"],
        [102, "res_error_payload"],
        [103, "res_error_meta_payload"],
        [104, "res_payload_binary_0_255"],
        [105, "res_large_1MiB"],
        [106, "res_meta_multi_payload"]
      ]
      for (const [code, response] of generated) {
        yield* client.write(new Uint8Array([0x02, 0x08, code])) // request {code}; all codes < 128
        const [reply] = yield* client.read(1)
        const vector = byName.get(response)!
        expect([vector.frame_hex, ...(vector.frame_hex_variants ?? [])], response).toContain(
          hex(encodeResponse(reply!))
        )
      }
    }))

  it.live("every captured Go request is decoded and served", () =>
    Effect.gen(function*() {
      const echo: Handlers.Handler = (req) =>
        Effect.succeed(Response.makeUnchecked(String(req.code), req.metadata, req.payload))
      const requests = vectors.filter((v) => v.kind === "request")
      const { port } = yield* Harness.tcp(
        undefined,
        [...new Set(requests.map((v) => v.fields.code!))].map((c) => [c, echo] as const)
      )
      const client = yield* Raw.connect(port)
      yield* client.write(Buffer.concat(requests.map((v) => Buffer.from(v.frame_hex, "hex"))))
      const replies = yield* client.read(requests.length)
      replies.forEach((reply, i) => {
        expect(reply.errorMessage).toBe(String(requests[i]!.fields.code))
        expect(Buffer.from(reply.payload).toString("base64")).toBe(requests[i]!.fields.payload_b64)
      })
    }))
})
