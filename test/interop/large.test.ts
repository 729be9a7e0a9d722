// Large payloads across the boundary: 1 MiB, a request body one byte under
// maxFrameSize (16 MiB) and exactly at it. qz-call takes its payload as one
// argv string, which Linux caps at 128 KiB (MAX_ARG_STRLEN), so Go's client
// sends these through qz-bench (`-code 2 -size N`: a real ECHO of N bytes
// `'a' + i % 26`, counted as an error when the reply carries error_message);
// our server's ECHO here also checks every byte of the request it got. Our
// client sends them to both servers and compares the replies byte for byte.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Client from "../../src/Client.ts"
import * as Demo from "../../src/Demo.ts"
import type * as Handlers from "../../src/Handlers.ts"
import * as NodeClient from "../../src/node/NodeClient.ts"
import * as Request from "../../src/Request.ts"
import * as Response from "../../src/Response.ts"
import * as Wire from "../../src/Wire.ts"
import * as Harness from "../support/harness.ts"
import * as Peer from "./peer.ts"

const maxFrameSize = 1 << 24
/** ECHO's request body: the payload + code field (2 B) + payload tag (1 B) + its length (3 B up to 2 MiB, then 4). */
const sizes = [
  { name: "1 MiB", payload: 1 << 20 },
  { name: "body maxFrameSize − 1", payload: maxFrameSize - 8 },
  { name: "body exactly maxFrameSize", payload: maxFrameSize - 7 }
] as const

/** qz-bench's payload pattern. */
const isGoPattern = (p: Uint8Array) => {
  for (let i = 0; i < p.length; i++) if (p[i] !== 97 + (i % 26)) return false
  return true
}

// Our server's demo set, with an ECHO that fails unless the request is qz-bench's pattern, byte for byte.
const checkingEcho: Handlers.Table<unknown, never> = [
  ...Demo.table.filter(([code]) => code !== Demo.ECHO),
  [Demo.ECHO, (req) =>
    Effect.succeed(
      isGoPattern(req.payload) ? Response.ok(req.payload) : Response.error(`payload differs (${req.payload.length} B)`)
    )]
]

describe.runIf(Peer.available)("payloads up to maxFrameSize, both directions", () => {
  const suite = Peer.suiteScope()
  let go: { readonly address: string; readonly client: Client.Client["Service"] }
  let process: string
  let inProcess: { readonly address: string; readonly client: Client.Client["Service"] }
  const clientFor = (port: number) =>
    Effect.map(
      Layer.build(NodeClient.layer({ host: "127.0.0.1", port, requestTimeout: "20 seconds" })),
      (context) => Context.get(context, Client.Client)
    )
  beforeAll(async () => {
    ;[go, process, inProcess] = await suite.start(Effect.all([
      Effect.flatMap(
        Peer.goServer(),
        (s) => Effect.map(clientFor(s.port), (client) => ({ address: s.address, client }))
      ),
      Effect.map(Peer.ourServerProcess(), (s) => s.address),
      Effect.flatMap(
        Harness.tcp(undefined, checkingEcho),
        (s) => Effect.map(clientFor(s.port), (client) => ({ address: `127.0.0.1:${s.port}`, client }))
      )
    ], { concurrency: "unbounded" }))
  })
  afterAll(() => suite.close())

  it("the sizes are what they say", () => {
    const body = (n: number) => Wire.encodeRequestBody(Request.makeUnsafe(2, { payload: new Uint8Array(n) })).length
    expect(sizes.map((s) => body(s.payload))).toEqual([(1 << 20) + 6, maxFrameSize - 1, maxFrameSize])
  })

  for (const size of sizes) {
    it.live(
      `Go client (qz-bench) → Go server, quasizero serve, Server.layer: ECHO ${size.name}`,
      () =>
        Effect.gen(function*() {
          const args = ["-code", "2", "-size", String(size.payload), "-conc", "1", "-duration", "300ms"]
          const results = yield* Effect.forEach([go.address, process, inProcess.address], (a) => Peer.qzBench(a, args))
          for (const [i, r] of results.entries()) {
            expect(r.requests, `server #${i}`).toBeGreaterThanOrEqual(1)
            expect(r.errors, `server #${i}`).toBe(0)
          }
        }),
      60_000
    )

    it.live(`our client → Go server and our server: ECHO ${size.name}, byte for byte`, () =>
      Effect.gen(function*() {
        const payload = Uint8Array.from({ length: size.payload }, (_, i) => 97 + (i % 26))
        const request = Request.makeUnsafe(2, { payload })
        const [fromGo, fromOurs] = yield* Effect.all([go.client.call(request), inProcess.client.call(request)])
        for (const reply of [fromGo, fromOurs]) {
          expect([reply.errorMessage, reply.metadata.size]).toEqual(["", 0])
          expect(Buffer.compare(reply.payload, payload)).toBe(0)
        }
      }), 60_000)
  }
})
