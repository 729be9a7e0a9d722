// Fuzzing: over 100,000 generated frames per run against a real server on
// loopback, and the codec on its own. The seed is printed; FUZZ_SEED=<n>
// replays a run.
//
// Each batch of a few hundred frames goes down one connection in one to four
// writes, possibly followed by a tail that breaks the framing (the server
// must answer, then close) or leaves a frame unfinished (we half-close). The
// replies must be exactly one per frame, in order, equal to what the codec
// and the demo handlers say; structured cases are also checked against a
// model written independently of the codec. After every batch a fresh
// connection must get its PING answered.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import protobuf from "protobufjs"
import * as Wire from "../../src/Wire.ts"
import { type Case, generate, referenceFrames, tail } from "./frames.ts"
import {
  concat,
  type Conn,
  describeMemory,
  type Expected,
  frame,
  mismatch,
  open,
  ping,
  rng,
  seedFromEnv,
  serverProcess,
  sleep
} from "./support.ts"

const seed = seedFromEnv()
const frameBudget = 100_000
const workers = 4
const limit = Wire.defaultMaxFrameSize

interface Stats {
  frames: number
  batches: number
  connections: number
  pings: number
  readonly kinds: Map<string, number>
  readonly tails: Map<string, number>
}

const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1)

const within = <A>(promise: Promise<A>, ms: number, what: () => string): Promise<A> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what()}`)), ms)
    promise.then(
      (a) => (clearTimeout(timer), resolve(a)),
      (e) => (clearTimeout(timer), reject(e))
    )
  })

const checkModel = (c: Case): string | undefined => {
  if (c.model === undefined) return undefined
  if (c.model === "malformed") {
    return c.expected.errorMessage.startsWith("malformed request: ")
      ? undefined
      : `the codec accepted a body the model calls malformed`
  }
  return mismatch(c.expected, c.model)
}

const runWorker = async (port: number, id: number, budget: number, stats: Stats, failures: Array<string>) => {
  const r = rng(seed + id * 0x9e3779b9)
  let conn: Conn | undefined
  let sent = 0
  try {
    while (sent < budget && failures.length < 20) {
      const cases = Array.from({ length: r.range(100, 400) }, () => generate(r))
      const end = tail(r, limit)
      const batch = stats.batches++
      const where = (i: number) =>
        `seed ${seed}, worker ${id}, batch ${batch}, frame ${i} (${cases[i]?.kind ?? end?.kind})`
        + (i < cases.length ? `, body ${Buffer.from(cases[i]!.body).toString("hex").slice(0, 160)}` : "")
      for (let i = 0; i < cases.length; i++) {
        count(stats.kinds, cases[i]!.kind)
        const wrong = checkModel(cases[i]!)
        if (wrong !== undefined) failures.push(`model: ${wrong} at ${where(i)}`)
      }
      if (end) count(stats.tails, end.kind)
      else count(stats.tails, "none (connection kept)")

      if (conn === undefined) {
        conn = await open(port)
        stats.connections++
      }
      const bytes = concat([...cases.map((c) => frame(c.body)), end?.bytes ?? []])
      // One to four writes, cut anywhere: frames and prefixes split across reads.
      const cuts = Array.from({ length: r.int(4) }, () => r.int(bytes.length)).sort((a, b) => a - b)
      let from = 0
      for (const cut of [...cuts, bytes.length]) {
        conn.socket.write(bytes.subarray(from, cut))
        from = cut
      }
      const expected: Array<Expected | RegExp> = [...cases.map((c) => c.expected), ...(end?.expected ?? [])]
      let replies
      try {
        if (end === undefined) replies = await within(conn.read(cases.length), 10_000, () => where(cases.length))
        else {
          if (end.needsEnd) conn.socket.end()
          const current = conn
          replies = await within(current.closed, 10_000, () => `${where(cases.length)}: ${current.received()} replies`)
          conn = undefined
        }
      } catch (e) {
        failures.push(String(e))
        break
      }
      if (replies.length !== expected.length) {
        failures.push(`${replies.length} replies for ${expected.length} expected, ${where(cases.length)}`)
      }
      for (let i = 0; i < Math.min(replies.length, expected.length); i++) {
        const want = expected[i]!
        const wrong = want instanceof RegExp
          ? want.test(replies[i]!.errorMessage) ? undefined : `${JSON.stringify(replies[i]!.errorMessage)} !~ ${want}`
          : mismatch(replies[i]!, want)
        if (wrong !== undefined) failures.push(`reply: ${wrong} at ${where(i)}`)
      }
      stats.pings++
      if (!(await within(ping(port), 5_000, () => `PING after ${where(0)}`))) {
        failures.push(`PING failed after ${where(0)}`)
      }
      sent += cases.length + (end ? 1 : 0)
      stats.frames += cases.length + (end ? 1 : 0)
    }
  } finally {
    conn?.socket.destroy()
  }
}

describe(`server fuzz (seed ${seed})`, () => {
  it.live(
    `answers ${frameBudget.toLocaleString("en")}+ generated frames exactly, and a fresh PING after every batch`,
    () =>
      Effect.promise(async () => {
        // The server runs in a process of its own: its memory is measured apart
        // from the generators and clients, and a crash would show as an exit.
        const server = await serverProcess({}, { QZ_SLEEP: "0" })
        try {
          await ping(server.port) // warm up before the baseline
          const before = await server.stats()
          const stats: Stats = { frames: 0, batches: 0, connections: 0, pings: 0, kinds: new Map(), tails: new Map() }
          const failures: Array<string> = []
          const started = performance.now()
          await Promise.all(
            Array.from(
              { length: workers },
              (_, id) => runWorker(server.port, id, frameBudget / workers, stats, failures)
            )
          )
          const seconds = (performance.now() - started) / 1000
          let after = await server.stats()
          for (let i = 0; i < 50 && after.connections > 0; i++) {
            await sleep(100)
            after = await server.stats()
          }
          console.log(
            `[reliability] fuzz seed ${seed}: ${stats.frames} frames in ${stats.batches} batches, `
              + `${stats.connections} fuzz connections + ${stats.pings} PING connections, ${seconds.toFixed(1)} s; `
              + `server process after GC: ${describeMemory(before, after)}`
              + `\n  kinds ${JSON.stringify(Object.fromEntries(stats.kinds))}\n  tails ${
                JSON.stringify(Object.fromEntries(stats.tails))
              }`
          )
          expect(failures.slice(0, 10), `seed ${seed}`).toEqual([])
          expect(stats.frames).toBeGreaterThanOrEqual(frameBudget)
          expect(server.child.exitCode, "the server process is still running").toBe(null)
          expect(after.connections, "every connection closed").toBe(0)
          // Live memory after a full GC: a server that kept anything per frame or
          // per connection (100k frames, ~15 MB of traffic) would show here.
          expect(after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers)).toBeLessThan(
            8 * 1024 * 1024
          )
          expect(after.rss - before.rss).toBeLessThan(128 * 1024 * 1024)
        } finally {
          await server.stop()
        }
      }),
    90_000
  )
})

// -----------------------------------------------------------------------------
// the codec alone
// -----------------------------------------------------------------------------

const root = protobuf.loadSync(new URL("../../proto/quasizero.proto", import.meta.url).pathname)
const PbRequest = root.lookupType("quasizero.Request")

const decodeStream = (chunks: ReadonlyArray<Uint8Array>, maxFrameSize: number) => {
  const decoder = new Wire.FrameDecoder(maxFrameSize)
  const frames: Array<Uint8Array> = []
  let error: Wire.WireError | undefined
  for (const chunk of chunks) error = decoder.push(chunk, frames) ?? error
  return { frames, error }
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")

describe(`Wire fuzz (seed ${seed})`, () => {
  it("FrameDecoder and the body decoders throw nothing but WireError, and chunking changes nothing", () => {
    const r = rng(seed ^ 0x5bd1e995)
    const failures: Array<string> = []
    const runs = 50_000
    for (let run = 0; run < runs && failures.length < 10; run++) {
      const maxFrameSize = r.pick([1, 16, 300, 4096, limit])
      let input: Uint8Array
      switch (r.int(3)) {
        case 0:
          input = r.bytes(r.int(200))
          break
        case 1:
          input = concat(Array.from({ length: r.range(1, 3) }, () => frame(generate(r).body)))
          break
        default: {
          // A valid stream with a few bytes flipped: prefixes go wrong too.
          input = concat(Array.from({ length: r.range(1, 3) }, () => frame(generate(r).body)))
          for (let k = r.range(1, 3); k > 0 && input.length > 0; k--) input[r.int(input.length)] = r.int(256)
        }
      }
      const cuts = Array.from({ length: r.int(6) }, () => r.int(input.length + 1)).sort((a, b) => a - b)
      const chunks = [...cuts, input.length].map((cut, i, all) => input.subarray(i === 0 ? 0 : all[i - 1]!, cut))
      let whole, split
      try {
        whole = decodeStream([input], maxFrameSize)
        split = decodeStream(chunks, maxFrameSize)
      } catch (e) {
        failures.push(`FrameDecoder threw ${String(e)} on ${hex(input)}`)
        continue
      }
      const reference = referenceFrames(input, maxFrameSize)
      if (
        whole.frames.map(hex).join() !== split.frames.map(hex).join()
        // Tags, not messages: a split prefix reports a lower bound of the declared size.
        || whole.error?.reason._tag !== split.error?.reason._tag
        || whole.frames.map(hex).join() !== reference.frames.map(hex).join()
        || (whole.error === undefined) !== (reference.end === "incomplete")
      ) {
        failures.push(`chunking or reference disagree on ${hex(input)} (cuts ${cuts}, limit ${maxFrameSize})`)
      }
      for (const body of whole.frames) {
        for (const decode of [Wire.decodeRequestUnsafe, Wire.decodeResponseUnsafe]) {
          try {
            decode(body)
          } catch (e) {
            if (!(e instanceof Wire.WireError)) failures.push(`${decode.name} threw ${String(e)} on ${hex(body)}`)
          }
        }
      }
    }
    expect(failures, `seed ${seed}`).toEqual([])
  })

  it("rejects field number 0 inside a skipped group, as at the top level (found by this fuzzer)", () => {
    // field 5 start group, field 0 fixed64, field 5 end group
    const body = Uint8Array.of(0x2b, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x2c)
    const decoded = Wire.decodeRequest(body)
    expect(Result.isFailure(decoded) && decoded.failure.reason._tag).toBe("WrongWireType")
  })

  it("what the decoder accepts, protobufjs decodes to the same request", () => {
    const r = rng(seed ^ 0x27d4eb2f)
    const failures: Array<string> = []
    const tally = new Map<string, number>()
    for (let run = 0; run < 40_000 && failures.length < 10; run++) {
      const c = generate(r)
      const ours = Wire.decodeRequest(c.body)
      let theirs: { code?: number; metadata?: Record<string, string>; payload?: Uint8Array } | undefined
      let theirError = ""
      try {
        theirs = PbRequest.decode(c.body) as typeof theirs
      } catch (e) {
        theirError = (e as Error).message
      }
      if (Result.isSuccess(ours) && theirs === undefined) {
        // protobufjs stops at 100 nested groups (we skip groups without
        // recursion) and at field numbers >= 2^29 (we skip them as unknown).
        if (theirError === "max depth exceeded" || theirError === "invalid tag encoding") {
          count(tally, `protobufjs only: ${theirError}`)
        } else failures.push(`we accept, protobufjs says ${theirError}: ${hex(c.body)}`)
      } else if (Result.isFailure(ours) && theirs !== undefined) {
        // protobufjs reads a known field whatever its wire type, and skips a
        // varint of any length; we reject both. It has no metadata limits.
        const reason = ours.failure.reason._tag
        if (reason === "WrongWireType" || reason === "VarintOverflow" || reason === "MetadataLimit") {
          count(tally, `ours only: ${reason}`)
        } else failures.push(`we reject (${ours.failure.message}), protobufjs accepts: ${hex(c.body)}`)
      } else if (Result.isSuccess(ours) && theirs !== undefined) {
        const req = ours.success
        // protobufjs may or may not keep "__proto__" as an own property of its
        // plain-object map; compare everything else.
        const entries = (m: Iterable<[string, string]>) =>
          JSON.stringify([...m].filter(([k]) => k !== "__proto__").sort())
        const same = req.code === (theirs.code ?? 0)
          && hex(req.payload) === hex(new Uint8Array(theirs.payload ?? []))
          && entries(req.metadata) === entries(Object.entries(theirs.metadata ?? {}))
        if (!same) failures.push(`decoded differently: ${hex(c.body)}`)
        count(tally, "both accept, same request")
      } else count(tally, "both reject")
    }
    console.log(`[reliability] codec vs protobufjs (seed ${seed}): ${JSON.stringify(Object.fromEntries(tally))}`)
    expect(failures, `seed ${seed}`).toEqual([])
  })
})
