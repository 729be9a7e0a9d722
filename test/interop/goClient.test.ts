// Go's client (qz-call) against three servers — Go's qz-server, our
// `quasizero serve` as a real process, and `Server.layer` in this process —
// for every case of the interop table: what Go's client prints for our
// servers must equal, line for line, what it prints for Go's (qz-call prints
// every field, the payload also as base64, metadata with sorted keys).
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Harness from "../support/harness.ts"
import { type Case, cases, goArgs } from "./cases.ts"
import * as Peer from "./peer.ts"

interface Servers {
  readonly go: string
  readonly process: string
  readonly inProcess: string
}

describe.runIf(Peer.available)("Go client (qz-call) → our servers", () => {
  const suite = Peer.suiteScope()
  let servers: Servers
  beforeAll(async () => {
    servers = await suite.start(Effect.gen(function*() {
      const [go, cli, local] = yield* Effect.all([Peer.goServer(), Peer.ourServerProcess(), Harness.tcp()], {
        concurrency: "unbounded"
      })
      return { go: go.address, process: cli.address, inProcess: `127.0.0.1:${local.port}` }
    }))
  })
  afterAll(() => suite.close())

  const callAll = (c: Case) => {
    const { args, binary } = goArgs(c)
    return Effect.all(
      [servers.go, servers.process, servers.inProcess].map((address) => Peer.qzCall(address, args, binary)),
      { concurrency: "unbounded" }
    )
  }

  for (const c of cases) {
    it.live(c.name, () =>
      Effect.gen(function*() {
        const [go, process, inProcess] = yield* callAll(c)
        expect(go.length, "Go server's reply count").toBe(c.pipeline ?? 1)
        expect(process, "quasizero serve").toEqual(go)
        expect(inProcess, "Server.layer").toEqual(go)
      }))
  }

  it.live("the binary payload reaches Go's server byte for byte (the shell path works)", () =>
    Effect.gen(function*() {
      const c = cases.find((x) => x.name === "ECHO binary")!
      const { args, binary } = goArgs(c)
      const [reply] = yield* Peer.qzCall(servers.go, args, binary)
      expect(Buffer.from(reply!.payload_b64, "base64")).toEqual(Buffer.from(c.payload as Uint8Array))
    }))
})
