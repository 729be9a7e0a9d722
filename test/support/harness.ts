// Builds servers for tests: on the in-memory transport (TestClock tests) or on
// a real loopback port (integration tests), each in its own closable scope.
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as Scope from "effect/Scope"
import * as SocketServer from "effect/socket/SocketServer"
import * as Demo from "../../src/Demo.ts"
import * as Handlers from "../../src/Handlers.ts"
import * as NodeServer from "../../src/node/NodeServer.ts"
import type * as Response from "../../src/Response.ts"
import * as Server from "../../src/Server.ts"
import * as MemorySocket from "../../src/testing/MemorySocketServer.ts"
import * as Wire from "../../src/Wire.ts"

/** Lets forked fibers run without advancing the clock. */
export const settle = Effect.forEach(Array.from({ length: 20 }), () => Effect.yieldNow, { discard: true })

export const build = <E>(
  options: Server.Options | undefined,
  transport: Layer.Layer<SocketServer.SocketServer, E>,
  table: Handlers.Table<unknown, never> = Demo.table
) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      Server.layer(options).pipe(Layer.provide(Handlers.layer(table)), Layer.provide(transport)),
      scope
    )
    const close = Scope.close(scope, Exit.void)
    yield* Effect.addFinalizer(() => close)
    return { server: Context.get(context, Server.Server), close }
  })

/** A server on the in-memory transport. */
export const memory = (options?: Server.Options, table?: Handlers.Table<unknown, never>) =>
  Effect.gen(function*() {
    const mem = MemorySocket.make()
    const started = yield* build(options, Layer.succeed(SocketServer.SocketServer)(mem.socketServer), table)
    yield* settle // the accept fiber is forked: let it start
    return { ...started, connect: mem.connect }
  })

/** A server on 127.0.0.1, on an ephemeral port. */
export const tcp = (options?: Server.Options, table?: Handlers.Table<unknown, never>) =>
  Effect.gen(function*() {
    const started = yield* build(options, NodeServer.layer({ host: "127.0.0.1", port: 0 }), table)
    const address = started.server.address
    if (!NetAddress.isInetAddress(address)) throw new Error("expected an inet address")
    return { ...started, port: address.port }
  })

/** Every complete response frame in `bytes`. */
export const responses = (bytes: Uint8Array): Array<Response.Response> => {
  const frames: Array<Uint8Array> = []
  const error = new Wire.FrameDecoder().push(bytes, frames)
  if (error) throw error
  return frames.map((f) => Wire.decodeResponseUnsafe(f, Wire.noDecodeLimits))
}
