// Where an idle server connection's memory goes: an in-process server with
// N (1,000) idle connections that each had one PING answered, two heap
// snapshots (before and after they opened, after a full GC), and the
// difference per connection by V8 node type and constructor. The client
// sockets live in the same process: their net.Socket objects count too
// (about half of the Socket/TCP/ReadableState/WritableState rows).
//
//   ./node_modules/.bin/node --expose-gc bench/serverHeap.ts
//   T=1 N=2000 ./node_modules/.bin/node --expose-gc bench/serverHeap.ts   # with timeout + idleTimeout
//
// Snapshots go to $TMPDIR (or /tmp).
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as V8 from "node:v8"
import * as Demo from "../src/Demo.ts"
import * as NodeServer from "../src/node/NodeServer.ts"
import * as Server from "../src/Server.ts"
import * as Wire from "../src/Wire.ts"
const N = Number(process.env.N ?? 1000)
const T = process.env.T === "1"
const ping = Wire.encodeRequest({ code: 1, metadata: new Map(), payload: new Uint8Array(0) })
const summarize = (file: string) => {
  const snap = JSON.parse(Fs.readFileSync(file, "utf8"))
  const f = snap.snapshot.meta.node_fields as string[]
  const types = snap.snapshot.meta.node_types[0] as string[]
  const nf = f.length, ti = f.indexOf("type"), ni = f.indexOf("name"), si = f.indexOf("self_size")
  const nodes = snap.nodes as number[], strings = snap.strings as string[]
  const m = new Map<string, [number, number]>()
  for (let i = 0; i < nodes.length; i += nf) {
    const key = types[nodes[i + ti]] + ":" + strings[nodes[i + ni]].slice(0, 60)
    const e = m.get(key) ?? [0, 0]
    e[0]++
    e[1] += nodes[i + si]
    m.set(key, e)
  }
  return m
}
const pinged = (port: number) =>
  new Promise<Net.Socket>((res, rej) => {
    const s = Net.connect({ port, host: "127.0.0.1" })
    s.once("connect", () => s.write(ping))
    s.once("data", () => res(s))
    s.once("error", rej)
  })
const ServerLive = Server.layer(T ? { timeout: 30000, idleTimeout: 300000 } : {}).pipe(
  Layer.provide(Demo.layer),
  Layer.provide(NodeServer.layer({ host: "127.0.0.1", port: 0 }))
)
await Effect.runPromise(
  Effect.scoped(Effect.gen(function*() {
    const server = yield* Server.Server
    const port = (server.address as NetAddress.InetAddress).port
    yield* Effect.promise(async () => {
      for (let i = 0; i < 3; i++) {
        ;(await Promise.all(Array.from({ length: 100 }, () => pinged(port)))).forEach((s) => s.destroy())
      }
      await new Promise((r) => setTimeout(r, 300))
      ;(globalThis as any).gc()
      const a = V8.writeHeapSnapshot(`${Os.tmpdir()}/serverHeap-a.heapsnapshot`)
      const socks: Net.Socket[] = []
      while (socks.length < N) socks.push(...await Promise.all(Array.from({ length: 100 }, () => pinged(port))))
      await new Promise((r) => setTimeout(r, 300))
      ;(globalThis as any).gc()
      const b = V8.writeHeapSnapshot(`${Os.tmpdir()}/serverHeap-b.heapsnapshot`)
      const ma = summarize(a), mb = summarize(b)
      const rows: [string, number, number][] = []
      for (const [k, [c, s]] of mb) {
        const [c0, s0] = ma.get(k) ?? [0, 0]
        if (s - s0 > 0) rows.push([k, (c - c0) / N, (s - s0) / N])
      }
      rows.sort((x, y) => y[2] - x[2])
      let tot = 0
      for (const r of rows) tot += r[2]
      console.log(`total heap self bytes per conn: ${tot.toFixed(0)}`)
      for (const r of rows.slice(0, 45)) console.log(r[2].toFixed(0).padStart(6), r[1].toFixed(2).padStart(6), r[0])
      socks.forEach((s) => s.destroy())
      Fs.rmSync(a)
      Fs.rmSync(b)
    })
  })).pipe(Effect.provide(ServerLive))
)
process.exit(0)
