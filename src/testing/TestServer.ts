/**
 * A server with a client already wired to it, for tests — the counterpart of
 * `NodeHttpServer.layerTest`. Provide your `Handlers` and use `Client` (and
 * `Server`) in the test.
 *
 * Time: every server and client timeout counts on Effect's `Clock`, so under
 * `TestClock` (`it.effect`) they pass with `TestClock.adjust`, never by
 * waiting. That includes `shutdownTimeout`, which is why these layers default
 * it to 0: when the test's scope closes nobody advances the `TestClock` any
 * more, so a handler still sleeping on it could never finish; with 0 it is
 * interrupted at once and the test ends (`Server.layer` keeps its 10 s
 * default: under `TestClock` set `shutdownTimeout: 0`, or close the scope in
 * a forked fiber and `TestClock.adjust` past it).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as SocketServer from "effect/socket/SocketServer"
import * as Client from "../Client.ts"
import type * as Handlers from "../Handlers.ts"
import * as NodeClient from "../node/NodeClient.ts"
import * as NodeServer from "../node/NodeServer.ts"
import * as Server from "../Server.ts"
import * as MemorySocketServer from "./MemorySocketServer.ts"

/**
 * Options of the test layers: the server's and the client's.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `Server.Options`; `shutdownTimeout` defaults to 0 here (see the module notes). */
  readonly server?: Server.Options | undefined
  /** `Client.Options` of the wired client. */
  readonly client?: Client.Options | undefined
}

const serverOptions = (options: Options | undefined): Server.Options => ({
  shutdownTimeout: 0,
  ...options?.server
})

/**
 * A `Server` on the in-memory transport with a `Client` connected to it, and
 * the `MemoryServer` for raw peers. No real I/O: safe under `TestClock`.
 *
 * @example
 * ```ts
 * import { expect, it } from "@effect/vitest"
 * import { Effect, Layer } from "effect"
 * import { Client, Handlers, Request, Response } from "quasizero"
 * import { TestServer } from "quasizero/testing"
 *
 * const Test = TestServer.layer().pipe(Layer.provide(Handlers.layer({ 1: () => Effect.succeed("PONG") })))
 *
 * it.effect("answers PONG", () =>
 *   Effect.gen(function*() {
 *     const reply = yield* Client.call(Request.makeUnsafe(1))
 *     expect(Response.text(reply)).toBe("PONG")
 *   }).pipe(Effect.provide(Test)))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<
  Server.Server | Client.Client | MemorySocketServer.MemoryServer,
  Server.ServerError | Client.ClientError,
  Handlers.Handlers
> =>
  Client.layer(options?.client).pipe(
    Layer.provideMerge(Server.layer(serverOptions(options))),
    Layer.provideMerge(MemorySocketServer.layer)
  )

/**
 * A `Server` on 127.0.0.1 on an ephemeral port with a `Client` connected to
 * it over real TCP (use `it.live`: real sockets on a frozen clock deadlock).
 * `Server.port` gives the port.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Client, Handlers, Request } from "quasizero"
 * import { TestServer } from "quasizero/testing"
 *
 * const Test = TestServer.layerTcp().pipe(Layer.provide(Handlers.layer({ 1: () => Effect.succeed("PONG") })))
 * const pong = Client.call(Request.makeUnsafe(1)).pipe(Effect.provide(Test))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTcp = (
  options?: Options
): Layer.Layer<
  Server.Server | Client.Client,
  Server.ServerError | Client.ClientError | SocketServer.SocketServerError,
  Handlers.Handlers
> =>
  Layer.unwrap(
    Effect.map(Server.port, (port) => NodeClient.layer({ host: "127.0.0.1", port, ...options?.client }))
  ).pipe(
    Layer.provideMerge(Server.layer(serverOptions(options))),
    Layer.provide(NodeServer.layer({ host: "127.0.0.1", port: 0 }))
  )
