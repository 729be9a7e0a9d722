import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Client from "../src/Client.ts"
import * as NodeClient from "../src/node/NodeClient.ts"
import * as Pipeline from "../src/Pipeline.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as MemoryDialer from "../src/testing/MemoryDialer.ts"
import * as RawServer from "./support/rawServer.ts"

const echo = (payload: string) => Request.makeUnsafe(2, { payload })

describe("Pipeline", () => {
  it("call appends, reset empties, and neither changes the pipeline it is given", () => {
    const one = Pipeline.make(echo("a"))
    const two = Pipeline.call(one, echo("b"))
    const branch = one.pipe(Pipeline.call(echo("c")))
    expect(one.size).toBe(1)
    expect(Pipeline.requests(two).map(Request.text)).toEqual(["a", "b"])
    expect(Pipeline.requests(branch).map(Request.text)).toEqual(["a", "c"])
    expect(Pipeline.reset(two)).toBe(Pipeline.empty)
    expect(two.size).toBe(2)
    expect([...Pipeline.fromIterable([echo("x"), echo("y")])].map(Request.text)).toEqual(["x", "y"])
    expect(Pipeline.isPipeline(two)).toBe(true)
    expect(Pipeline.isPipeline([])).toBe(false)
  })

  it.effect("exec sends every request in one write on one connection; replies in order", () =>
    Effect.gen(function*() {
      const server = MemoryDialer.make((request) => Response.ok(request.payload))
      const client = yield* Client.make().pipe(Effect.provideService(Client.Dialer, server.dialer))
      let pipe = Pipeline.empty
      for (let i = 0; i < 20; i++) pipe = Pipeline.call(pipe, echo(`${i}`))
      const batch = yield* Pipeline.execWith(pipe, client)
      expect(batch.map(Response.text)).toEqual(Array.from({ length: 20 }, (_, i) => `${i}`))
      expect(server.connections.length).toBe(1)
      expect(server.connections[0]!.writes).toBe(1)
      // The same value runs again; the empty pipeline touches no connection.
      const again = yield* Pipeline.exec(pipe).pipe(Effect.provideService(Client.Client, client))
      expect(again.length).toBe(20)
      expect(yield* Pipeline.execWith(Pipeline.empty, client)).toEqual([])
      expect(server.connections[0]!.writes).toBe(2)
    }))

  it.live("exec over TCP: error replies are data, in their place", () =>
    Effect.gen(function*() {
      const server = yield* RawServer.make()
      const batch = yield* Pipeline.make(Request.makeUnsafe(1), Request.makeUnsafe(3), echo("last")).pipe(
        Pipeline.exec,
        Effect.provide(NodeClient.layer({ host: "127.0.0.1", port: server.port }))
      )
      expect(batch.map((r) => [r.errorMessage, Response.text(r)])).toEqual([
        ["", "PONG"],
        ["something went wrong", ""],
        ["", "last"]
      ])
      expect(server.framesPerRead).toContain(3)
    }))
})
