// Timeouts and shutdown on the in-memory transport with TestClock: deadlines
// are driven by TestClock.adjust, never by real waiting.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"
import * as Request from "../src/Request.ts"
import type * as Server from "../src/Server.ts"
import * as Wire from "../src/Wire.ts"
import * as Harness from "./support/harness.ts"

const ping = Wire.encodeRequest(Request.makeUnsafe(1))

const recording = () => {
  const errors: Array<Server.ServerError> = []
  return { errors, onError: (e: Server.ServerError) => Effect.sync(() => void errors.push(e)) }
}

describe("ServerConnection timeouts (TestClock)", () => {
  it.effect("idleTimeout closes at exactly the boundary, not before", () =>
    Effect.gen(function*() {
      const rec = recording()
      const { connect } = yield* Harness.memory({ idleTimeout: "1 second", onError: rec.onError })
      const peer = connect()
      yield* Harness.settle
      yield* TestClock.adjust(999)
      yield* Harness.settle
      expect(peer.state()).toBe("open")
      yield* TestClock.adjust(1)
      yield* Harness.settle
      expect(peer.state()).toBe("destroyed")
      expect(rec.errors.map((e) => e.reason._tag === "Timeout" && e.reason.kind)).toEqual(["Idle"])
    }))

  it.effect("a request resets the idle clock", () =>
    Effect.gen(function*() {
      const { connect } = yield* Harness.memory({ idleTimeout: 1000 })
      const peer = connect()
      yield* Harness.settle
      yield* TestClock.adjust(600)
      peer.send(ping)
      yield* Harness.settle
      expect(Harness.responses(peer.received())).toHaveLength(1)
      yield* TestClock.adjust(999)
      yield* Harness.settle
      expect(peer.state()).toBe("open") // 1599 ms after start, 999 ms after the request
      yield* TestClock.adjust(1)
      yield* Harness.settle
      expect(peer.state()).toBe("destroyed")
    }))

  it.effect("a slow handler is not idleness: the idle clock restarts after its reply", () =>
    Effect.gen(function*() {
      const { connect } = yield* Harness.memory({ idleTimeout: 1000 })
      const peer = connect()
      peer.send(Wire.encodeRequest(Request.makeUnsafe(5, { payload: "5000" })))
      yield* Harness.settle
      yield* TestClock.adjust(5000)
      yield* Harness.settle
      expect(Harness.responses(peer.received()).map((r) => r.errorMessage)).toEqual([""])
      expect(peer.state()).toBe("open")
      yield* TestClock.adjust(999)
      yield* Harness.settle
      expect(peer.state()).toBe("open")
      yield* TestClock.adjust(1)
      yield* Harness.settle
      expect(peer.state()).toBe("destroyed")
    }))

  it.effect("timeout closes a connection whose frame stalls half-way", () =>
    Effect.gen(function*() {
      const rec = recording()
      const { connect } = yield* Harness.memory({ timeout: 500, onError: rec.onError })
      const peer = connect()
      yield* Harness.settle
      yield* TestClock.adjust(10_000) // no frame started: timeout alone never closes (unlike Go)
      yield* Harness.settle
      expect(peer.state()).toBe("open")
      const frame = Wire.encodeRequest(Request.makeUnsafe(2, { payload: "hello" }))
      peer.send(frame.subarray(0, 4))
      yield* Harness.settle
      yield* TestClock.adjust(300)
      peer.send(frame.subarray(4, 6)) // progress does not extend the frame's deadline
      yield* Harness.settle
      yield* TestClock.adjust(199)
      yield* Harness.settle
      expect(peer.state()).toBe("open")
      yield* TestClock.adjust(1)
      yield* Harness.settle
      expect(peer.state()).toBe("destroyed")
      expect(rec.errors.map((e) => e.reason._tag === "Timeout" && e.reason.kind)).toEqual(["Read"])
    }))

  it.effect("a frame completed in time is answered and its deadline cleared", () =>
    Effect.gen(function*() {
      const { connect } = yield* Harness.memory({ timeout: 500 })
      const peer = connect()
      const frame = Wire.encodeRequest(Request.makeUnsafe(2, { payload: "hello" }))
      peer.send(frame.subarray(0, 3))
      yield* Harness.settle
      yield* TestClock.adjust(499)
      peer.send(frame.subarray(3))
      yield* Harness.settle
      yield* TestClock.adjust(5000)
      yield* Harness.settle
      expect(peer.state()).toBe("open")
      expect(Request.text(Request.makeUnsafe(2, { payload: Harness.responses(peer.received())[0]!.payload }))).toBe(
        "hello"
      )
    }))

  it.effect("timeout closes a connection whose replies do not drain", () =>
    Effect.gen(function*() {
      const rec = recording()
      const { connect } = yield* Harness.memory({ timeout: 500, onError: rec.onError })
      const peer = connect()
      peer.pauseReading(true)
      peer.send(ping)
      yield* Harness.settle
      yield* TestClock.adjust(499)
      yield* Harness.settle
      expect(peer.state()).toBe("open")
      yield* TestClock.adjust(1)
      yield* Harness.settle
      expect(peer.state()).toBe("destroyed")
      expect(rec.errors.map((e) => e.reason._tag === "Timeout" && e.reason.kind)).toEqual(["Write"])
    }))

  it.effect("shutdownTimeout bounds a stuck handler", () =>
    Effect.gen(function*() {
      const { connect, close } = yield* Harness.memory({ shutdownTimeout: "2 seconds" }, [
        [1, () => Effect.never]
      ])
      const peer = connect()
      peer.send(ping)
      yield* Harness.settle
      const closing = yield* Effect.forkChild(close)
      yield* TestClock.adjust(1999)
      yield* Harness.settle
      expect(closing.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust(1)
      yield* Fiber.join(closing)
      expect(peer.state()).not.toBe("open")
      expect(peer.received()).toHaveLength(0) // interrupted: no reply is invented
    }))

  it.effect("shutdown lets a request in flight finish and closes idle connections at once", () =>
    Effect.gen(function*() {
      const { connect, close } = yield* Harness.memory({ shutdownTimeout: "1 minute" })
      const busy = connect()
      const idle = connect()
      busy.send(Wire.encodeRequests([Request.makeUnsafe(5, { payload: "1000" }), Request.makeUnsafe(1)]))
      yield* Harness.settle
      const closing = yield* Effect.forkChild(close)
      yield* Harness.settle
      expect(idle.state()).not.toBe("open")
      expect(busy.state()).toBe("open")
      yield* TestClock.adjust(1000)
      yield* Fiber.join(closing)
      expect(Harness.responses(busy.received()).map((r) => new TextDecoder().decode(r.payload))).toEqual([
        "SLEPT",
        "PONG"
      ])
      expect(busy.state()).toBe("ended") // flushed, then closed gracefully
    }))
})
