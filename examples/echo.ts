/**
 * Go quasizero's package example, port for port: a server with ECHO (1) and
 * SHUTDOWN (9, which closes the server a second later), and a client that
 * calls both. Prints
 *
 *   server responded to ECHO with "hello"
 *   server responded to SHUTDOWN with "OK"
 *
 * and exits 0 once the server has shut down gracefully.
 *
 *   npm start   (or: node examples/echo.ts)
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Deferred, Effect, Exit, Layer, Scope } from "effect"
import { Client, Handlers, Request, Response, Server } from "../src/index.ts"
import { NodeClient, NodeServer } from "../src/node/index.ts"

const program = Effect.gen(function*() {
  // SHUTDOWN cannot close the server from inside its own handler: it asks, and
  // the program closes the server's scope (a graceful shutdown) a second later.
  const shutdown = yield* Deferred.make<void>()

  const HandlersLive = Handlers.layer({
    // ECHO
    1: (req) => Effect.succeed(req.payload),
    // SHUTDOWN
    9: () =>
      Effect.as(
        Effect.forkDetach(Effect.andThen(Effect.sleep("1 second"), Deferred.succeed(shutdown, undefined))),
        "OK"
      )
  })

  // start a TCP server on an ephemeral port, in a scope we close ourselves
  const serverScope = yield* Scope.make()
  const context = yield* Layer.buildWithScope(
    Server.layer().pipe(
      Layer.provide(HandlersLive),
      Layer.provide(NodeServer.layer({ host: "127.0.0.1", port: 0 }))
    ),
    serverScope
  )
  const port = yield* Effect.provide(Server.port, context) // the ephemeral port

  // connect a client and call both commands
  yield* Effect.gen(function*() {
    const client = yield* Client.make()

    const res1 = yield* client.call(Request.makeUnsafe(1, { payload: "hello" }))
    yield* Console.log(`server responded to ECHO with ${JSON.stringify(Response.text(res1))}`)

    const res2 = yield* client.call(Request.makeUnsafe(9))
    yield* Console.log(`server responded to SHUTDOWN with ${JSON.stringify(Response.text(res2))}`)
  }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialer({ host: "127.0.0.1", port })))

  yield* Deferred.await(shutdown)
  yield* Scope.close(serverScope, Exit.void)
})

NodeRuntime.runMain(program)
