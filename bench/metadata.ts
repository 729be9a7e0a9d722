/**
 * Micro-benchmark behind the metadata representation: `ReadonlyMap` (what
 * src/Message.ts uses: any key is data, nothing can reach a prototype)
 * against a null-prototype record (the usual faster-looking alternative).
 *
 *   ./node_modules/.bin/node bench/metadata.ts          (or: npm run bench:metadata)
 *   ITERATIONS=2000000 ROUNDS=7 ./node_modules/.bin/node bench/metadata.ts
 *
 * "build" mimics the decoder: keys and values are fresh strings made from
 * bytes (as the wire decoder makes them), not interned literals, since a
 * record must internalize every fresh key while a Map only hashes it.
 * "lookup" is a handler reading a known key; "iterate" is what the encoder
 * and `metadataToRecord` do. Each case has its own loop so call sites stay
 * monomorphic; rounds alternate and the median is reported.
 */

const positiveInt = (name: string, fallback: number): number => {
  const value = Number(process.env[name])
  return Number.isSafeInteger(value) && value > 0 ? value : fallback
}
const ITERATIONS = positiveInt("ITERATIONS", 300_000)
const ROUNDS = positiveInt("ROUNDS", 5)

type Rec = Record<string, string>

const pairs = [
  ["trace", "4bf92f3577b34da6a3ce929d0e0e4736"],
  ["content-type", "application/octet-stream"],
  ["user", "alice"],
  ["deadline", "1732540800"]
] as const
const encoder = new TextEncoder()
const keyBytes = pairs.map(([k]) => encoder.encode(k))
const valueBytes = pairs.map(([, v]) => encoder.encode(v))

// The decoder's short-string path: a new string per call, never interned.
const fresh = (bytes: Uint8Array): string => {
  let s = ""
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!)
  return s
}

const emptyMap: ReadonlyMap<string, string> = new Map()
const emptyRecord: Rec = Object.freeze(Object.create(null))

const buildMap = (count: number): ReadonlyMap<string, string> => {
  let out: Map<string, string> | undefined
  for (let i = 0; i < count; i++) (out ??= new Map()).set(fresh(keyBytes[i]!), fresh(valueBytes[i]!))
  return out ?? emptyMap
}
const buildRecord = (count: number): Rec => {
  let out: Rec | undefined
  for (let i = 0; i < count; i++) (out ??= Object.create(null) as Rec)[fresh(keyBytes[i]!)] = fresh(valueBytes[i]!)
  return out ?? emptyRecord
}

const map4 = buildMap(4)
const record4 = buildRecord(4)
if (map4.get("user") !== record4["user"] || map4.size !== Object.keys(record4).length) throw new Error("mismatch")

let sink: unknown
let total = 0

interface Case {
  readonly name: string
  readonly map: (n: number) => void
  readonly record: (n: number) => void
}

const cases: ReadonlyArray<Case> = [
  {
    name: "build, 0 entries",
    map: (n) => {
      for (let i = 0; i < n; i++) sink = buildMap(0)
    },
    record: (n) => {
      for (let i = 0; i < n; i++) sink = buildRecord(0)
    }
  },
  {
    name: "build, 1 entry",
    map: (n) => {
      for (let i = 0; i < n; i++) sink = buildMap(1)
    },
    record: (n) => {
      for (let i = 0; i < n; i++) sink = buildRecord(1)
    }
  },
  {
    name: "build, 4 entries",
    map: (n) => {
      for (let i = 0; i < n; i++) sink = buildMap(4)
    },
    record: (n) => {
      for (let i = 0; i < n; i++) sink = buildRecord(4)
    }
  },
  {
    name: "lookup, hit (4 entries)",
    map: (n) => {
      for (let i = 0; i < n; i++) sink = map4.get("user")
    },
    record: (n) => {
      for (let i = 0; i < n; i++) sink = record4["user"]
    }
  },
  {
    name: "lookup, miss (4 entries)",
    map: (n) => {
      for (let i = 0; i < n; i++) sink = map4.get("missing")
    },
    record: (n) => {
      for (let i = 0; i < n; i++) sink = record4["missing"]
    }
  },
  {
    name: "iterate, 4 entries",
    map: (n) => {
      for (let i = 0; i < n; i++) {
        for (const [k, v] of map4) total += k.length + v.length
      }
    },
    record: (n) => {
      for (let i = 0; i < n; i++) {
        for (const k in record4) total += k.length + record4[k]!.length
      }
    }
  },
  {
    name: "build 4 + lookup + iterate",
    map: (n) => {
      for (let i = 0; i < n; i++) {
        const m = buildMap(4)
        sink = m.get("user")
        for (const [k, v] of m) total += k.length + v.length
      }
    },
    record: (n) => {
      for (let i = 0; i < n; i++) {
        const r = buildRecord(4)
        sink = r["user"]
        for (const k in r) total += k.length + r[k]!.length
      }
    }
  }
]

const opsPerSecond = (fn: (n: number) => void): number => {
  const start = process.hrtime.bigint()
  fn(ITERATIONS)
  return ITERATIONS / (Number(process.hrtime.bigint() - start) / 1e9)
}

const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US")
const ns = (opsPerSec: number): string => (1e9 / opsPerSec).toFixed(1)

console.log(`node ${process.version}, ITERATIONS=${ITERATIONS}, ROUNDS=${ROUNDS}`)
console.log()
console.log("| operation | Map ops/s | record ops/s | Map / record | Map ns/op | record ns/op |")
console.log("|---|---:|---:|---:|---:|---:|")
for (const c of cases) {
  c.map(Math.ceil(ITERATIONS / 5))
  c.record(Math.ceil(ITERATIONS / 5))
  const m: Array<number> = []
  const r: Array<number> = []
  for (let i = 0; i < ROUNDS; i++) {
    m.push(opsPerSecond(c.map))
    r.push(opsPerSecond(c.record))
  }
  const mo = median(m)
  const ro = median(r)
  console.log(`| ${c.name} | ${fmt(mo)} | ${fmt(ro)} | ${(mo / ro).toFixed(2)}× | ${ns(mo)} | ${ns(ro)} |`)
}
if (sink === Symbol() || total < 0) console.log("(unreachable)")
