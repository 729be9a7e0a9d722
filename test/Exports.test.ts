// The public names: the root index, the errors, the Node layers.
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Layer from "effect/Layer"
import * as Quasizero from "../src/index.ts"
import { Client, ClientError, Server, ServerError, Wire } from "../src/index.ts"
import * as Node from "../src/node/index.ts"

describe("public exports", () => {
  it("ClientError and ServerError come from the root; Demo (CLI-only) does not", () => {
    expect(ClientError).toBe(Client.ClientError)
    expect(ServerError).toBe(Server.ServerError)
    expect("Demo" in Quasizero).toBe(false)
  })

  it("ServerError has a type id and guard, forwards its reason's cause, one line per reason", () => {
    const wire = new Wire.WireError({ reason: new Wire.FrameTooLarge({ size: 10, limit: 5 }) })
    const frame = new ServerError({ reason: new Server.FrameError({ error: wire }) })
    expect(Server.isServerError(frame)).toBe(true)
    expect(Server.isServerError(new Error("x"))).toBe(false)
    expect(Client.isClientError(frame)).toBe(false)
    expect(frame.cause).toBe(wire)
    const boom = new Error("boom")
    const defect = new ServerError({ reason: new Server.HandlerDefect({ code: 7, cause: Cause.die(boom) }) })
    expect(defect.cause).toBe(boom)
    expect(defect.message).toBe("handler for code 7 died")
    const limit = new ServerError({ reason: new Server.ConnectionLimit({ limit: 3 }) })
    expect(limit.cause).toBeUndefined()
    expect(limit.message.split("\n")).toHaveLength(1)
  })

  it("NodeClient.layer is the Client; layerDialer is the Dialer", () => {
    const client: Layer.Layer<Client.Client, ClientError> = Node.NodeClient.layer({ host: "127.0.0.1", port: 1 })
    const dialer: Layer.Layer<Client.Dialer, ClientError> = Node.NodeClient.layerDialer({
      host: "127.0.0.1",
      port: 1
    })
    expect(Layer.isLayer(client) && Layer.isLayer(dialer)).toBe(true)
  })
})
