// The shipped test kit: layers, the in-memory transport, and shutdown under TestClock.
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as SocketServer from "effect/socket/SocketServer"
import { TestClock } from "effect/testing"
import { Client, Handlers, Request, Response, Server } from "quasizero"
import { MemorySocketServer, TestServer } from "quasizero/testing"

const sleepy = Handlers.layer({
  1: () => Effect.succeed("PONG"),
  2: () => Effect.as(Effect.sleep("1 minute"), "LATE")
})
const realNow = TestClock.withLive(Clock.currentTimeMillis)

describe("TestServer", () => {
  it.effect("layer: a Client wired to a Server in memory", () =>
    Effect.gen(function*() {
      expect(Response.text(yield* Client.call(Request.makeUnsafe(1)))).toBe("PONG")
      expect((yield* Server.Server).connections()).toBe(1)
    }).pipe(Effect.provide(TestServer.layer().pipe(Layer.provide(sleepy)))))

  it.effect("defaults: closing with a handler still sleeping on the TestClock ends at once", () =>
    Effect.gen(function*() {
      const started = yield* realNow
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(TestServer.layer().pipe(Layer.provide(sleepy)), scope)
      const client = Context.get(context, Client.Client)
      const slow = yield* Effect.forkChild(client.call(Request.makeUnsafe(2)))
      yield* Effect.yieldNow
      yield* Scope.close(scope, Exit.void) // no TestClock.adjust: shutdownTimeout 0 interrupts the handler
      const exit = yield* Fiber.await(slow)
      expect(Exit.isFailure(exit)).toBe(true)
      expect((yield* realNow) - started).toBeLessThan(2_000)
    }))

  it.effect("Server.layer's own shutdownTimeout counts test time: a forked close ends when the clock passes it", () =>
    Effect.gen(function*() {
      const memory = MemorySocketServer.make()
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(
        Layer.merge(Server.layer(), Client.layer()).pipe(
          Layer.provide(sleepy),
          Layer.provide(Layer.succeed(SocketServer.SocketServer)(memory.socketServer)),
          Layer.provide(Layer.succeed(Client.Dialer)(memory.dialer))
        ),
        scope
      )
      yield* Effect.yieldNow
      const peer = memory.connect()
      peer.send(new Uint8Array([2, 0x08, 2])) // a raw SLEEP-ish request: code 2
      yield* Effect.yieldNow
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("9999 millis")
      expect(closing.pollUnsafe()).toBeUndefined() // default shutdownTimeout: 10 s of test time
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(closing)
      expect(peer.state()).not.toBe("open")
    }))

  it.effect("the memory dialer waits in a backlog until the server runs, and is refused once it stopped", () =>
    Effect.gen(function*() {
      const memory = MemorySocketServer.make()
      const scope = yield* Scope.make()
      const making = yield* Effect.forkChild(
        Client.make().pipe(Effect.provideService(Client.Dialer, memory.dialer), Scope.provide(scope))
      )
      yield* Effect.yieldNow
      const serverScope = yield* Scope.make()
      yield* Layer.buildWithScope(
        Server.layer({ shutdownTimeout: 0 }).pipe(
          Layer.provide(sleepy),
          Layer.provide(Layer.succeed(SocketServer.SocketServer)(memory.socketServer))
        ),
        serverScope
      )
      const client = yield* Fiber.join(making)
      expect(Response.text(yield* client.call(Request.makeUnsafe(1)))).toBe("PONG")
      yield* Scope.close(serverScope, Exit.void)
      expect(memory.open()).toBe(0)
      const refused = yield* Effect.flip(
        Client.make().pipe(Effect.provideService(Client.Dialer, memory.dialer), Scope.provide(scope))
      )
      expect(refused.reason._tag).toBe("ConnectFailed")
      yield* Scope.close(scope, Exit.void)
    }))

  it.live("layerTcp: over real loopback TCP; Server.port gives the ephemeral port", () =>
    Effect.gen(function*() {
      const port = yield* Server.port
      expect(port).toBeGreaterThan(0)
      expect((yield* Client.Client).address).toBe(`127.0.0.1:${port}`)
      expect(Response.text(yield* Client.call(Request.makeUnsafe(1)))).toBe("PONG")
    }).pipe(Effect.provide(TestServer.layerTcp().pipe(Layer.provide(sleepy)))))

  it.effect("Server.port dies on a server without a TCP port", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Server.port)
      expect(Exit.isFailure(exit) && Exit.hasDies(exit)).toBe(true)
      expect(Server.portOf((yield* Server.Server).address)).toBeUndefined()
    }).pipe(Effect.provide(TestServer.layer().pipe(Layer.provide(sleepy)))))
})
