/**
 * Micro-benchmark: the hand-written body codec in src/Wire.ts against
 * protobufjs (reflection-loaded from proto/quasizero.proto), in one process.
 *
 *   ./node_modules/.bin/node bench/codec.ts          (or: npm run bench:codec)
 *   ITERATIONS=500000 ROUNDS=7 ./node_modules/.bin/node bench/codec.ts
 *
 * Both sides do the whole job: encode returns a fresh Uint8Array, decode
 * returns the message object (protobufjs's generated `Message`, ours the
 * plain `Request` / `Response`). Each case has its own loop so every call
 * site stays monomorphic; a shared `run(fn)` helper would make the callee
 * megamorphic and add the same few ns to both sides, hiding the difference.
 * Rounds alternate ours / protobufjs and the median is reported.
 */
import { readFileSync } from "node:fs"
import protobuf from "protobufjs"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as Wire from "../src/Wire.ts"

const positiveInt = (name: string, fallback: number): number => {
  const value = Number(process.env[name])
  return Number.isSafeInteger(value) && value > 0 ? value : fallback
}
const ITERATIONS = positiveInt("ITERATIONS", 300_000)
const ROUNDS = positiveInt("ROUNDS", 5)

const root = protobuf.loadSync(new URL("../proto/quasizero.proto", import.meta.url).pathname)
const PbRequest = root.lookupType("quasizero.Request")
const PbResponse = root.lookupType("quasizero.Response")

const kib = new Uint8Array(1024).map((_, i) => i % 251)
const metadata = { trace: "4bf92f3577b34da6a3ce929d0e0e4736", "content-type": "application/octet-stream" }

const smallReq = Request.makeUnsafe(1, { payload: "hello" })
const kibReq = Request.makeUnsafe(2, { payload: kib, metadata })
const smallRes = Response.ok("hello")
const kibRes = Response.make({ payload: kib, metadata })

// protobufjs's natural input: plain objects with a record for the map.
const pbSmallReq = { code: 1, payload: smallReq.payload }
const pbKibReq = { code: 2, payload: kib, metadata }
const pbSmallRes = { payload: smallRes.payload }
const pbKibRes = { payload: kib, metadata }

const smallReqBody = Wire.encodeRequestBody(smallReq)
const kibReqBody = Wire.encodeRequestBody(kibReq)
const smallResBody = Wire.encodeResponseBody(smallRes)
const kibResBody = Wire.encodeResponseBody(kibRes)

// Both codecs must produce the same bytes, or the comparison is meaningless.
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0
if (
  !same(smallReqBody, PbRequest.encode(pbSmallReq).finish())
  || !same(kibReqBody, PbRequest.encode(pbKibReq).finish())
  || !same(smallResBody, PbResponse.encode(pbSmallRes).finish())
  || !same(kibResBody, PbResponse.encode(pbKibRes).finish())
) {
  throw new Error("ours and protobufjs encode differently")
}

// A module-level sink keeps results observable so no loop is optimised away.
let sink: unknown

interface Case {
  readonly name: string
  readonly ours: (n: number) => void
  readonly pb: (n: number) => void
}

const cases: ReadonlyArray<Case> = [
  {
    name: "encode request, small (code 1, 5 B payload)",
    ours: (n) => {
      for (let i = 0; i < n; i++) sink = Wire.encodeRequestBody(smallReq)
    },
    pb: (n) => {
      for (let i = 0; i < n; i++) sink = PbRequest.encode(pbSmallReq).finish()
    }
  },
  {
    name: "decode request, small",
    ours: (n) => {
      for (let i = 0; i < n; i++) sink = Wire.decodeRequestUnsafe(smallReqBody)
    },
    pb: (n) => {
      for (let i = 0; i < n; i++) sink = PbRequest.decode(smallReqBody)
    }
  },
  {
    name: "encode request, 1 KiB + 2 metadata",
    ours: (n) => {
      for (let i = 0; i < n; i++) sink = Wire.encodeRequestBody(kibReq)
    },
    pb: (n) => {
      for (let i = 0; i < n; i++) sink = PbRequest.encode(pbKibReq).finish()
    }
  },
  {
    name: "decode request, 1 KiB + 2 metadata",
    ours: (n) => {
      for (let i = 0; i < n; i++) sink = Wire.decodeRequestUnsafe(kibReqBody)
    },
    pb: (n) => {
      for (let i = 0; i < n; i++) sink = PbRequest.decode(kibReqBody)
    }
  },
  {
    name: "encode response, small (5 B payload)",
    ours: (n) => {
      for (let i = 0; i < n; i++) sink = Wire.encodeResponseBody(smallRes)
    },
    pb: (n) => {
      for (let i = 0; i < n; i++) sink = PbResponse.encode(pbSmallRes).finish()
    }
  },
  {
    name: "decode response, small",
    ours: (n) => {
      for (let i = 0; i < n; i++) sink = Wire.decodeResponseUnsafe(smallResBody)
    },
    pb: (n) => {
      for (let i = 0; i < n; i++) sink = PbResponse.decode(smallResBody)
    }
  },
  {
    name: "encode response, 1 KiB + 2 metadata",
    ours: (n) => {
      for (let i = 0; i < n; i++) sink = Wire.encodeResponseBody(kibRes)
    },
    pb: (n) => {
      for (let i = 0; i < n; i++) sink = PbResponse.encode(pbKibRes).finish()
    }
  },
  {
    name: "decode response, 1 KiB + 2 metadata",
    ours: (n) => {
      for (let i = 0; i < n; i++) sink = Wire.decodeResponseUnsafe(kibResBody)
    },
    pb: (n) => {
      for (let i = 0; i < n; i++) sink = PbResponse.decode(kibResBody)
    }
  }
]

const opsPerSecond = (fn: (n: number) => void): number => {
  const start = process.hrtime.bigint()
  fn(ITERATIONS)
  const ns = Number(process.hrtime.bigint() - start)
  return ITERATIONS / (ns / 1e9)
}

const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US")

const pbVersion = (JSON.parse(
  readFileSync(new URL("../node_modules/protobufjs/package.json", import.meta.url), "utf8")
) as { version: string }).version
console.log(`node ${process.version}, protobufjs ${pbVersion}, ITERATIONS=${ITERATIONS}, ROUNDS=${ROUNDS}`)
console.log()
console.log("| case | ours ops/s | protobufjs ops/s | ours / protobufjs |")
console.log("|---|---:|---:|---:|")
for (const c of cases) {
  // Warm-up: let both reach optimised code before anything is timed.
  c.ours(Math.ceil(ITERATIONS / 5))
  c.pb(Math.ceil(ITERATIONS / 5))
  const ours: Array<number> = []
  const pb: Array<number> = []
  for (let r = 0; r < ROUNDS; r++) {
    ours.push(opsPerSecond(c.ours))
    pb.push(opsPerSecond(c.pb))
  }
  const o = median(ours)
  const p = median(pb)
  console.log(`| ${c.name} | ${fmt(o)} | ${fmt(p)} | ${(o / p).toFixed(2)}× |`)
}
if (sink === undefined) console.log("(no results)")
