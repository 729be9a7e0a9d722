import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SocketServer from "effect/socket/SocketServer"
import { TestClock } from "effect/testing"
import * as Handlers from "../src/Handlers.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as Server from "../src/Server.ts"
import * as MemorySocket from "../src/testing/MemorySocketServer.ts"
import * as Wire from "../src/Wire.ts"
import * as Harness from "./support/harness.ts"

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

  it.effect("a table that cannot be served is a typed error of make and of the layer, not a defect", () =>
    Effect.gen(function*() {
      const h: Handlers.Handler = () => Effect.void
      const reason = (table: Handlers.Table<never, never>) =>
        Effect.map(Effect.flip(Handlers.make(table)), (e) => [e._tag, e.reason._tag, e.message])
      expect(yield* reason([[1, h], [1, h]])).toEqual([
        "HandlersError",
        "DuplicateCode",
        "Handlers: duplicate handler for code 1"
      ])
      expect(yield* reason([[2 ** 31, h]])).toEqual([
        "HandlersError",
        "InvalidCode",
        'Handlers: key "2147483648" is not an int32 code'
      ])
      expect((yield* reason({ "1.5": h } as never))[1]).toBe("InvalidCode")
      expect((yield* reason({ "01": h } as never))[2]).toBe('Handlers: key "01" is not an int32 code')
      expect((yield* reason([[1, "nope" as never]]))[1]).toBe("NotAFunction")
      const built = yield* Effect.flip(Layer.build(Handlers.layer([[7, h], [7, h]])))
      expect(built.reason._tag).toBe("DuplicateCode")
    }))

  it("normalises handler results", () => {
    expect(Handlers.toResponse(undefined)).toBe(Response.empty)
    expect(text(Handlers.toResponse("hi")!.payload)).toBe("hi")
    expect(Handlers.toResponse(new Uint8Array([1]))!.payload).toEqual(new Uint8Array([1]))
    const res = Response.error("x")
    expect(Handlers.toResponse(res)).toBe(res)
    for (const bad of [42, null, {}, { payload: "x" }, [1]]) expect(Handlers.toResponse(bad as never)).toBeUndefined()
  })

  it.effect("handlers get their services from the app's layers", () =>
    Effect.gen(function*() {
      class Greeting extends Context.Service<Greeting, { readonly hello: string }>()("test/Greeting") {}
      const mem = MemorySocket.make()
      const app = Server.layer().pipe(
        Layer.provide(Handlers.layer({ 1: () => Effect.map(Effect.service(Greeting), (g) => g.hello) })),
        Layer.provide(Layer.succeed(Greeting)({ hello: "bonjour" })),
        Layer.provide(Layer.succeed(SocketServer.SocketServer)(mem.socketServer))
      )
      yield* Layer.build(app)
      yield* Harness.settle
      const peer = mem.connect()
      peer.send(Wire.encodeRequest(Request.makeUnsafe(1)))
      yield* Harness.settle
      expect(Harness.responses(peer.received()).map((r) => text(r.payload))).toEqual(["bonjour"])
    }))

  it.effect("mapError decides the reply of a typed failure", () =>
    Effect.gen(function*() {
      const shape = yield* Handlers.make(
        { 1: () => Effect.fail({ code: 404 }) },
        { mapError: (e) => Response.make({ errorMessage: `E${e.code}`, metadata: { status: String(e.code) } }) }
      )
      const reply = Handlers.failureResponse(shape, { code: 404 })
      expect(reply.errorMessage).toBe("E404")
      expect(reply.metadata.get("status")).toBe("404")
    }))

  it("a failure becomes text: message, then _tag, then JSON, then String; never empty", () => {
    expect(Handlers.failureMessage("plain")).toBe("plain")
    expect(Handlers.failureMessage(new Error("boom"))).toBe("boom")
    expect(Handlers.failureMessage({ _tag: "NotFound", message: "" })).toBe("NotFound")
    expect(Handlers.failureMessage({ code: 42 })).toBe('{"code":42}')
    expect(Handlers.failureMessage(404)).toBe("404")
    expect(Handlers.failureMessage(new Error(""))).toBe("Error")
    expect(Handlers.failureMessage(undefined)).toBe("undefined")
    expect(Handlers.failureMessage("")).toBe("handler failed")
    expect(Handlers.failureMessage({})).toBe("handler failed")
    const cyclic: { self?: unknown } = {}
    cyclic.self = cyclic
    expect(Handlers.failureMessage(cyclic)).toBe("handler failed")
  })

  it.effect("Effect.fail({ code: 42 }) replies with its JSON, not [object Object]", () =>
    Effect.gen(function*() {
      const { connect } = yield* Harness.memory(undefined, [[1, () => Effect.fail({ code: 42 })]])
      const peer = connect()
      peer.send(Wire.encodeRequest(Request.makeUnsafe(1)))
      yield* Harness.settle
      expect(Harness.responses(peer.received())[0]!.errorMessage).toBe('{"code":42}')
    }))

  for (
    const options of [{}, { concurrency: 2 }, { spans: true }, { requestMetrics: true }, { timeout: 60_000 }] as const
  ) {
    it.effect(`void successes are empty OK replies; other values are HandlerDefects ${JSON.stringify(options)}`, () =>
      Effect.gen(function*() {
        const errors: Array<Server.ServerError> = []
        const onError = (e: Server.ServerError) => Effect.sync(() => void errors.push(e))
        const { connect } = yield* Harness.memory({ ...options, onError }, [
          [1, () => Effect.succeed(undefined)],
          [2, () => Effect.sync(() => undefined)],
          [3, () => Effect.promise(async () => undefined)],
          [4, () => Effect.gen(function*() {})],
          [5, () => Effect.void],
          [6, () => Effect.succeed(42 as never)],
          [7, () => Effect.sync(() => ({ payload: "x" }) as never)],
          [8, (() => undefined) as never],
          [9, () => Effect.succeed("PONG")]
        ])
        const peer = connect()
        peer.send(Wire.encodeRequests([1, 2, 3, 4, 5, 6, 7, 8, 9].map((code) => Request.makeUnsafe(code))))
        for (let i = 0; i < 5; i++) {
          yield* Harness.settle
          yield* TestClock.withLive(Effect.sleep(1)) // Effect.promise resolves on a microtask
        }
        const replies = Harness.responses(peer.received())
        expect(replies.map((r) => r.errorMessage)).toEqual([
          "",
          "",
          "",
          "",
          "",
          "internal error",
          "internal error",
          "internal error",
          ""
        ])
        expect(text(replies[8]!.payload)).toBe("PONG")
        expect(peer.state()).toBe("open") // the connection is kept
        const defects = errors.map((e) => e.reason)
        expect(defects.map((r) => r._tag)).toEqual(["HandlerDefect", "HandlerDefect", "HandlerDefect"])
        expect(defects.map((r) => r._tag === "HandlerDefect" && String(Cause.squash(r.cause)))).toEqual([
          "InvalidResult: handler for code 6 succeeded with number: expected a Response, bytes, a string or void",
          "InvalidResult: handler for code 7 succeeded with an object: expected a Response, bytes, a string or void",
          "InvalidResult: handler for code 8 returned undefined, not an Effect: expected a Response, bytes, a string or void"
        ])
      }))
  }

  describe("types: a table's error and services are the unions of its handlers'", () => {
    class A extends Context.Service<A, { readonly a: string }>()("test/A") {}
    class B extends Context.Service<B, { readonly b: string }>()("test/B") {}
    class NotFound extends Data.TaggedError("NotFound")<{ readonly id: string }> {}
    class Forbidden extends Data.TaggedError("Forbidden")<{ readonly user: string }> {}
    const needsA = () => Effect.map(Effect.service(A), (s) => s.a)
    const needsB = () => Effect.map(Effect.service(B), (s) => s.b)

    it("record form", () => {
      const layer = Handlers.layer({
        1: needsA,
        2: needsB,
        3: (req) => Effect.fail(new NotFound({ id: Request.text(req) })),
        4: () => Effect.fail(new Forbidden({ user: "x" }))
      })
      expectTypeOf(layer).toEqualTypeOf<Layer.Layer<Handlers.Handlers, Handlers.HandlersError, A | B>>()
      const made = Handlers.make({ 1: needsA, 3: () => Effect.fail(new NotFound({ id: "" })) }, {
        mapError: (e) => {
          expectTypeOf(e).toEqualTypeOf<NotFound>()
          return e.id
        }
      })
      expectTypeOf(made).toEqualTypeOf<Effect.Effect<Handlers.Shape, Handlers.HandlersError, A>>()
    })

    it("pairs form, mixing commands and raw handlers", () => {
      const layer = Handlers.layer([
        [1, needsA],
        [2, needsB],
        [3, () => Effect.fail(new NotFound({ id: "" }))],
        [4, () => Effect.fail(new Forbidden({ user: "" }))]
      ])
      expectTypeOf(layer).toEqualTypeOf<Layer.Layer<Handlers.Handlers, Handlers.HandlersError, A | B>>()
      Handlers.make([[3, () => Effect.fail(new NotFound({ id: "" }))], [
        4,
        () => Effect.fail(new Forbidden({ user: "" }))
      ]], {
        mapError: (e) => {
          expectTypeOf(e).toEqualTypeOf<NotFound | Forbidden>()
          return e._tag
        }
      })
    })

    it("map form, and a table of no services needs nothing", () => {
      const map = new Map<number, Handlers.Handler<NotFound, A>>([[1, needsA]])
      expectTypeOf(Handlers.layer(map)).toEqualTypeOf<Layer.Layer<Handlers.Handlers, Handlers.HandlersError, A>>()
      expectTypeOf(Handlers.layer({ 1: () => Effect.succeed("PONG") })).toEqualTypeOf<
        Layer.Layer<Handlers.Handlers, Handlers.HandlersError>
      >()
    })

    it("a handler that returns something else is rejected by the types", () => {
      // @ts-expect-error: a number is not a handler result
      Handlers.make({ 1: () => Effect.succeed(42) })
      // @ts-expect-error: a handler takes a Request
      Handlers.make([[1, (req: string) => Effect.succeed(req)]])
    })
  })
})
