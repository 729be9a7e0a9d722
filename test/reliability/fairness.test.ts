// One connection cannot stall the others (issue 11, item 2): after a budget of
// work (bytes decoded plus frames answered) the connection yields to the event
// loop, so other sockets are read between its passes. What one frame costs is
// bounded by the limits (metadata, group depth, maxFrameSize); the figures
// printed are a bystander's PING latency against the worst frames they allow.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Net from "node:net"
import type * as Handlers from "../../src/Handlers.ts"
import * as Wire from "../../src/Wire.ts"
import * as Harness from "../support/harness.ts"
import { exited, pingLatencies, quantile, serverProcess, sleep, spawnNode } from "./support.ts"

const MiB = 1024 * 1024

/** A connection that writes `bytes` (again and again while `repeat`), reading and counting replies. */
const attacker = (port: number, bytes: Uint8Array, repeat: boolean) => {
  const socket = Net.connect({ port, host: "127.0.0.1", noDelay: true })
  const decoder = new Wire.FrameDecoder(1 << 26)
  const frames: Array<Uint8Array> = []
  let replies = 0
  socket.on("error", () => {})
  const send = () => {
    if (!socket.destroyed) socket.write(bytes, () => repeat && setImmediate(send))
  }
  socket.on("connect", send)
  socket.on("data", (chunk) => {
    decoder.push(chunk, frames)
    replies += frames.length
    frames.length = 0
  })
  return { stop: () => socket.destroy(), replies: () => replies }
}

const us = (sorted: ReadonlyArray<number>, q: number) => quantile(sorted, q).toFixed(0)

describe("fairness between connections", () => {
  it.live("a flood of tiny requests is answered in slices, with event-loop turns between them", () =>
    Effect.gen(function*() {
      let handled = 0
      const table: Handlers.Table<never, never> = [[1, () => (handled++, Effect.succeed("PONG"))]]
      const { port } = yield* Harness.tcp({}, table)
      // Every turn of the event loop, how many requests were answered since the last one.
      let last = 0
      let worst = 0
      let turns = 0
      let sampling = true
      const sample = () => {
        worst = Math.max(worst, handled - last)
        last = handled
        turns++
        if (sampling) setImmediate(sample)
      }
      setImmediate(sample)
      // 2 MiB of PINGs (3 bytes each) in one write: ~700,000 requests.
      const ping = Uint8Array.of(2, 8, 1)
      const flood = new Uint8Array(Math.floor((2 * MiB) / 3) * 3)
      for (let i = 0; i < flood.length; i += 3) flood.set(ping, i)
      const a = attacker(port, flood, false)
      const total = flood.length / 3
      while (a.replies() < total) yield* Effect.promise(() => sleep(20))
      sampling = false
      a.stop()
      console.log(
        `[reliability] ${total} pipelined PINGs on one connection: at most ${worst} answered between two `
          + `event-loop turns (${turns} turns)`
      )
      // A pass is 1024 frames; the budget yields after about one. Without the yield
      // a whole read batch (~65,000 frames here) went at once.
      expect(worst).toBeLessThanOrEqual(4096)
    }))

  it("a bystander's PING against the worst frames the limits allow (printed, not asserted)", async () => {
    const server = await serverProcess({})
    const script = new URL("./attacker.ts", import.meta.url).pathname
    const run = async (env: Record<string, string>, n: number, ms: number) => {
      const a = await spawnNode([script], /ready/, { PORT: String(server.port), ...env })
      await sleep(300)
      const latencies = await pingLatencies(server.port, n, ms)
      const exit = exited(a.child)
      a.child.kill("SIGTERM")
      await exit
      const replies = (JSON.parse(a.output().trim().split("\n").pop()!) as { replies: number }).replies
      return { latencies, replies }
    }
    try {
      const idle = await pingLatencies(server.port, 300)
      const groups = await run({ KIND: "groups", CONNECTIONS: "2" }, 20, 2500)
      const empties = await run({ KIND: "empties" }, 300, 1500)
      console.log(
        `[reliability] bystander PING p50/p99: idle ${us(idle, 0.5)}/${us(idle, 0.99)} µs; against 2 peers `
          + `pipelining 16 MiB frames of nested groups (${groups.replies} answered) ${us(groups.latencies, 0.5)}/${
            us(groups.latencies, 0.99)
          } µs; against a flood of empty frames (${empties.replies} answered) ${us(empties.latencies, 0.5)}/${
            us(empties.latencies, 0.99)
          } µs`
      )
      expect(server.child.exitCode).toBeNull()
    } finally {
      await server.stop()
    }
  }, 60_000)
})
