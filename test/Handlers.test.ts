import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SocketServer from "effect/socket/SocketServer"
import * as Handlers from "../src/Handlers.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as Server from "../src/Server.ts"
import * as Wire from "../src/Wire.ts"
import * as Harness from "./support/harness.ts"
import * as MemorySocket from "./support/memorySocket.ts"

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

describe("Handlers", () => {
  it.effect("accepts a record, a map or pairs", () =>
    Effect.gen(function*() {
      const h: Handlers.Handler = () => Effect.void
      for (const table of [{ 1: h, [-7]: h }, new Map([[1, h], [-7, h]]), [[1, h], [-7, h]] as const]) {
        const shape = yield* Handlers.make(table)
        expect([...shape.handlers.keys()].sort()).toEqual([-7, 1])
      }
    }))

  it("rejects duplicate codes, non-int32 codes and non-functions when the map is built", () => {
    const h: Handlers.Handler = () => Effect.void
    expect(() => Effect.runSync(Handlers.make([[1, h], [1, h]]))).toThrow(/duplicate handler for code 1/)
    expect(() => Effect.runSync(Handlers.make([[2 ** 31, h]]))).toThrow(/int32/)
    expect(() => Effect.runSync(Handlers.make({ "1.5": h } as never))).toThrow(/int32/)
    expect(() => Effect.runSync(Handlers.make({ "01": h } as never))).toThrow(/"01" is not an int32 code/)
    expect(() => Effect.runSync(Handlers.make([[1, "nope" as never]]))).toThrow(/not a function/)
  })

  it("normalises handler results", () => {
    expect(Handlers.toResponse(undefined)).toBe(Response.empty)
    expect(text(Handlers.toResponse("hi").payload)).toBe("hi")
    expect(Handlers.toResponse(new Uint8Array([1])).payload).toEqual(new Uint8Array([1]))
    const res = Response.error("x")
    expect(Handlers.toResponse(res)).toBe(res)
  })

  it.effect("handlers get their services from the app's layers", () =>
    Effect.gen(function*() {
      class Greeting extends Context.Service<Greeting, { readonly hello: string }>()("test/Greeting") {}
      const mem = MemorySocket.make()
      const app = Server.layer().pipe(
        Layer.provide(Handlers.layer({ 1: () => Effect.map(Effect.service(Greeting), (g) => g.hello) })),
        Layer.provide(Layer.succeed(Greeting)({ hello: "bonjour" })),
        Layer.provide(Layer.succeed(SocketServer.SocketServer)(mem.layer))
      )
      yield* Layer.build(app)
      yield* Harness.settle
      const peer = mem.connect()
      peer.send(Wire.encodeRequest(Request.make(1)))
      yield* Harness.settle
      expect(Harness.responses(peer.received()).map((r) => text(r.payload))).toEqual(["bonjour"])
    }))

  it.effect("mapError decides the reply of a typed failure", () =>
    Effect.gen(function*() {
      const shape = yield* Handlers.make<{ readonly code: number }>(
        { 1: () => Effect.fail({ code: 404 }) },
        { mapError: (e) => Response.make({ errorMessage: `E${e.code}`, metadata: { status: String(e.code) } }) }
      )
      const reply = Handlers.failureResponse(shape, { code: 404 })
      expect(reply.errorMessage).toBe("E404")
      expect(reply.metadata.get("status")).toBe("404")
    }))
})
