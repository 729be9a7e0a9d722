// A multi-endpoint client over three server processes with 64 callers: one
// server is SIGKILLed (then restarted on its port) or stopped (SIGSTOP, a
// server that stalls instead of dying: only `requestTimeout` can tell), under
// load. What must hold: every call ends (a reply or a typed ClientError,
// never a hang); no call is replayed anywhere (each TRACK id is seen by at
// most one server, at most once; every reply's id exactly once); the load
// moves to the other two servers at once; the client takes the server back
// once it answers again. The servers are test/support/faultServer.ts, which
// logs every TRACK id it handles before replying (so the log survives a
// SIGKILL). Figures are printed as one `cluster:` line per test.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as ChildProcess from "node:child_process"
import * as Readline from "node:readline"
import * as Client from "../../src/Client.ts"
import * as NodeClient from "../../src/node/NodeClient.ts"
import * as Request from "../../src/Request.ts"
import * as Response from "../../src/Response.ts"
import { TRACK } from "../support/faultServer.ts"

const script = new URL("../support/faultServer.ts", import.meta.url).pathname

interface ServerProcess {
  readonly port: number
  readonly address: string
  readonly child: ChildProcess.ChildProcess
  /** TRACK ids this process handled, with how many times each. */
  readonly seen: Map<string, number>
  readonly closed: Effect.Effect<void>
}

/** Starts a fault server (on `port`, else a free one); SIGKILLed when the scope closes. */
const spawnServer = (port = 0) =>
  Effect.acquireRelease(
    Effect.callback<ServerProcess, Error>((resume) => {
      const child = ChildProcess.spawn(process.execPath, [script], {
        env: { ...process.env, QZ_PORT: String(port) },
        stdio: ["ignore", "pipe", "pipe"]
      })
      const seen = new Map<string, number>()
      let gone = false
      const waiters: Array<() => void> = []
      let err = ""
      Readline.createInterface({ input: child.stdout }).on("line", (line: string) => {
        if (line.startsWith("seen ")) {
          const id = line.slice(5)
          seen.set(id, (seen.get(id) ?? 0) + 1)
        } else {
          const match = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line)
          if (match !== null) {
            const p = Number(match[1])
            resume(Effect.succeed({
              port: p,
              address: `127.0.0.1:${p}`,
              child,
              seen,
              closed: Effect.callback<void>((done) => {
                if (gone) return done(Effect.void)
                waiters.push(() => done(Effect.void))
              })
            }))
          }
        }
      })
      child.stderr.on("data", (d) => (err += d))
      child.on("close", (code) => {
        gone = true
        resume(Effect.fail(new Error(`server exited ${code}: ${err}`)))
        for (const w of waiters.splice(0)) w()
      })
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
  )

/** Real-time polling for process/socket-driven conditions (never a timing assertion). */
const until = (condition: () => boolean, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 2000 && !condition(); i++) {
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
    }
    if (!condition()) return yield* Effect.die(new Error(`never happened: ${what}`))
  })

const total = (server: ServerProcess) => server.seen.size

interface Outcomes {
  readonly replied: Array<string>
  readonly failed: Array<{ readonly id: string; readonly tag: string; readonly maybeProcessed: boolean }>
}

/** 64 callers, each calling TRACK with fresh ids until `stop.done`; every call bounded (a hang fails). */
const load = (client: Client.Client["Service"], stop: { done: boolean }, outcomes: Outcomes) =>
  Effect.forEach(Array.from({ length: 64 }, (_, i) => i), (caller) =>
    Effect.gen(function*() {
      for (let n = 0; !stop.done; n++) {
        const id = `${caller}-${n}`
        const exit = yield* Effect.exit(
          Effect.timeoutOrElse(client.call(Request.makeUnsafe(TRACK, { payload: id })), {
            duration: 10_000,
            orElse: () => Effect.die(new Error(`call ${id} hung`))
          })
        )
        if (exit._tag === "Success") {
          expect(Response.text(exit.value)).toBe(id)
          outcomes.replied.push(id)
        } else {
          const error = exit.cause.reasons.find((r) => r._tag === "Fail")
          if (error === undefined || error._tag !== "Fail") return yield* Effect.failCause(exit.cause)
          const e = error.error
          outcomes.failed.push({ id, tag: e.reason._tag, maybeProcessed: e.maybeProcessed })
          // Back off a little after a failure, as a caller would.
          yield* Effect.sleep("5 millis")
        }
      }
    }), { concurrency: "unbounded", discard: true })

const seenOver = (servers: ReadonlyArray<ServerProcess>) => {
  const seen = new Map<string, number>()
  for (const server of servers) {
    for (const [id, n] of server.seen) seen.set(id, (seen.get(id) ?? 0) + n)
  }
  return seen
}

/**
 * A server writes `seen ID` to its stdout before it replies, but the test reads
 * that pipe and the client's socket as two unrelated streams: under load the
 * last replies can be read before their `seen` lines. Wait for the pipes to
 * catch up with every reply (a reply whose `seen` never comes still fails).
 */
const drained = (servers: ReadonlyArray<ServerProcess>, outcomes: Outcomes) =>
  until(() => {
    const seen = seenOver(servers)
    return outcomes.replied.every((id) => seen.has(id))
  }, "every replied id's seen line read from its server")

/** Each id at most once over every server (incarnation); each reply's id exactly once. */
const checkNoReplay = (servers: ReadonlyArray<ServerProcess>, outcomes: Outcomes) => {
  const seen = seenOver(servers)
  const replayed = Array.from(seen).filter(([, n]) => n > 1)
  expect(replayed).toEqual([])
  const unseen = outcomes.replied.filter((id) => seen.get(id) !== 1)
  expect(unseen).toEqual([])
  // maybeProcessed: false means the server never saw it.
  const lied = outcomes.failed.filter((f) => !f.maybeProcessed && seen.has(f.id))
  expect(lied).toEqual([])
}

const clientOptions = (servers: ReadonlyArray<ServerProcess>): Client.EndpointsOptions => ({
  endpoints: servers.map((s) => s.address),
  requestTimeout: "1 second",
  connectTimeout: "1 second",
  // Fast redials and probes, so a restarted server is back within the test.
  pool: { refill: Schedule.spaced("50 millis") },
  health: { eject: Schedule.spaced("100 millis") },
  // maybeProcessed: false (never sent) is retried, on another endpoint.
  retry: Schedule.recurs(3)
})

describe("multi-endpoint client over three server processes", () => {
  it.live(
    "SIGKILL one under load: no hang, no replay, load moves to the others, taken back after restart",
    () =>
      Effect.gen(function*() {
        const servers = [yield* spawnServer(), yield* spawnServer(), yield* spawnServer()]
        const [victim, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess]
        const client = yield* Client.make(clientOptions(servers))
        const stop = { done: false }
        const outcomes: Outcomes = { replied: [], failed: [] }
        const fiber = yield* Effect.forkChild(load(client, stop, outcomes))
        yield* until(() => servers.every((s) => total(s) > 50), "every server serves")

        victim.child.kill("SIGKILL")
        yield* victim.closed
        const failedAtKill = outcomes.failed.length
        const [bAtKill, cAtKill] = [total(b), total(c)]
        yield* until(() => total(b) > bAtKill + 300 && total(c) > cAtKill + 300, "b and c take the load")
        const failedAfterMove = outcomes.failed.length
        const ejected = (yield* client.stats).endpoints!.find((e) => e.address === victim.address)!
        expect(ejected.state).toBe("ejected")
        expect(ejected.ejections).toBeGreaterThanOrEqual(1)

        const again = yield* spawnServer(victim.port)
        yield* until(() => total(again) > 50, "the restarted server is taken back")
        const back = (yield* client.stats).endpoints!.find((e) => e.address === victim.address)!
        expect(back.state).toBe("up")
        stop.done = true
        yield* Fiber.join(fiber)

        yield* drained([...servers, again], outcomes)
        checkNoReplay([...servers, again], outcomes)
        // Only the calls in flight on the killed server failed (ConnectionClosed,
        // maybe processed): at most the 64 callers' worth, all at the kill.
        const failures = outcomes.failed
        expect(failures.length).toBeLessThanOrEqual(64)
        expect(failures.every((f) => f.tag === "ConnectionClosed" && f.maybeProcessed)).toBe(true)
        expect(failedAfterMove).toBe(failures.length)
        console.log(
          `cluster: sigkill replied=${outcomes.replied.length} failed=${failures.length} (at kill ${failedAtKill})`
            + ` seen=${servers.map(total).join("/")} restarted=${total(again)}`
        )
      }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialers)),
    30_000
  )

  it.live(
    "a server that stalls (SIGSTOP) is ejected by requestTimeout, and taken back when it resumes",
    () =>
      Effect.gen(function*() {
        const servers = [yield* spawnServer(), yield* spawnServer(), yield* spawnServer()]
        const [victim, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess]
        const client = yield* Client.make({ ...clientOptions(servers), requestTimeout: "300 millis" })
        const stop = { done: false }
        const outcomes: Outcomes = { replied: [], failed: [] }
        const fiber = yield* Effect.forkChild(load(client, stop, outcomes))
        yield* until(() => servers.every((s) => total(s) > 50), "every server serves")

        victim.child.kill("SIGSTOP")
        // Nothing tells a stopped process from a slow one until requestTimeout.
        yield* until(() => outcomes.failed.length > 0, "the stalled server's calls time out")
        const [bAtStop, cAtStop] = [total(b), total(c)]
        yield* until(() => total(b) > bAtStop + 300 && total(c) > cAtStop + 300, "b and c take the load")
        const ejected = (yield* client.stats).endpoints!.find((e) => e.address === victim.address)!
        expect(ejected.state).toBe("ejected")

        victim.child.kill("SIGCONT")
        const atResume = total(victim)
        yield* until(() => total(victim) > atResume + 50, "the resumed server is taken back")
        stop.done = true
        yield* Fiber.join(fiber)

        yield* drained(servers, outcomes)
        checkNoReplay(servers, outcomes)
        const failures = outcomes.failed
        // The stalled server's calls time out (or fail with their connection):
        // maybe processed, never retried.
        expect(failures.length).toBeGreaterThan(0)
        expect(failures.every((f) => f.maybeProcessed)).toBe(true)
        expect(failures.every((f) => f.tag === "RequestTimeout" || f.tag === "ConnectionClosed")).toBe(true)
        console.log(
          `cluster: sigstop replied=${outcomes.replied.length} failed=${failures.length}`
            + ` seen=${servers.map(total).join("/")}`
        )
      }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialers)),
    30_000
  )
})
