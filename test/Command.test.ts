import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import protobufjs from "protobufjs"
import * as Command from "../src/Command.ts"
import * as Handlers from "../src/Handlers.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as Wire from "../src/Wire.ts"
import * as Harness from "./support/harness.ts"

class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { key: Schema.String }) {
  override get message() {
    return `no such key: ${this.key}`
  }
}
const Point = Schema.Struct({ x: Schema.Number, y: Schema.Number })
const Get = Command.make("Get", { code: 10, payload: Schema.String, success: Point, error: NotFound })
const Raw = Command.make("Raw", { code: 11, payload: Schema.Uint8Array, success: Schema.Uint8Array })
const Ping = Command.make("Ping", { code: 12 })

const root = protobufjs.parse(`syntax = "proto3"; message Vec { int32 x = 1; int32 y = 2; }`).root
const Vec = root.lookupType("Vec")
const Scale = Command.make("Scale", {
  code: 13,
  payload: Command.protobuf<{ x: number; y: number }>(Vec as never),
  success: Command.protobuf<{ x: number; y: number }>(Vec as never)
})

const table = [
  Get.handle((key) => key === "origin" ? Effect.succeed({ x: 0, y: 0 }) : Effect.fail(new NotFound({ key }))),
  Raw.handle((bytes) => Effect.succeed(bytes.subarray(1))),
  Command.handle(Ping, () => Effect.void),
  Scale.handle((v) => Effect.succeed({ x: v.x * 2, y: v.y * 2 })),
  [1, () => Effect.succeed("PONG")] as const
]

// One round trip through a real server on the in-memory transport.
const roundTrip = (request: Request.Request) =>
  Effect.gen(function*() {
    const { connect } = yield* Harness.memory(undefined, table)
    const peer = connect()
    peer.send(Wire.encodeRequest(request))
    yield* Harness.settle
    return Harness.responses(peer.received())[0]!
  })

const run = <I, A, E>(command: Command.Command<I, A, E>, input: I) =>
  Effect.flatMap(
    Command.request(command, input),
    (req) => Effect.flatMap(roundTrip(req), (res) => Command.decodeResponse(command, res))
  )

describe("Command", () => {
  it.effect("a JSON command round-trips its input and success", () =>
    Effect.gen(function*() {
      expect(yield* run(Get, "origin")).toEqual({ x: 0, y: 0 })
    }))

  it.effect("a typed error is rebuilt as the very same class, and Go sees its message", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(run(Get, "nowhere"))
      expect(error).toBeInstanceOf(NotFound)
      expect((error as NotFound).key).toBe("nowhere")
      const raw = yield* roundTrip(Request.makeUnsafe(10, { payload: JSON.stringify("nowhere") }))
      expect(raw.errorMessage).toBe("no such key: nowhere")
      expect(JSON.parse(raw.metadata.get(Command.errorMetadataKey)!)).toEqual({ _tag: "NotFound", key: "nowhere" })
    }))

  it.effect("raw bytes pass through without JSON", () =>
    Effect.gen(function*() {
      expect(yield* run(Raw, new Uint8Array([1, 2, 3]))).toEqual(new Uint8Array([2, 3]))
      const res = yield* roundTrip(Request.makeUnsafe(11, { payload: new Uint8Array([9, 8]) }))
      expect([...res.payload]).toEqual([8])
    }))

  it.effect("protobufjs message types work as payload codecs", () =>
    Effect.gen(function*() {
      const out = yield* run(Scale, { x: 2, y: -3 })
      expect({ x: out.x, y: out.y }).toEqual({ x: 4, y: -6 })
    }))

  it.effect("a command without payload or success sends and expects nothing", () =>
    Effect.gen(function*() {
      expect(yield* run(Ping, undefined)).toBeUndefined()
      expect(Wire.encodeRequestBody(yield* Command.request(Ping, undefined))).toEqual(new Uint8Array([0x08, 12]))
    }))

  it.effect("a payload that fails to decode gets an error reply naming the command and the issue", () =>
    Effect.gen(function*() {
      const notJson = yield* roundTrip(Request.makeUnsafe(10, { payload: "{" }))
      expect(notJson.errorMessage).toMatch(/^Get: invalid payload: not JSON/)
      const wrongType = yield* roundTrip(Request.makeUnsafe(10, { payload: "42" }))
      expect(wrongType.errorMessage).toBe("Get: invalid payload: Expected string")
    }))

  it.effect("client-side failures are CommandErrors with a reason", () =>
    Effect.gen(function*() {
      const badInput = yield* Effect.flip(Command.request(Get, 42 as never))
      expect(badInput.reason._tag).toBe("InvalidPayload")
      const unknown = yield* Effect.flip(Command.decodeResponse(Get, Response.error("unknown command code 10")))
      expect(unknown).toBeInstanceOf(Command.CommandError)
      expect((unknown as Command.CommandError).reason._tag).toBe("RemoteFailure")
      const badSuccess = yield* Effect.flip(Command.decodeResponse(Get, Response.ok(JSON.stringify({ x: "no" }))))
      expect((badSuccess as Command.CommandError).reason._tag).toBe("InvalidSuccess")
    }))

  it.effect("raw handlers and commands share one map; duplicate codes are rejected", () =>
    Effect.gen(function*() {
      expect(Harness.responses(Wire.encodeResponse(yield* roundTrip(Request.makeUnsafe(1))))[0]!.payload).toEqual(
        new TextEncoder().encode("PONG")
      )
      const duplicate = yield* Effect.flip(Handlers.make([...table, [10, () => Effect.void] as const]))
      expect(duplicate.message).toBe("Handlers: duplicate handler for code 10")
    }))
})
