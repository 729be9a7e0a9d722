// A flood of empty frames that is never read (issue 11, item 7): each one-byte
// frame (code 0) is answered with ~25 bytes, as in Go. A peer that floods and
// never reads must stay inside its connection's bounds (one read batch in,
// at most 1024 replies encoded at once, then the drain is awaited) and inside
// the server-wide maxBufferedBytes; a bystander keeps being served.
import { describe, expect, it } from "@effect/vitest"
import * as Net from "node:net"
import { pingLatencies, quantile, serverProcess, sleep } from "./support.ts"

const MiB = 1024 * 1024
const mb = (n: number) => (n / MiB).toFixed(1)

const connectRaw = (port: number) =>
  new Promise<Net.Socket>((resolve, reject) => {
    const socket = Net.connect({ port, host: "127.0.0.1", noDelay: true })
    socket.once("connect", () => resolve(socket))
    socket.once("error", reject)
  })

describe("a flood of empty frames, never read", () => {
  it("holds one batch per connection, whatever the amplification, and bystanders are served", async () => {
    // Budget smaller than what the replies would take: the flood must fit anyway.
    const server = await serverProcess({ maxBufferedBytes: 8 * MiB })
    const floods: Array<Net.Socket> = []
    try {
      const idle = await pingLatencies(server.port, 300)
      const before = await server.stats()
      // 6 peers × 5 MiB of zero bytes: 31 million requests, ~750 MiB of replies if all were answered.
      const flood = new Uint8Array(5 * MiB)
      for (let i = 0; i < 6; i++) {
        const socket = await connectRaw(server.port)
        socket.pause() // never reads a reply
        socket.on("error", () => {})
        socket.write(flood)
        floods.push(socket)
      }
      await sleep(1500) // the server answers until every flooder's socket is full
      const during = await pingLatencies(server.port, 300)
      const stats = await server.stats()
      await sleep(300)
      const later = await server.stats()
      console.log(
        `[reliability] 6 peers × 5 MiB of empty frames, never read: server arrayBuffers ${mb(before.arrayBuffers)} → `
          + `${mb(stats.arrayBuffers)} MB, heap ${mb(before.heapUsed)} → ${mb(stats.heapUsed)} MB, rss ${
            mb(before.rss)
          } → ${mb(stats.rss)} MB, counted ${mb(stats.buffered)} MiB; bystander PING p50 ${
            quantile(idle, 0.5).toFixed(0)
          } → ${quantile(during, 0.5).toFixed(0)} µs, p99 ${quantile(idle, 0.99).toFixed(0)} → ${
            quantile(during, 0.99).toFixed(0)
          } µs`
      )
      // Per connection: a read batch (~0.3 MiB) and at most 1024 encoded replies (~25 KiB).
      expect(stats.arrayBuffers - before.arrayBuffers).toBeLessThan(6 * 1 * MiB)
      expect(stats.heapUsed - before.heapUsed).toBeLessThan(16 * MiB)
      expect(stats.buffered).toBeLessThanOrEqual(8 * MiB)
      // Stuck, not growing: nothing more is read while the replies are not.
      expect(later.arrayBuffers - stats.arrayBuffers).toBeLessThan(1 * MiB)
      expect(stats.connections).toBe(6)
      for (const s of floods) s.destroy()
      let after = await server.stats()
      for (let i = 0; i < 30 && after.connections > 0; i++) {
        await sleep(100)
        after = await server.stats()
      }
      expect(after.connections).toBe(0)
      expect(after.buffered).toBe(0)
      expect(server.child.exitCode).toBeNull()
    } finally {
      for (const s of floods) s.destroy()
      await server.stop()
    }
  }, 60_000)
})
