/**
 * Testing a handler's timeout with TestClock: no real waiting. The handler
 * gives a slow backend 2 seconds; under TestClock those 2 seconds pass when
 * the test says so, over a real socket, in a few milliseconds of wall time.
 * In a vitest suite, `it.effect` from @effect/vitest provides TestClock for
 * you, and `TestServer.layer` from "quasizero/testing" wires a client to an
 * in-memory server (see examples/testing.test.ts).
 *
 *   npm run example:testclock
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Deferred, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { Client, Handlers, Request, Response, Server } from "../src/index.ts"
import { NodeClient, NodeServer } from "../src/node/index.ts"

class BackendTimeout {
  readonly message = "backend timed out after 2 seconds"
}

// The code under test: a handler with a deadline on a slow dependency.
const lookup = (started: Deferred.Deferred<void>) =>
  Effect.andThen(Deferred.succeed(started, undefined), Effect.as(Effect.sleep("1 minute"), "late value"))

const handlers = (started: Deferred.Deferred<void>) =>
  Handlers.layer({
    7: () =>
      lookup(started).pipe(
        Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => Effect.fail(new BackendTimeout()) })
      )
  })

const test = Effect.gen(function*() {
  const started = yield* Deferred.make<void>()
  const context = yield* Layer.build(
    Server.layer().pipe(
      Layer.provide(handlers(started)),
      Layer.provide(NodeServer.layer({ host: "127.0.0.1", port: 0 }))
    )
  )
  const port = yield* Server.port.pipe(Effect.provide(context))
  const client = yield* Client.make().pipe(Effect.provide(NodeClient.layerDialer({ host: "127.0.0.1", port })))

  const wallStart = Date.now()
  const call = yield* Effect.forkChild(client.call(Request.makeUnsafe(7)))
  yield* Deferred.await(started) // the request reached the handler: its 2 seconds start now
  yield* TestClock.adjust("1999 millis")
  yield* TestClock.withLive(Effect.sleep("20 millis")) // real time for a reply, were one sent
  yield* Console.log(`after 1.999 s: ${call.pollUnsafe() === undefined ? "still waiting" : "answered (wrong!)"}`)
  yield* TestClock.adjust("1 millis")
  const reply = yield* Fiber.join(call)
  yield* Console.log(`after 2 s: error_message = ${JSON.stringify(reply.errorMessage)}`)
  yield* Console.log(`wall time: ${Date.now() - wallStart} ms`)
  if (!Response.isError(reply) || reply.errorMessage !== new BackendTimeout().message) {
    return yield* Effect.die(new Error("the handler did not time out as expected"))
  }
})

NodeRuntime.runMain(test.pipe(Effect.scoped, Effect.provide(TestClock.layer())))
