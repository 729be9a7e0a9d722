// The raw node:net baseline client: callback-driven closed loop, one
// connection per caller, each batch encoded in one buffer and written at once,
// every reply decoded. Prints one JSON Result line; with `--session`, one per
// window the runner asks for (bench/lib/session.ts).
import * as Net from "node:net"
import * as Request from "../../src/Request.ts"
import * as Wire from "../../src/Wire.ts"
import * as Session from "../lib/session.ts"
import { args, markClientStart, Recorder, type Result, resultLine, workloads } from "../lib/stats.ts"

const opts = args(process.argv.slice(2))
const workload = workloads[opts.workload ?? "seq"]
if (!workload) throw new Error(`unknown workload ${opts.workload}`)
const [host, port] = (opts.address ?? "127.0.0.1:7701").split(":") as [string, string]

const request = Request.makeUnsafe(workload.code, { payload: new Uint8Array(workload.payloadSize).fill(97) })
// Encoded at every send, as any real client must (the bytes of a request are not known in advance).
const batch = Array.from({ length: workload.depth }, () => request)

// The current window: callers keep sending until stopAt, then go idle (their connections stay open).
let recorder = new Recorder()
let measureFrom = 0
let stopAt = 0
let idle = 0
let windowDone: () => void = () => {}

interface Caller {
  readonly send: () => void
  readonly socket: Net.Socket
}

const caller = (connected: () => void): Caller => {
  const socket = Net.connect({ host, port: Number(port), noDelay: true })
  const decoder = new Wire.FrameDecoder()
  const frames: Array<Uint8Array> = []
  let waiting = 0
  let sentAt = 0
  const send = () => {
    sentAt = performance.now()
    waiting = workload.depth
    socket.write(Wire.encodeRequests(batch))
  }
  socket.on("connect", connected)
  socket.on("data", (chunk) => {
    if (decoder.push(chunk, frames)) throw new Error("framing error")
    for (let i = 0; i < frames.length; i++) {
      if (Wire.decodeResponseUnsafe(frames[i]!).errorMessage !== "") recorder.errors++
    }
    waiting -= frames.length
    recorder.total += frames.length
    frames.length = 0
    if (waiting > 0) return
    const now = performance.now()
    if (now >= measureFrom) recorder.record((now - sentAt) * 1e6, workload.depth)
    if (now < stopAt) send()
    else if (--idle === 0) windowDone()
  })
  socket.on("error", (e) => {
    console.error(e.message)
    process.exit(1)
  })
  return { send, socket }
}

const connectAll = () =>
  new Promise<Array<Caller>>((resolve) => {
    let pending = workload.callers
    const callers = Array.from({ length: workload.callers }, () => caller(() => --pending === 0 && resolve(callers)))
  })

/** One window over the open connections: warm-up (not recorded), then the measured part. */
const window = (callers: ReadonlyArray<Caller>): Session.Window => (warmupMs, durationMs) =>
  new Promise<Result>((resolve) => {
    recorder = new Recorder()
    measureFrom = performance.now() + warmupMs
    stopAt = measureFrom + durationMs
    idle = callers.length
    windowDone = () => resolve(recorder.result(workload.name, "baseline", (performance.now() - measureFrom) / 1000))
    for (const c of callers) c.send()
  })

markClientStart()
connectAll().then(async (callers) => {
  const run = window(callers)
  const close = () => callers.forEach((c) => c.socket.end())
  if (opts.session !== undefined) return Session.serve(run, close)
  const result = await run(Number(opts.warmup ?? 1000), Number(opts.duration ?? 3000))
  close()
  console.log(resultLine(result))
})
