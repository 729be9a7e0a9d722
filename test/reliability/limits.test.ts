// Metadata limits on the server (issue 11, item 1): a request past
// maxMetadataEntries or maxMetadataBytes is answered with an error naming the
// limit, decoded no further, and the connection stays usable; the defaults
// keep a heap-limited server alive under requests that used to kill it.
import { describe, expect, it } from "@effect/vitest"
import { concat, exited, metadataEntry, open, ping, serverProcess, spawnNode, utf8Bytes, uvarint } from "./support.ts"

const frameOf = (body: Uint8Array) => concat([uvarint(body.length), body])
const code = (n: number) => Uint8Array.of(0x08, n)
const META = 4
const SLEEP = 5
const PING = frameOf(code(1))

/** `n` entries with distinct keys `k0`, `k1`, ... and value `v`. */
const entries = (n: number, value = "v") => {
  const out: Array<Uint8Array> = []
  for (let i = 0; i < n; i++) out.push(metadataEntry(utf8Bytes(`k${i}`), utf8Bytes(value)))
  return concat(out)
}

/** `size` bytes of entries with tiny distinct keys: the cheapest bomb per byte. */
const bomb = (size: number) => {
  const out: Array<Uint8Array> = []
  let total = 0
  for (let i = 0; total < size; i++) {
    const e = metadataEntry(utf8Bytes(i.toString(36)), new Uint8Array(0))
    out.push(e)
    total += e.length
  }
  return concat(out)
}

const MB = (n: number) => (n / 1e6).toFixed(1)

describe("server metadata limits", () => {
  it("at the limits a request is served; one entry or byte more is refused by name, and the connection stays", async () => {
    const maxMetadataEntries = 37
    const maxMetadataBytes = 3001
    const server = await serverProcess({ maxMetadataEntries, maxMetadataBytes })
    try {
      const conn = await open(server.port)
      // 37 entries of 3001 bytes in all: keys k0..k9 (2 bytes) + k10..k36 (3 bytes) = 101
      // bytes, 36 values "v", and the last value takes the rest.
      const valueBytes = maxMetadataBytes - 101 - 36
      const atLimit = concat([code(META), entries(36), metadataEntry(utf8Bytes("k36"), new Uint8Array(valueBytes))])
      const overEntries = concat([code(META), entries(38)])
      const overBytes = concat([
        code(META),
        entries(36),
        metadataEntry(utf8Bytes("k36"), new Uint8Array(valueBytes + 1))
      ])
      // All pipelined in one write: the refused ones must not disturb the rest.
      conn.socket.write(concat([atLimit, overEntries, code(1), overBytes, code(1)].map(frameOf)))
      const [ok, e1, p1, e2, p2] = await conn.read(5)
      expect(ok!.errorMessage).toBe("")
      expect(ok!.metadata.size).toBe(37)
      expect(e1!.errorMessage).toBe("request refused: metadata has more than 37 entries (maxMetadataEntries)")
      expect(e2!.errorMessage).toBe("request refused: metadata is larger than 3001 bytes (maxMetadataBytes)")
      expect([p1, p2].map((p) => new TextDecoder().decode(p!.payload))).toEqual(["PONG", "PONG"])
      conn.socket.destroy()
    } finally {
      await server.stop()
    }
  })

  it("the defaults keep a 96 MB-heap server alive under bombs aimed at a slow handler", async () => {
    // 12 connections, each a 3 MiB request of tiny distinct keys to SLEEP 1500:
    // unlimited, each would hold ~25 MB of heap while its handler sleeps.
    const server = await serverProcess({}, {}, ["--max-old-space-size=96"])
    try {
      const before = await server.stats()
      const body = concat([code(SLEEP), bomb(3 << 20), Uint8Array.of(0x1a, 4), utf8Bytes("1500")])
      const conns = await Promise.all(Array.from({ length: 12 }, () => open(server.port)))
      for (const c of conns) c.socket.write(concat([frameOf(body), PING]))
      const replies = await Promise.all(conns.map((c) => c.read(2)))
      const after = await server.stats()
      console.log(
        `[reliability] 12 × 3 MiB metadata bombs to SLEEP, default limits, --max-old-space-size=96: `
          + `server heap ${MB(before.heapUsed)} → ${MB(after.heapUsed)} MB, rss ${MB(before.rss)} → ${MB(after.rss)} MB`
      )
      for (const [refused, pong] of replies) {
        expect(refused!.errorMessage).toBe("request refused: metadata has more than 1024 entries (maxMetadataEntries)")
        expect(new TextDecoder().decode(pong!.payload)).toBe("PONG")
      }
      for (const c of conns) c.socket.destroy()
      expect(await ping(server.port)).toBe(true)
      expect(server.child.exitCode).toBeNull()
    } finally {
      await server.stop()
    }
  }, 60_000)

  it("quasizero serve --max-metadata-entries / --max-metadata-bytes set the limits", async () => {
    const cli = new URL("../../src/bin/quasizero.ts", import.meta.url).pathname
    const { child, match } = await spawnNode(
      [cli, "serve", "--port", "0", "--max-metadata-entries", "3", "--max-metadata-bytes", "2KiB"],
      /listening on 127\.0\.0\.1:(\d+)/
    )
    try {
      const conn = await open(Number(match[1]))
      const big = metadataEntry(utf8Bytes("k"), new Uint8Array(2048))
      conn.socket.write(
        concat([concat([code(META), entries(3)]), concat([code(META), entries(4)]), concat([code(META), big])].map(
          frameOf
        ))
      )
      const [ok, tooMany, tooBig] = await conn.read(3)
      expect(ok!.metadata.size).toBe(3)
      expect(tooMany!.errorMessage).toContain("more than 3 entries (maxMetadataEntries)")
      expect(tooBig!.errorMessage).toContain("larger than 2048 bytes (maxMetadataBytes)")
      conn.socket.destroy()
    } finally {
      child.kill("SIGTERM")
      await exited(child)
    }
  })
})
