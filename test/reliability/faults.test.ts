// Faults between our client and our server: a server process killed or
// stopped under load, a handler that never returns, a reply cut off
// mid-frame, handlers that die at random. What must hold: every call ends
// (reply or typed ClientError, never a hang), nothing is replayed,
// `maybeProcessed: false` is only ever said of a request the server never
// saw, and the same client works again once the server does.
//
// The server runs in a process of its own (test/support/faultServer.ts) so
// a SIGKILL is a real crash; it logs every TRACK request it handles, which is
// how the test knows what the server saw. Figures are printed as one
// `faults:` line per test.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Result from "effect/Result"
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import * as Readline from "node:readline"
import * as Client from "../../src/Client.ts"
import * as Demo from "../../src/Demo.ts"
import type * as Handlers from "../../src/Handlers.ts"
import * as NodeClient from "../../src/node/NodeClient.ts"
import * as Request from "../../src/Request.ts"
import * as Response from "../../src/Response.ts"
import * as Wire from "../../src/Wire.ts"
import { STALL, TRACK } from "../support/faultServer.ts"
import * as Harness from "../support/harness.ts"

const script = new URL("../support/faultServer.ts", import.meta.url).pathname

interface ServerProcess {
  readonly port: number
  readonly child: ChildProcess.ChildProcess
  /** TRACK ids the server handled, with how many times each. */
  readonly seen: Map<string, number>
  /** The process printed `exit` (its graceful shutdown finished). */
  readonly exitedGracefully: () => boolean
  /** Resolves with the exit code once the process is gone and its output read. */
  readonly closed: Effect.Effect<number | null>
}

/** Starts the fault server; killed (SIGKILL) when the scope closes, if still running. */
const spawnServer = (env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.callback<ServerProcess, Error>((resume) => {
      const child = ChildProcess.spawn(process.execPath, [script], {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      const seen = new Map<string, number>()
      let graceful = false
      let code: number | null | undefined
      const waiters: Array<() => void> = []
      let err = ""
      Readline.createInterface({ input: child.stdout }).on("line", (line: string) => {
        if (line.startsWith("seen ")) {
          const id = line.slice(5)
          seen.set(id, (seen.get(id) ?? 0) + 1)
        } else if (line === "exit") graceful = true
        else {
          const match = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line)
          if (match !== null) resume(Effect.succeed(server(Number(match[1]))))
        }
      })
      child.stderr.on("data", (d) => (err += d))
      // "close": the process is gone and its stdout fully read.
      child.on("close", (exitCode) => {
        code = exitCode
        resume(Effect.fail(new Error(`fault server exited ${exitCode}: ${err}`)))
        for (const w of waiters.splice(0)) w()
      })
      const server = (port: number): ServerProcess => ({
        port,
        child,
        seen,
        exitedGracefully: () => graceful,
        closed: Effect.callback<number | null>((done) => {
          if (code !== undefined) return done(Effect.succeed(code))
          waiters.push(() => done(Effect.succeed(code ?? null)))
        })
      })
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
  )

/** Our client on a port; `dials` counts the connections it opened. */
const clientOn = (port: number, options?: Client.Options, dials?: { count: number }) =>
  Effect.gen(function*() {
    const dialer = yield* NodeClient.make({ host: "127.0.0.1", port })
    const counted = dials === undefined ? dialer : {
      address: dialer.address,
      dial: Effect.tap(dialer.dial, () => Effect.sync(() => dials.count++))
    }
    return yield* Client.make(options).pipe(Effect.provideService(Client.Dialer, counted))
  })

/** Fails the test if `effect` runs longer than `ms` of real time (a hang). */
const bounded = <A, E, R>(effect: Effect.Effect<A, E, R>, ms: number) =>
  Effect.timeoutOrElse(effect, { duration: ms, orElse: () => Effect.die(new Error(`hung for ${ms} ms`)) })

const track = (id: string, delayMs = 0) => Request.makeUnsafe(TRACK, { payload: delayMs > 0 ? `${id}:${delayMs}` : id })

interface Outcome {
  readonly id: string
  readonly start: number
  readonly end: number
  readonly result: Result.Result<Response.Response, Client.ClientError>
}

/**
 * `callers` fibers in a closed loop of TRACK calls with unique ids (one in
 * eight waits `delayMs` in the handler, so calls are caught mid-handler), each
 * stopping at its first failure (the fault ends every caller's loop).
 */
const load = (
  client: Client.Client["Service"],
  options: { readonly callers: number; readonly delayMs: number; readonly prefix: string }
) =>
  Effect.gen(function*() {
    const outcomes: Array<Outcome> = []
    let next = 0
    const caller = Effect.gen(function*() {
      while (true) {
        const n = next++
        const id = `${options.prefix}${n}`
        const start = performance.now()
        const result = yield* Effect.result(client.call(track(id, n % 8 === 0 ? options.delayMs : 0)))
        outcomes.push({ id, start, end: performance.now(), result })
        if (Result.isFailure(result)) return
      }
    })
    const fiber = yield* Effect.forkChild(
      Effect.all(Array.from({ length: options.callers }, () => caller), { concurrency: "unbounded", discard: true })
    )
    return { outcomes, fiber }
  })

/** The checks every fault shares: typed errors, correct replies, no replay, honest maybeProcessed. */
const checkOutcomes = (outcomes: ReadonlyArray<Outcome>, seen: ReadonlyMap<string, number>) => {
  const tally: Record<string, number> = {}
  for (const { id, result } of outcomes) {
    if (Result.isSuccess(result)) {
      tally.ok = (tally.ok ?? 0) + 1
      // Its own reply (order is the only correlation), and the server saw it.
      expect(Response.text(result.success)).toBe(id)
      expect(seen.get(id), id).toBe(1)
    } else {
      const error = result.failure
      expect(Client.isClientError(error)).toBe(true)
      const key = `${error.reason._tag}/${error.maybeProcessed ? "maybe" : "not sent"}`
      tally[key] = (tally[key] ?? 0) + 1
      // "Not sent" must be true: the server never saw it.
      if (!error.maybeProcessed) expect(seen.has(id), `${id}: ${error.message}`).toBe(false)
    }
  }
  // Nothing replayed: every request the server handled, it handled once.
  for (const [id, count] of seen) expect(count, id).toBe(1)
  return tally
}

describe("faults: server process killed, stalled, stopped", () => {
  it.live(
    "SIGKILL under a 64-caller load: every pending call fails typed within requestTimeout, none replayed; the same client recovers after a restart",
    () =>
      bounded(
        Effect.gen(function*() {
          const requestTimeoutMs = 2000
          const first = yield* spawnServer()
          const port = first.port
          // 4 connections × 8 in flight: half the callers are on the wire, half
          // wait for a slot, when the server dies.
          const client = yield* clientOn(port, {
            requestTimeout: requestTimeoutMs,
            pool: { maxCap: 4 },
            maxInFlight: 8
          })
          const { fiber, outcomes } = yield* load(client, { callers: 64, delayMs: 5, prefix: "a" })
          yield* Effect.sleep(300)
          const killedAt = performance.now()
          first.child.kill("SIGKILL")
          // Every caller ends with its first failure; none may hang.
          yield* bounded(Fiber.join(fiber), requestTimeoutMs + 1000)
          expect(yield* first.closed).toBeNull() // killed by the signal
          const pending = outcomes.filter((o) => o.start < killedAt && o.end >= killedAt)
          const longest = Math.max(...pending.map((o) => o.end - killedAt))
          const tally = checkOutcomes(outcomes, first.seen)
          expect(outcomes.filter((o) => Result.isFailure(o.result)).length).toBe(64)
          expect(pending.length).toBeGreaterThan(0)
          expect(longest).toBeLessThan(requestTimeoutMs)
          // A call caught mid-request may have been written (maybeProcessed) or
          // still queued on its connection (not sent): checkOutcomes holds every
          // "not sent" to the truth — the server never saw it.
          expect(pending.some((o) => Result.isFailure(o.result) && o.result.failure.maybeProcessed)).toBe(true)

          // During the outage: fast, typed, "not sent" (refused).
          const outageStart = performance.now()
          const outage = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => `c${i}`),
            (id) => Effect.flip(client.call(track(id))),
            { concurrency: "unbounded" }
          )
          const outageMs = performance.now() - outageStart
          for (const error of outage) {
            expect(error.reason._tag).toBe("ConnectFailed")
            expect(error.maybeProcessed).toBe(false)
          }

          // Same port, same client: it recovers without being rebuilt.
          const second = yield* spawnServer({ QZ_PORT: String(port) })
          const replies = yield* Effect.forEach(
            Array.from({ length: 200 }, (_, i) => `b${i}`),
            (id) => Effect.map(client.call(track(id)), Response.text),
            { concurrency: 64 }
          )
          expect(replies).toEqual(Array.from({ length: 200 }, (_, i) => `b${i}`))
          second.child.kill("SIGTERM")
          yield* second.closed
          // Nothing from before the restart was replayed on the new server.
          expect([...second.seen.keys()].sort()).toEqual(Array.from({ length: 200 }, (_, i) => `b${i}`).sort())
          for (const count of second.seen.values()) expect(count).toBe(1)
          console.log(
            `faults: SIGKILL under 64 callers: ${outcomes.length} calls, server saw ${first.seen.size}, `
              + `${pending.length} pending at the kill, longest time to error ${longest.toFixed(1)} ms `
              + `(requestTimeout ${requestTimeoutMs} ms); ${JSON.stringify(tally)}; `
              + `20 calls during the outage refused in ${outageMs.toFixed(1)} ms; after restart 200/200 ok`
          )
        }),
        20_000
      ),
    30_000
  )

  it.live(
    "a handler that never returns: RequestTimeout, the connection is dropped, the next call gets its own reply",
    () =>
      bounded(
        Effect.gen(function*() {
          // The stalled handler never ends: shutdownTimeout bounds the graceful stop.
          const server = yield* spawnServer({ QZ_OPTIONS: JSON.stringify({ shutdownTimeout: 200 }) })
          const client = yield* clientOn(server.port, { requestTimeout: "300 millis", pool: { maxCap: 1 } })
          expect(Response.text(yield* client.call(track("before")))).toBe("before")
          const start = performance.now()
          // A stalled call, with a call multiplexed behind it on the same connection.
          const [stalled, behind] = yield* Effect.all([
            Effect.flip(client.call(Request.makeUnsafe(STALL))),
            Effect.flip(Effect.andThen(Effect.sleep(20), client.call(track("behind"))))
          ], { concurrency: "unbounded" })
          const elapsed = performance.now() - start
          expect(stalled.reason._tag).toBe("RequestTimeout")
          expect(stalled.maybeProcessed).toBe(true)
          expect(behind.reason._tag).toBe("ConnectionClosed")
          expect(behind.maybeProcessed).toBe(true)
          expect(elapsed).toBeGreaterThanOrEqual(290)
          expect(elapsed).toBeLessThan(1500)
          // A fresh connection: each call gets its own reply, none the stalled one's.
          for (let i = 0; i < 5; i++) expect(Response.text(yield* client.call(track(`after${i}`)))).toBe(`after${i}`)
          expect((yield* client.stats).open).toBe(1)
          server.child.kill("SIGTERM")
          yield* server.closed
          expect(server.exitedGracefully()).toBe(true)
          // The call queued behind the stall was written but never run: the server
          // handles one request of a connection at a time.
          expect(server.seen.has("behind")).toBe(false)
          expect([...server.seen.keys()].sort()).toEqual(["after0", "after1", "after2", "after3", "after4", "before"])
          console.log(`faults: stalled handler: RequestTimeout after ${elapsed.toFixed(0)} ms (requestTimeout 300 ms)`)
        }),
        15_000
      ),
    20_000
  )

  it.live(
    "graceful shutdown (SIGTERM) under a 64-caller load: every request the server read gets its reply",
    () =>
      bounded(
        Effect.gen(function*() {
          const server = yield* spawnServer()
          const client = yield* clientOn(server.port, {
            requestTimeout: "5 seconds",
            pool: { maxCap: 4 },
            maxInFlight: 8
          })
          const { fiber, outcomes } = yield* load(client, { callers: 64, delayMs: 5, prefix: "g" })
          yield* Effect.sleep(300)
          const stoppedAt = performance.now()
          server.child.kill("SIGTERM")
          yield* bounded(Fiber.join(fiber), 10_000)
          const exitCode = yield* server.closed
          const shutdownMs = performance.now() - stoppedAt
          expect(server.exitedGracefully()).toBe(true)
          expect(exitCode).not.toBeNull()
          const tally = checkOutcomes(outcomes, server.seen)
          // Read ⇒ replied: the server's count equals the client's replies.
          const replied = outcomes.filter((o) => Result.isSuccess(o.result)).length
          expect(replied).toBe(server.seen.size)
          expect(replied).toBeGreaterThan(0)
          console.log(
            `faults: graceful shutdown under 64 callers: server read ${server.seen.size}, client got ${replied} replies, `
              + `shutdown took ${shutdownMs.toFixed(0)} ms; ${JSON.stringify(tally)}`
          )
        }),
        20_000
      ),
    30_000
  )
})

describe("faults: replies cut off mid-frame (raw node:net server)", () => {
  // Answers code 1 with a whole PONG; code 9 with the first `cut` bytes of a
  // reply frame whose body is over 127 bytes (so the length varint has two
  // bytes and cut 1 lands inside it), then closes the connection.
  const cutServer = Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<Net.Server>((resolve) => {
        const whole = Wire.encodeResponse(Response.ok("x".repeat(200)))
        const server = Net.createServer({ noDelay: true }, (socket) => {
          const decoder = new Wire.FrameDecoder()
          const frames: Array<Uint8Array> = []
          socket.on("error", () => {})
          socket.on("data", (chunk) => {
            decoder.push(chunk, frames)
            for (const frame of frames.splice(0)) {
              const request = Wire.decodeRequestUnsafe(frame)
              if (request.code !== 9) {
                socket.write(Wire.encodeResponse(Response.ok("PONG")))
                continue
              }
              socket.end(whole.subarray(0, Number(Request.text(request))))
              return
            }
          })
        })
        server.listen({ host: "127.0.0.1", port: 0 }, () => resolve(server))
      })
    ),
    (server) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
  )

  it.live("at every kind of cut point: a typed error for the cut call and the pipeline, never a partial Response", () =>
    bounded(
      Effect.gen(function*() {
        const server = yield* cutServer
        const port = (server.address() as Net.AddressInfo).port
        const client = yield* clientOn(port, { pool: { maxCap: 1 } })
        const frameLength = Wire.encodeResponse(Response.ok("x".repeat(200))).length
        for (const cut of [0, 1, 2, 3, 50, frameLength - 1]) {
          const cutCall = Request.makeUnsafe(9, { payload: String(cut) })
          const single = yield* Effect.flip(client.call(cutCall))
          expect(["ConnectionClosed", "ProtocolError"]).toContain(single.reason._tag)
          expect(single.maybeProcessed).toBe(true)
          // A pipeline whose first reply is whole and second cut: it fails as a
          // whole; no ResponseBatch with a missing or truncated reply.
          const batch = yield* Effect.flip(client.pipeline([Request.makeUnsafe(1), cutCall, Request.makeUnsafe(1)]))
          expect(["ConnectionClosed", "ProtocolError"]).toContain(batch.reason._tag)
          // Multiplexed calls on one connection: the one before the cut gets
          // its reply, the cut one and the one after fail.
          const [before, cutOne, after] = yield* Effect.all([
            Effect.result(client.call(Request.makeUnsafe(1))),
            Effect.result(client.call(cutCall)),
            Effect.result(client.call(Request.makeUnsafe(1)))
          ], { concurrency: "unbounded" })
          expect(Result.isSuccess(before) && Response.text(before.success)).toBe("PONG")
          expect(Result.isFailure(cutOne)).toBe(true)
          expect(Result.isFailure(after)).toBe(true)
          // The decoder's partial frame died with the connection.
          expect(Response.text(yield* client.call(Request.makeUnsafe(1)))).toBe("PONG")
        }
      }),
      10_000
    ))
})

describe("faults: the client leaves while its handler runs (in-process server)", () => {
  // The server does not read while a handler runs, so it learns of the close
  // only when it writes the reply. That write must fail, not wait forever for
  // a 'drain' a closed socket never emits, or the connection is never released.
  for (const how of ["end", "destroy"] as const) {
    it.live(`the connection is released once the handler ends (client ${how}s)`, () =>
      bounded(
        Effect.gen(function*() {
          const errors: Array<string> = []
          const harness = yield* Harness.tcp({ onError: (e) => Effect.sync(() => errors.push(e.reason._tag)) })
          const socket = Net.connect({ host: "127.0.0.1", port: harness.port, allowHalfOpen: true })
          let received = 0
          let ended = false
          socket.on("data", (chunk) => (received += chunk.length))
          socket.on("end", () => (ended = true))
          socket.on("error", () => {})
          yield* Effect.promise(() => new Promise((resolve) => socket.once("connect", resolve)))
          socket.write(Wire.encodeRequests([Request.makeUnsafe(Demo.SLEEP, { payload: "150" })]))
          yield* Effect.sleep(50)
          expect(harness.server.connections()).toBe(1)
          socket[how]()
          const start = performance.now()
          while (harness.server.connections() > 0 && performance.now() - start < 2000) yield* Effect.sleep(10)
          expect(harness.server.connections()).toBe(0)
          if (how === "end") {
            // A half-close only says "no more requests": the reply still comes (as
            // from Go's server), then the server's FIN.
            while (!ended && performance.now() - start < 2000) yield* Effect.sleep(10)
            expect(received).toBe(Wire.encodeResponse(Response.ok("SLEPT")).length)
            expect(errors).toEqual([])
          } else {
            // The reply is lost. When the write itself fails, that is reported, not
            // swallowed; when the kernel still accepts it (the peer's close
            // arrived as a FIN), TCP gives the server no way to know.
            expect(errors.filter((e) => e !== "SocketFailure")).toEqual([])
          }
        }),
        5000
      ))
  }
})

describe("faults: handler defects at random under load (in-process server)", () => {
  it.live("1% of requests die: only those get `internal error`; no connection is dropped", () =>
    bounded(
      Effect.gen(function*() {
        const DEFECT = 7
        const died = new Set<string>()
        let seed = 0x9e3779b9
        const random = () => {
          seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
          return seed / 2 ** 32
        }
        // Three ways a handler can break: throw before returning an Effect,
        // Effect.die, and a throw inside Effect.sync.
        const table: Handlers.Table<unknown, never> = [
          ...Demo.table,
          [DEFECT, (request) => {
            const id = Request.text(request)
            if (random() >= 0.01) return Effect.succeed(id)
            died.add(id)
            switch (died.size % 3) {
              case 0:
                throw new Error(`thrown for ${id}`)
              case 1:
                return Effect.die(new Error(`died for ${id}`))
              default:
                return Effect.sync(() => {
                  throw new Error(`thrown in sync for ${id}`)
                })
            }
          }]
        ]
        const harness = yield* Harness.tcp(undefined, table)
        const dials = { count: 0 }
        const client = yield* clientOn(harness.port, { pool: { maxCap: 4 }, maxInFlight: 16 }, dials)
        let maxConnections = 0
        const results = yield* Effect.forEach(
          Array.from({ length: 64 }, (_, caller) => caller),
          (caller) =>
            Effect.forEach(Array.from({ length: 80 }, (_, i) => `${caller}-${i}`), (id) =>
              Effect.map(client.call(Request.makeUnsafe(DEFECT, { payload: id })), (response) => {
                maxConnections = Math.max(maxConnections, harness.server.connections())
                return { id, response }
              })),
          { concurrency: "unbounded" }
        )
        const flat = results.flat()
        expect(flat.length).toBe(64 * 80)
        let internal = 0
        for (const { id, response } of flat) {
          if (died.has(id)) {
            internal++
            expect(response.errorMessage).toBe("internal error")
          } else expect([response.errorMessage, Response.text(response)]).toEqual(["", id])
        }
        expect(internal).toBe(died.size)
        expect(died.size).toBeGreaterThan(10)
        // No call failed (the forEach above would have), and no connection was
        // dropped: the client still holds every connection it opened, and the
        // server still has each of them.
        const stats = yield* client.stats
        expect(stats.open).toBe(dials.count)
        expect(harness.server.connections()).toBe(dials.count)
        expect(maxConnections).toBeLessThanOrEqual(4)
        console.log(
          `faults: random handler defects: ${flat.length} calls, ${died.size} died (${
            (100 * died.size / flat.length).toFixed(2)
          }%), all answered \`internal error\`, ${stats.open} connection(s) kept`
        )
      }).pipe(Effect.provide(Logger.layer([]))),
      15_000
    ))
})
