// Spin before park: the spinner stops by itself, costs nothing when off,
// only ever extends its window; `spin` validates on both sides and a
// loopback round trip works with it on. No timing is asserted: the waits are
// bounded polls of the spinner's state.
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as NetAddress from "effect/net/NetAddress"
import * as Result from "effect/Result"
import { vi } from "vitest"
import * as Client from "../../src/Client.ts"
import * as Demo from "../../src/Demo.ts"
import * as NodeClient from "../../src/node/NodeClient.ts"
import * as NodeServer from "../../src/node/NodeServer.ts"
import * as NodeSpin from "../../src/node/NodeSpin.ts"
import type * as Options from "../../src/Options.ts"
import * as Request from "../../src/Request.ts"
import * as Response from "../../src/Response.ts"
import * as Server from "../../src/Server.ts"

// Real time on purpose: the spinner runs on the real event loop, not on Clock.
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Waits (at most ~5 s) for the chain to stop; returns whether it did. */
const stopped = async () => {
  for (let i = 0; i < 500 && NodeSpin.state().spinning; i++) await sleep(10)
  return !NodeSpin.state().spinning
}

describe("NodeSpin", () => {
  it("0 is off: no setImmediate, no poll", async () => {
    expect(await stopped()).toBe(true)
    const spy = vi.spyOn(globalThis, "setImmediate")
    try {
      const before = NodeSpin.state()
      NodeSpin.afterWrite(0)
      NodeSpin.afterWrite(-5)
      expect(spy).not.toHaveBeenCalled()
      expect(NodeSpin.state()).toEqual(before)
    } finally {
      spy.mockRestore()
    }
  })

  it("the chain stops by itself once the window passes, and the loop goes idle", async () => {
    expect(await stopped()).toBe(true)
    const before = NodeSpin.state().ticks
    NodeSpin.afterWrite(200)
    expect(NodeSpin.state().spinning).toBe(true)
    expect(await stopped()).toBe(true)
    const after = NodeSpin.state().ticks
    expect(after).toBeGreaterThan(before)
    // Stopped means stopped: no poll happens while nothing asks for one.
    await sleep(20)
    expect(NodeSpin.state().ticks).toBe(after)
  })

  it("a window only grows: to the later of its end and now + micros", async () => {
    expect(await stopped()).toBe(true)
    NodeSpin.afterWrite(100_000)
    const long = NodeSpin.state().until
    NodeSpin.afterWrite(1)
    expect(NodeSpin.state().until).toBe(long)
    NodeSpin.afterWrite(200_000)
    // now + 200 ms, and now is not before the first call: at least 100 ms later.
    expect(NodeSpin.state().until).toBeGreaterThanOrEqual(long + 100)
    expect(await stopped()).toBe(true)
  })

  it("resolves spin in the grammar, to microseconds", () => {
    expect(NodeSpin.resolveMicros(undefined)).toEqual(Result.succeed(0))
    expect(NodeSpin.resolveMicros(0)).toEqual(Result.succeed(0))
    expect(NodeSpin.resolveMicros("50us")).toEqual(Result.succeed(50))
    expect(NodeSpin.resolveMicros("50µs")).toEqual(Result.succeed(50))
    expect(NodeSpin.resolveMicros("50 micros")).toEqual(Result.succeed(50))
    expect(NodeSpin.resolveMicros("20000ns")).toEqual(Result.succeed(20))
    expect(NodeSpin.resolveMicros(0.05)).toEqual(Result.succeed(50)) // a number is milliseconds
    expect(NodeSpin.resolveMicros("1ms")).toEqual(Result.succeed(1000))
    for (const bad of [-1, "2ms", "Infinity", Infinity, "soon", Number.NaN] as const) {
      const result = NodeSpin.resolveMicros(bad as Options.DurationInput)
      expect(Result.isFailure(result) && result.failure.option).toBe("spin")
    }
  })

  it.effect("a bad spin fails the server layer and the dialer, naming the option", () =>
    Effect.gen(function*() {
      const server = yield* Effect.flip(Layer.build(NodeServer.layer({ host: "127.0.0.1", port: 0, spin: "2ms" })))
      expect(server._tag === "ServerError" && server.reason._tag).toBe("InvalidOption")
      expect(server.message).toContain("spin")
      const client = yield* Effect.flip(NodeClient.make({ host: "127.0.0.1", port: 7701, spin: -1 }))
      expect(client.reason._tag).toBe("InvalidOption")
      expect(client.reason._tag === "InvalidOption" && client.reason.option).toBe("spin")
    }).pipe(Effect.scoped))

  it.effect("QUASIZERO_SPIN configures the listener", () =>
    Effect.gen(function*() {
      const parse = (env: Record<string, string>) => NodeServer.config.parse(ConfigProvider.fromEnv({ env }))
      const on = yield* parse({ QUASIZERO_SPIN: "50us" })
      expect(Result.getOrThrow(NodeSpin.resolveMicros(on.spin))).toBe(50)
      expect("spin" in (yield* parse({}))).toBe(false)
      const error = yield* Effect.flip(parse({ QUASIZERO_SPIN: "5ms" }))
      expect(error.message).toContain("QUASIZERO_SPIN")
    }))

  it.live("a loopback round trip with spin on for server and client", () =>
    Effect.gen(function*() {
      const before = NodeSpin.state().ticks
      const context = yield* Layer.build(
        Server.layer().pipe(
          Layer.provide(Demo.layer),
          Layer.provide(NodeServer.layer({ host: "127.0.0.1", port: 0, spin: "50us" }))
        )
      )
      const { port } = context.mapUnsafe.get(Server.Server.key).address as NetAddress.InetAddress
      const replies = yield* Effect.gen(function*() {
        const client = yield* Client.make()
        const out: Array<string> = []
        for (let i = 0; i < 20; i++) {
          out.push(Response.text(yield* client.call(Request.makeUnsafe(2, { payload: `${i}` }))))
        }
        const batch = yield* client.pipeline([Request.makeUnsafe(1), Request.makeUnsafe(2, { payload: "x" })])
        return [...out, ...batch.map(Response.text)]
      }).pipe(Effect.provide(NodeClient.layerDialer({ host: "127.0.0.1", port, spin: "50us" })))
      expect(replies).toEqual([...Array.from({ length: 20 }, (_, i) => `${i}`), "PONG", "x"])
      expect(NodeSpin.state().ticks).toBeGreaterThan(before)
      expect(yield* Effect.promise(stopped)).toBe(true)
    }).pipe(Effect.scoped))

  // Each side's hook on its own (both run in this process, so one side spins at a time): the
  // server's reply write on the Node listener's direct path, and the client's request write.
  for (const side of ["server", "client"] as const) {
    it.live(`only the ${side} spinning still polls after its writes`, () =>
      Effect.gen(function*() {
        yield* Effect.promise(stopped)
        const context = yield* Layer.build(
          Server.layer().pipe(
            Layer.provide(Demo.layer),
            Layer.provide(NodeServer.layer({ host: "127.0.0.1", port: 0, spin: side === "server" ? "50us" : 0 }))
          )
        )
        const { port } = context.mapUnsafe.get(Server.Server.key).address as NetAddress.InetAddress
        const before = NodeSpin.state().ticks
        const reply = yield* Effect.flatMap(Client.make(), (client) => client.call(Request.makeUnsafe(1))).pipe(
          Effect.provide(NodeClient.layerDialer({ host: "127.0.0.1", port, spin: side === "client" ? "50us" : 0 }))
        )
        expect(Response.text(reply)).toBe("PONG")
        expect(NodeSpin.state().ticks).toBeGreaterThan(before)
        expect(yield* Effect.promise(stopped)).toBe(true)
      }).pipe(Effect.scoped))
  }
})
