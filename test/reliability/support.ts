// Shared by the reliability suite: a seeded generator (a failing run is
// replayed with FUZZ_SEED), protobuf bytes built by hand (so bodies can be
// broken in ways our encoder never would), a promise-based raw connection
// that can pipeline thousands of frames without an Effect per frame, and
// memory/handle probes.
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import type * as Response from "../../src/Response.ts"
import * as Wire from "../../src/Wire.ts"

// -----------------------------------------------------------------------------
// seeded randomness
// -----------------------------------------------------------------------------

export interface Rng {
  /** [0, 1) */
  readonly next: () => number
  /** [0, n) */
  readonly int: (n: number) => number
  /** [lo, hi] */
  readonly range: (lo: number, hi: number) => number
  readonly chance: (p: number) => boolean
  readonly pick: <A>(xs: ReadonlyArray<A>) => A
  readonly bytes: (n: number) => Uint8Array
}

/** mulberry32: tiny, fast, and good enough to spread inputs. */
export const rng = (seed: number): Rng => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  return {
    next,
    int,
    range: (lo, hi) => lo + int(hi - lo + 1),
    chance: (p) => next() < p,
    pick: (xs) => xs[int(xs.length)]!,
    bytes: (n) => {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) out[i] = int(256)
      return out
    }
  }
}

/** The run's seed: FUZZ_SEED when set, so a failure can be replayed. */
export const seedFromEnv = (): number => {
  const env = process.env.FUZZ_SEED
  return env !== undefined && env !== "" ? Number(env) >>> 0 : (Math.random() * 2 ** 32) >>> 0
}

// -----------------------------------------------------------------------------
// protobuf by hand
// -----------------------------------------------------------------------------

export const concat = (parts: ReadonlyArray<Uint8Array | ReadonlyArray<number>>): Uint8Array => {
  let size = 0
  for (const p of parts) size += p.length
  const out = new Uint8Array(size)
  let at = 0
  for (const p of parts) {
    if (p instanceof Uint8Array) out.set(p, at)
    else for (let i = 0; i < p.length; i++) out[at + i] = p[i]!
    at += p.length
  }
  return out
}

/** A uvarint of any size up to 2^70 (BigInt, so large values stay exact). */
export const uvarint = (value: number | bigint): Array<number> => {
  if (typeof value === "number" && value < 2 ** 31) {
    // The common case, without BigInt: generators call this for every tag.
    const out: Array<number> = []
    let v = value
    while (v >= 0x80) {
      out.push((v & 0x7f) | 0x80)
      v >>>= 7
    }
    out.push(v)
    return out
  }
  let n = BigInt(value)
  const out: Array<number> = []
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80)
    n >>= 7n
  }
  out.push(Number(n))
  return out
}

export const tag = (field: number, wireType: number): Array<number> => uvarint(field * 8 + wireType)

export const lengthDelimited = (field: number, bytes: Uint8Array | ReadonlyArray<number>): Uint8Array =>
  concat([tag(field, 2), uvarint(bytes.length), bytes])

export const frame = (body: Uint8Array): Uint8Array => concat([uvarint(body.length), body])

const utf8 = new TextEncoder()
export const utf8Bytes = (s: string): Uint8Array => utf8.encode(s)

/** A map<string,string> entry; key and value are raw bytes so they may be invalid UTF-8. */
export const metadataEntry = (key: Uint8Array, value: Uint8Array, extra?: Uint8Array): Uint8Array =>
  lengthDelimited(2, concat([lengthDelimited(1, key), extra ?? [], lengthDelimited(2, value)]))

// -----------------------------------------------------------------------------
// the demo command set, as the fuzz server runs it (SLEEP left out: a mutated
// body could ask it to sleep for hours)
// -----------------------------------------------------------------------------

const pong = utf8Bytes("PONG")
const meta = utf8Bytes("META")

export interface Expected {
  readonly errorMessage: string
  readonly metadata: ReadonlyArray<readonly [string, string]>
  readonly payload: Uint8Array
}

export const demoReply = (code: number, metadata: ReadonlyMap<string, string>, payload: Uint8Array): Expected => {
  switch (code) {
    case 1:
      return { errorMessage: "", metadata: [], payload: pong }
    case 2:
      return { errorMessage: "", metadata: [], payload }
    case 3:
      return { errorMessage: "something went wrong", metadata: [], payload: new Uint8Array(0) }
    case 4:
      return { errorMessage: "", metadata: [...metadata], payload: meta }
    default:
      return { errorMessage: `unknown command code ${code}`, metadata: [], payload: new Uint8Array(0) }
  }
}

export const errorReply = (errorMessage: string): Expected => ({
  errorMessage,
  metadata: [],
  payload: new Uint8Array(0)
})

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** `undefined` when `actual` is `expected`, else what differs (for the failure report). */
export const mismatch = (
  actual: {
    readonly errorMessage: string
    readonly metadata: Iterable<readonly [string, string]>
    readonly payload: Uint8Array
  },
  expected: Expected
): string | undefined => {
  if (actual.errorMessage !== expected.errorMessage) {
    return `error_message ${JSON.stringify(actual.errorMessage)} != ${JSON.stringify(expected.errorMessage)}`
  }
  if (!sameBytes(actual.payload, expected.payload)) {
    return `payload of ${actual.payload.length} bytes != ${expected.payload.length}`
  }
  const entries = [...actual.metadata]
  if (entries.length !== expected.metadata.length) {
    return `${entries.length} metadata entries != ${expected.metadata.length}`
  }
  for (let i = 0; i < entries.length; i++) {
    if (entries[i]![0] !== expected.metadata[i]![0] || entries[i]![1] !== expected.metadata[i]![1]) {
      return `metadata entry ${i} ${JSON.stringify(entries[i])} != ${JSON.stringify(expected.metadata[i])}`
    }
  }
  return undefined
}

// -----------------------------------------------------------------------------
// a raw connection for bulk traffic
// -----------------------------------------------------------------------------

export interface Conn {
  readonly socket: Net.Socket
  /** Resolves with the next `n` replies; rejects if the server closes first. */
  readonly read: (n: number) => Promise<Array<Response.Response>>
  /** Resolves, once the server has closed, with every reply not yet read. */
  readonly closed: Promise<Array<Response.Response>>
  readonly received: () => number
}

export const open = (port: number): Promise<Conn> =>
  new Promise((resolve, reject) => {
    const socket = Net.connect({ port, host: "127.0.0.1", noDelay: true })
    // Replies are never larger than what we send; 64 MiB covers every test.
    const decoder = new Wire.FrameDecoder(1 << 26)
    const frames: Array<Uint8Array> = []
    let consumed = 0
    let ended = false
    let framing: Error | undefined
    let waiter: (() => void) | undefined
    const wake = () => {
      const w = waiter
      waiter = undefined
      w?.()
    }
    let closedResolve: (replies: Array<Response.Response>) => void = () => {}
    const closed = new Promise<Array<Response.Response>>((r) => (closedResolve = r))
    socket.on("data", (chunk) => {
      const error = decoder.push(chunk, frames)
      if (error) {
        framing = error
        socket.destroy()
      }
      wake()
    })
    socket.on("close", () => {
      ended = true
      wake()
      closedResolve(frames.slice(consumed).map((f) => Wire.decodeResponseUnsafe(f, Wire.noDecodeLimits)))
    })
    socket.on("error", () => {})
    const read = (n: number): Promise<Array<Response.Response>> =>
      new Promise((done, fail) => {
        const check = () => {
          if (framing) return fail(framing)
          if (frames.length - consumed >= n) {
            const out = frames.slice(consumed, consumed + n).map((f) =>
              Wire.decodeResponseUnsafe(f, Wire.noDecodeLimits)
            )
            consumed += n
            // Drop what was read so a long-lived connection holds no history.
            frames.splice(0, consumed)
            consumed = 0
            return done(out)
          }
          if (ended) return fail(new Error(`connection closed after ${frames.length - consumed} of ${n} replies`))
          waiter = check
        }
        check()
      })
    socket.once("connect", () => {
      socket.off("error", reject)
      resolve({ socket, read, closed, received: () => frames.length })
    })
    socket.once("error", reject)
  })

/** One PING on a fresh connection: the server is alive and well. */
export const ping = async (port: number): Promise<boolean> => {
  const conn = await open(port)
  try {
    conn.socket.write(Uint8Array.of(2, 8, 1))
    const [reply] = await conn.read(1)
    return reply !== undefined && reply.errorMessage === "" && new TextDecoder().decode(reply.payload) === "PONG"
  } finally {
    conn.socket.destroy()
  }
}

// -----------------------------------------------------------------------------
// memory, handles, processes
// -----------------------------------------------------------------------------

V8.setFlagsFromString("--expose-gc")
/** A full GC, so heap figures compare live data rather than garbage. */
export const gc = Vm.runInNewContext("gc") as () => void

const mb = (bytes: number) => Math.round(bytes / 1e5) / 10

export interface MemorySample {
  readonly rss: number
  readonly heapUsed: number
  readonly arrayBuffers: number
}

export const describeMemory = (before: MemorySample, after: MemorySample): string =>
  `rss ${mb(before.rss)} → ${mb(after.rss)} MB, heap ${mb(before.heapUsed)} → ${mb(after.heapUsed)} MB, `
  + `arrayBuffers ${mb(before.arrayBuffers)} → ${mb(after.arrayBuffers)} MB`

/** libuv handles held by this process (sockets, servers, timers, pipes). */
export const activeHandles = (): number =>
  (process as unknown as { _getActiveHandles: () => Array<unknown> })._getActiveHandles().length

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Polls `done` every 10 ms for at most `ms`; resolves with its last value. */
export const eventually = async (done: () => boolean, ms: number): Promise<boolean> => {
  const until = Date.now() + ms
  while (!done()) {
    if (Date.now() > until) return false
    await sleep(10)
  }
  return true
}

/** Spawns a Node script; resolves once it prints a line matching `ready`. */
export const spawnNode = (
  args: ReadonlyArray<string>,
  ready: RegExp,
  env?: Record<string, string>
): Promise<
  { readonly child: ChildProcess.ChildProcess; readonly match: RegExpExecArray; readonly output: () => string }
> =>
  new Promise((resolve, reject) => {
    const child = ChildProcess.spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env }
    })
    let out = ""
    let err = ""
    let done = false
    child.stdout!.on("data", (d) => {
      out += d
      const match = ready.exec(out)
      if (match && !done) {
        done = true
        resolve({ child, match, output: () => out + err })
      }
    })
    child.stderr!.on("data", (d) => (err += d))
    child.on("exit", (code) => {
      if (!done) reject(new Error(`${args.join(" ")} exited with ${code}: ${out}${err}`))
    })
  })

export const exited = (child: ChildProcess.ChildProcess): Promise<number | null> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode)
    child.once("exit", (code) => resolve(code))
  })

export interface ServerStats {
  readonly rss: number
  readonly heapUsed: number
  readonly arrayBuffers: number
  readonly external: number
  readonly connections: number
  /** `Server.bufferedBytes()`: bytes counted against maxBufferedBytes. */
  readonly buffered: number
}

export interface ServerProcess {
  readonly port: number
  readonly child: ChildProcess.ChildProcess
  /** Memory after a full GC in the server process, and its open connections. */
  readonly stats: () => Promise<ServerStats>
  /** SIGTERM, then the exit code (null when killed by a signal). */
  readonly stop: () => Promise<number | null>
  /** Every line the server printed on stdout. */
  readonly lines: ReadonlyArray<string>
}

const serverScript = new URL("./server.ts", import.meta.url).pathname

/** Starts test/reliability/server.ts in its own process. */
export const serverProcess = (
  options: Record<string, unknown> = {},
  env: Record<string, string> = {},
  nodeArgs: ReadonlyArray<string> = []
): Promise<ServerProcess> =>
  new Promise((resolve, reject) => {
    const child = ChildProcess.spawn(process.execPath, ["--expose-gc", ...nodeArgs, serverScript], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, ...env, QZ_OPTIONS: JSON.stringify(options) }
    })
    let out = ""
    let err = ""
    let port = 0
    let waiting: Array<(stats: ServerStats) => void> = []
    const lines: Array<string> = []
    child.stderr!.on("data", (d) => (err += d))
    child.stdout!.setEncoding("utf8")
    child.stdout!.on("data", (d: string) => {
      out += d
      let nl
      while ((nl = out.indexOf("\n")) >= 0) {
        const line = out.slice(0, nl)
        out = out.slice(nl + 1)
        lines.push(line)
        const listening = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line)
        if (listening && port === 0) {
          port = Number(listening[1])
          resolve({
            port,
            child,
            stats: () =>
              new Promise((done) => {
                waiting.push(done)
                child.stdin!.write("stats\n")
              }),
            stop: () => {
              const exit = exited(child)
              child.kill("SIGTERM")
              return exit
            },
            lines
          })
        } else if (line.startsWith("{")) {
          const [first, ...rest] = waiting
          waiting = rest
          first?.(JSON.parse(line) as ServerStats)
        }
      }
    })
    child.on("exit", (code) => {
      if (port === 0) reject(new Error(`server exited with ${code}: ${err}`))
    })
  })

/**
 * Round trips of sequential PINGs on one connection, in microseconds, sorted:
 * `n` of them, and for at least `ms` milliseconds.
 */
export const pingLatencies = async (port: number, n: number, ms = 0): Promise<Array<number>> => {
  const conn = await open(port)
  const out: Array<number> = []
  try {
    const request = Uint8Array.of(2, 8, 1)
    const until = performance.now() + ms
    for (let i = 0; i < n || performance.now() < until; i++) {
      const start = performance.now()
      conn.socket.write(request)
      await conn.read(1)
      out.push((performance.now() - start) * 1000)
    }
  } finally {
    conn.socket.destroy()
  }
  return out.sort((a, b) => a - b)
}

export const quantile = (sorted: ReadonlyArray<number>, q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
