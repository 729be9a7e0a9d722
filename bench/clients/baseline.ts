// The raw node:net baseline client: callback-driven closed loop, one
// connection per caller, each batch encoded in one buffer and written at once,
// every reply decoded. Prints one JSON Result line.
import * as Net from "node:net"
import * as Request from "../../src/Request.ts"
import * as Wire from "../../src/Wire.ts"
import { args, markClientStart, Recorder, resultLine, workloads } from "../lib/stats.ts"

const opts = args(process.argv.slice(2))
const workload = workloads[opts.workload ?? "seq"]
if (!workload) throw new Error(`unknown workload ${opts.workload}`)
const [host, port] = (opts.address ?? "127.0.0.1:7701").split(":") as [string, string]
const warmupMs = Number(opts.warmup ?? 1000)
const durationMs = Number(opts.duration ?? 3000)

const request = Request.makeUnsafe(workload.code, { payload: new Uint8Array(workload.payloadSize).fill(97) })
// Encoded at every send, as any real client must (the bytes of a request are not known in advance).
const batch = Array.from({ length: workload.depth }, () => request)
const recorder = new Recorder()
const start = performance.now()
const measureFrom = start + warmupMs
const stopAt = measureFrom + durationMs
let open = workload.callers

const caller = () => {
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
  socket.on("connect", send)
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
    else {
      socket.end()
      if (--open === 0) done()
    }
  })
  socket.on("error", (e) => {
    console.error(e.message)
    process.exit(1)
  })
}

const done = () => {
  const seconds = (performance.now() - measureFrom) / 1000
  console.log(resultLine(recorder.result(workload.name, "baseline", seconds)))
}

markClientStart()
for (let i = 0; i < workload.callers; i++) caller()
