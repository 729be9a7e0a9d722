// The multi-endpoint client over real loopback servers in this process:
// balancing, stats, discovery (a resolver whose answer changes under load,
// re-run on a TestClock schedule) and key affinity.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import { TestClock } from "effect/testing"
import * as Client from "../src/Client.ts"
import * as Demo from "../src/Demo.ts"
import * as Endpoints from "../src/Endpoints.ts"
import type * as Handlers from "../src/Handlers.ts"
import * as NodeClient from "../src/node/NodeClient.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as Harness from "./support/harness.ts"

/** A server on 127.0.0.1 whose ECHO counts what it saw. */
const counting = Effect.gen(function*() {
  const seen = { count: 0 }
  const table: Handlers.Table<unknown, never> = [
    ...Demo.table.filter(([code]) => code !== Demo.ECHO),
    [Demo.ECHO, (req) => Effect.sync(() => (seen.count++, req.payload))]
  ]
  const started = yield* Harness.tcp(undefined, table)
  return { ...started, seen, address: `127.0.0.1:${started.port}` }
})

const echo = (payload: string, metadata?: Record<string, string>) =>
  Request.makeUnsafe(Demo.ECHO, { payload, metadata })

/** Real-time polling for socket-driven conditions (never a timing assertion). */
const until = (condition: () => boolean, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000 && !condition(); i++) {
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
    }
    if (!condition()) return yield* Effect.die(new Error(`never happened: ${what}`))
  })

/** `n` callers calling in a loop until `stop.done`; returns the replies' count. */
const load = (client: Client.Client["Service"], n: number, stop: { done: boolean }) =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
    Effect.gen(function*() {
      let replies = 0
      while (!stop.done) {
        const res = yield* client.call(echo(`c${i}`))
        expect(Response.text(res)).toBe(`c${i}`)
        replies++
      }
      return replies
    }), { concurrency: "unbounded" })

describe("Client.make({ endpoints })", () => {
  it.live("round-robin spreads calls evenly; stats list every endpoint", () =>
    Effect.gen(function*() {
      const servers = [yield* counting, yield* counting, yield* counting]
      const client = yield* Client.make({ endpoints: servers.map((s) => s.address), balancer: Client.roundRobin })
      for (let i = 0; i < 30; i++) yield* client.call(echo("x"))
      expect(servers.map((s) => s.seen.count)).toEqual([10, 10, 10])
      const stats = yield* client.stats
      expect(stats.endpoints?.map((e) => [e.address, e.state, e.calls, e.errors])).toEqual(
        servers.map((s) => [s.address, "up", 10, 0])
      )
      expect(stats.open).toBe(3)
      // The per-endpoint counters (client.stats flushed them).
      const calls = yield* Metric.value(
        Metric.withAttributes(Endpoints.callsTotal, {
          endpoint: servers[0]!.address
        })
      )
      expect(calls.count).toBe(10)
    }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialers)))

  it.live("least-in-flight under 64 callers reaches every endpoint", () =>
    Effect.gen(function*() {
      const servers = [yield* counting, yield* counting, yield* counting]
      const client = yield* Client.make({ endpoints: servers.map((s) => s.address) })
      const stop = { done: false }
      const fiber = yield* Effect.forkChild(load(client, 64, stop))
      yield* until(() => servers.every((s) => s.seen.count > 50), "every server got calls")
      stop.done = true
      yield* Fiber.join(fiber)
    }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialers)))

  it.live("an endpoint that is down at start is ejected; the others serve; a NoEndpoint when none is known", () =>
    Effect.gen(function*() {
      const up = yield* counting
      const down = yield* counting
      yield* down.close
      const client = yield* Client.make({
        endpoints: [down.address, up.address],
        health: { eject: Schedule.spaced("1 hour") }
      })
      for (let i = 0; i < 10; i++) yield* client.call(echo("x"))
      expect(up.seen.count).toBe(10)
      const stats = yield* client.stats
      expect(stats.endpoints?.map((e) => e.state)).toEqual(["ejected", "up"])
      const ejections = yield* Metric.value(
        Metric.withAttributes(Endpoints.ejectionsTotal, {
          endpoint: down.address
        })
      )
      expect(ejections.count).toBe(1)
      const error = yield* Effect.flip(
        Client.make({ endpoints: Client.resolver(Effect.succeed([])) }).pipe(
          Effect.flatMap((c) => c.call(echo("x")))
        )
      )
      expect(error.reason._tag).toBe("NoEndpoint")
      const all = yield* Effect.flip(Client.make({ endpoints: [down.address] }))
      expect(all.reason._tag).toBe("ConnectFailed")
    }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialers)))

  it.live("a call that failed unsent (maybeProcessed: false) is retried on another endpoint", () =>
    Effect.gen(function*() {
      const [a, b] = [yield* counting, yield* counting]
      const client = yield* Client.make({
        endpoints: [a.address, b.address],
        balancer: Client.roundRobin,
        health: { eject: Schedule.spaced("1 hour") },
        retry: Schedule.recurs(2)
      })
      yield* client.call(echo("warm a"))
      yield* client.call(echo("warm b"))
      yield* a.close
      // a's connection closes; the next call routed to a redials, fails to
      // connect (not sent), ejects a and is retried on b.
      let open = 1
      for (let i = 0; i < 1000 && open > 0; i++) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
        open = (yield* client.stats).endpoints![0]!.open
      }
      expect(open).toBe(0)
      for (let i = 0; i < 10; i++) expect(Response.text(yield* client.call(echo(`x${i}`)))).toBe(`x${i}`)
      expect([a.seen.count, b.seen.count]).toEqual([1, 11])
      const stats = yield* client.stats
      expect(stats.endpoints?.map((e) => e.state)).toEqual(["ejected", "up"])
      expect(stats.endpoints![0]!.errors).toBeGreaterThanOrEqual(1)
    }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialers)))

  it.effect("discovery: endpoints added and removed under load on the resolver's TestClock schedule", () =>
    Effect.gen(function*() {
      const [a, b, c] = [yield* counting, yield* counting, yield* counting]
      let answer = [a.address, b.address]
      const client = yield* Client.make({
        endpoints: Client.resolver(Effect.sync(() => answer), { every: "10 seconds" }),
        requestTimeout: 0
      })
      const stop = { done: false }
      const fiber = yield* Effect.forkChild(load(client, 64, stop))
      yield* until(() => a.seen.count > 20 && b.seen.count > 20, "a and b serve")
      answer = [b.address, c.address]
      // Not due yet: nothing changes.
      yield* TestClock.adjust("9 seconds")
      yield* until(() => b.seen.count > 200, "more calls")
      expect(c.seen.count).toBe(0)
      yield* TestClock.adjust("1 second")
      yield* until(() => c.seen.count > 20, "c joins")
      const afterRemoval = a.seen.count
      yield* until(() => b.seen.count > 400 && c.seen.count > 200, "b and c serve")
      // a was drained: it finished what it had and got nothing new.
      expect(a.seen.count).toBe(afterRemoval)
      const stats = yield* client.stats
      expect(stats.endpoints?.map((e) => e.address).sort()).toEqual([b.address, c.address].sort())
      stop.done = true
      const replies = yield* Fiber.join(fiber)
      expect(replies.reduce((x, y) => x + y, 0)).toBe(a.seen.count + b.seen.count + c.seen.count)
    }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialers)))

  it.live("key affinity: the same key reaches the same server", () =>
    Effect.gen(function*() {
      const servers = [yield* counting, yield* counting, yield* counting]
      const client = yield* Client.make({
        endpoints: servers.map((s) => s.address),
        balancer: Client.keyAffinity({ metadata: "user" })
      })
      for (const user of ["ann", "bob", "cy", "dee", "eve", "fay"]) {
        const before = servers.map((s) => s.seen.count)
        for (let i = 0; i < 5; i++) yield* client.call(echo("x", { user }))
        const gained = servers.map((s, i) => s.seen.count - before[i]!)
        expect(gained.sort()).toEqual([0, 0, 5])
      }
    }).pipe(Effect.scoped, Effect.provide(NodeClient.layerDialers)))
})

describe("Balancer", () => {
  const nodes = (n: number) => Array.from({ length: n }, (_, i) => ({ address: `10.0.0.${i + 1}:7475`, inflight: 0 }))
  const keys = Array.from({ length: 10_000 }, (_, i) => `key-${i}`)

  it("key affinity: stable while the set is; a 4th endpoint moves about 1/4 of 10,000 keys, all to it", () => {
    const [n1, n2, n3, n4] = nodes(4)
    const picker = Client.makePicker<{ address: string; inflight: number }>(
      Client.keyAffinity({ key: (r) => Request.text(r) })
    )
    for (const node of [n1!, n2!, n3!]) picker.add(node)
    const before = keys.map((k) => picker.forKey(k)!.address)
    expect(keys.map((k) => picker.forKey(k)!.address)).toEqual(before)
    picker.add(n4!)
    const after = keys.map((k) => picker.forKey(k)!.address)
    const moved = after.filter((a, i) => a !== before[i])
    expect(moved.every((a) => a === n4!.address)).toBe(true)
    expect(moved.length / keys.length).toBeGreaterThan(0.17)
    expect(moved.length / keys.length).toBeLessThan(0.33)
    // Taking it out again restores the old owners exactly.
    picker.remove(n4!)
    expect(keys.map((k) => picker.forKey(k)!.address)).toEqual(before)
  })

  it("least-in-flight prefers the less loaded of two; round-robin cycles", () => {
    const [a, b] = nodes(2)
    a!.inflight = 5
    const p2c = Client.makePicker<{ address: string; inflight: number }>(Client.leastInFlight)
    p2c.add(a!)
    p2c.add(b!)
    for (let i = 0; i < 20; i++) expect(p2c.pick(undefined)).toBe(b)
    const rr = Client.makePicker<{ address: string; inflight: number }>(Client.roundRobin)
    for (const node of nodes(3)) rr.add(node)
    expect(Array.from({ length: 6 }, () => rr.pick(undefined)!.address)).toEqual(
      [...nodes(3), ...nodes(3)].map((n) => n.address)
    )
  })
})
