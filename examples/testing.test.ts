import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { Client, Handlers, Request, Response } from "quasizero"
import { MemorySocketServer, TestServer } from "quasizero/testing"

const HandlersLive = Handlers.layer({
  1: () => Effect.succeed("PONG"),
  2: () => Effect.as(Effect.sleep("1 minute"), "LATE") // a slow handler
})

describe("timeouts, on the TestClock", () => {
  it.effect("the server closes a connection idle for idleTimeout", () =>
    Effect.gen(function*() {
      const peer = (yield* MemorySocketServer.MemoryServer).connect() // a raw connection
      yield* TestClock.adjust("29 seconds")
      expect(peer.state()).toBe("open")
      yield* TestClock.adjust("1 second")
      expect(peer.state()).toBe("destroyed")
    }).pipe(
      Effect.provide(TestServer.layer({ server: { idleTimeout: "30 seconds" } }).pipe(Layer.provide(HandlersLive)))
    ))

  it.effect("a call fails with RequestTimeout after requestTimeout", () =>
    Effect.gen(function*() {
      expect(Response.text(yield* Client.call(Request.makeUnsafe(1)))).toBe("PONG")
      const slow = yield* Effect.forkChild(Client.call(Request.makeUnsafe(2)))
      yield* TestClock.adjust("5 seconds")
      const error = yield* Effect.flip(Fiber.join(slow))
      expect(error.reason._tag).toBe("RequestTimeout")
    }).pipe(
      Effect.provide(TestServer.layer({ client: { requestTimeout: "5 seconds" } }).pipe(Layer.provide(HandlersLive)))
    ))
})
