// Our client against Go's qz-server, beside our own server: every case of the
// interop table through `Client.call`, `client.pipeline` and `Pipeline`, and
// typed `Command`s. What our client reads from Go's server must equal what
// Go's own client (qz-call) reads from it, field by field, and what it reads
// from our server.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Client from "../../src/Client.ts"
import * as Command from "../../src/Command.ts"
import * as NodeClient from "../../src/node/NodeClient.ts"
import * as Pipeline from "../../src/Pipeline.ts"
import * as Harness from "../support/harness.ts"
import { asCallLine, type Case, cases, goArgs, request, requests } from "./cases.ts"
import * as Peer from "./peer.ts"

type ClientService = Client.Client["Service"]

const clientFor = (port: number) =>
  Effect.map(
    Layer.build(NodeClient.layer({ host: "127.0.0.1", port, requestTimeout: "15 seconds" })),
    (context) => Context.get(context, Client.Client)
  )

/** Our client's replies for a case: one `call`, or a `pipeline` of the copies. */
const send = (client: ClientService, c: Case) =>
  c.pipeline === undefined ? Effect.map(client.call(request(c)), (r) => [r]) : client.pipeline(requests(c))

const utf8 = new TextEncoder()
const text: Command.Codec<string> = {
  encode: (s) => Result.succeed(utf8.encode(s)),
  decode: (bytes) => Result.succeed(new TextDecoder().decode(bytes))
}

// The demo command set as typed commands, as a client of either server would declare it.
const Ping = Command.make("Ping", { code: 1, success: text })
const Echo = Command.make("Echo", { code: 2, payload: Schema.Uint8Array, success: Schema.Uint8Array })
const EchoJson = Command.make("EchoJson", {
  code: 2,
  payload: Schema.Struct({ id: Schema.Number, tags: Schema.Array(Schema.String) }),
  success: Schema.Struct({ id: Schema.Number, tags: Schema.Array(Schema.String) })
})
const Fail = Command.make("Fail", { code: 3 })
const Sleep = Command.make("Sleep", { code: 5, payload: Schema.Number, success: text })
const Unknown = Command.make("Unknown", { code: 42 })

describe.runIf(Peer.available)("our client → Go server (qz-server)", () => {
  const suite = Peer.suiteScope()
  let go: { readonly address: string; readonly client: ClientService }
  let ours: ClientService
  beforeAll(async () => {
    ;[go, ours] = await suite.start(Effect.all([
      Effect.flatMap(
        Peer.goServer(),
        (server) => Effect.map(clientFor(server.port), (client) => ({ address: server.address, client }))
      ),
      Effect.flatMap(Harness.tcp(), (server) => clientFor(server.port))
    ], { concurrency: "unbounded" }))
  })
  afterAll(() => suite.close())

  for (const c of cases) {
    it.live(c.name, () =>
      Effect.gen(function*() {
        const { args, binary } = goArgs(c)
        const [reference, fromGo, fromOurs] = yield* Effect.all(
          [Peer.qzCall(go.address, args, binary), send(go.client, c), send(ours, c)],
          { concurrency: "unbounded" }
        )
        expect(fromGo.map(asCallLine), "our client ← Go server, vs Go client ← Go server").toEqual(reference)
        expect(fromOurs.map(asCallLine), "our client ← our server").toEqual(reference)
      }))
  }

  it.live("Pipeline (call / reset / execWith): one pipeline of every single-request case, same replies", () =>
    Effect.gen(function*() {
      const singles = cases.filter((c) => c.pipeline === undefined)
      const pipeline = singles.reduce(
        (p, c) => Pipeline.call(p, request(c)),
        Pipeline.reset(Pipeline.call(Pipeline.empty, request(cases[0]!)))
      )
      const [fromGo, fromOurs, oneByOne] = yield* Effect.all([
        Pipeline.execWith(pipeline, go.client),
        Pipeline.execWith(pipeline, ours),
        Effect.forEach(singles, (c) => go.client.call(request(c)))
      ], { concurrency: "unbounded" })
      expect(fromGo.length).toBe(singles.length)
      expect(fromGo.map(asCallLine)).toEqual(oneByOne.map(asCallLine))
      expect(fromOurs.map(asCallLine)).toEqual(oneByOne.map(asCallLine))
    }))

  it.live("concurrent callers multiplexed on our client's connections get their own replies from Go", () =>
    Effect.gen(function*() {
      const replies = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => Effect.map(go.client.call(request({ name: "", code: 2, payload: `#${i}` })), asCallLine),
        { concurrency: 64 }
      )
      expect(replies.map((r) => r.payload)).toEqual(Array.from({ length: 200 }, (_, i) => `#${i}`))
    }))

  it.live("typed commands: the same results and the same typed errors from both servers", () =>
    Effect.gen(function*() {
      const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
      const runAll = (client: ClientService) =>
        Effect.all([
          client.run(Ping, undefined),
          client.run(Echo, bytes),
          client.run(EchoJson, { id: 7, tags: ["ä", "🚀", ""] }, [["trace", "t-1"]]),
          client.run(Sleep, 5),
          Effect.flip(client.run(Fail, undefined)),
          Effect.flip(client.run(Unknown, undefined)),
          Effect.flip(client.run(Sleep, -1.5)) // JSON "-1.5": not an int64 for either server
        ])
      const [fromGo, fromOurs] = yield* Effect.all([runAll(go.client), runAll(ours)], { concurrency: 2 })
      const [pong, echoed, json, slept, fail, unknown, badSleep] = fromGo
      expect([pong, Buffer.from(echoed), json, slept]).toEqual(["PONG", Buffer.from(bytes), {
        id: 7,
        tags: ["ä", "🚀", ""]
      }, "SLEPT"])
      const remote = (e: unknown) => {
        expect(e).toBeInstanceOf(Command.CommandError)
        const reason = (e as Command.CommandError).reason
        expect(reason._tag).toBe("RemoteFailure")
        return (reason as Command.RemoteFailure).response.errorMessage
      }
      expect([remote(fail), remote(unknown), remote(badSleep)]).toEqual([
        "something went wrong",
        "unknown command code 42",
        'invalid sleep duration "-1.5"'
      ])
      expect(fromOurs.slice(0, 4).map((x) => (x instanceof Uint8Array ? Buffer.from(x) : x))).toEqual([
        pong,
        Buffer.from(echoed),
        json,
        slept
      ])
      expect(fromOurs.slice(4).map(remote)).toEqual([remote(fail), remote(unknown), remote(badSleep)])
    }))
})
