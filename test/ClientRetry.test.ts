// `retry` covers the first connections too: a client may start before its server.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import { TestClock } from "effect/testing"
import * as Client from "../src/Client.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as MemoryDialer from "../src/testing/MemoryDialer.ts"

const pong = () => Response.ok("PONG")
const settle = Effect.forEach(Array.from({ length: 20 }), () => Effect.yieldNow, { discard: true })

describe("Client retry and the initial connect", () => {
  it.effect("without retry, make fails at once with ConnectFailed", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(pong)
      server.failDials = 1
      const error = yield* Effect.flip(Client.make().pipe(Effect.provideService(Client.Dialer, server.dialer)))
      expect(error.reason._tag).toBe("ConnectFailed")
      expect(server.connections.length).toBe(0)
    }))

  it.effect("with retry, make retries the initial connections on the schedule (the server starts later)", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(pong)
      server.failDials = 3
      const making = yield* Effect.forkChild(
        Client.make({ retry: Schedule.spaced("1 second") }).pipe(Effect.provideService(Client.Dialer, server.dialer))
      )
      yield* settle
      yield* TestClock.adjust("2 seconds")
      expect(making.pollUnsafe()).toBeUndefined() // 3 failed dials: 0 s, 1 s, 2 s
      yield* TestClock.adjust("1 second")
      const client = yield* Fiber.join(making)
      expect(Response.text(yield* client.call(Request.makeUnsafe(1)))).toBe("PONG")
      expect(server.open).toBe(1) // the failed attempts left nothing open
    }))

  it.effect("a retry schedule that runs out fails make with the last connect error", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(pong)
      server.failDials = 10
      const making = yield* Effect.forkChild(
        Effect.flip(
          Client.make({ retry: Schedule.recurs(2) }).pipe(Effect.provideService(Client.Dialer, server.dialer))
        )
      )
      yield* settle
      const error = yield* Fiber.join(making)
      expect(error.reason._tag).toBe("ConnectFailed")
      expect(server.failDials).toBe(7) // 1 try + 2 retries
    }))

  it.effect("invalid options are not retried", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make(pong)
      const error = yield* Effect.flip(
        Client.make({ pool: { maxCap: 0 }, retry: Schedule.forever }).pipe(
          Effect.provideService(Client.Dialer, server.dialer)
        )
      )
      expect(error.reason._tag).toBe("InvalidOption")
    }))
})
