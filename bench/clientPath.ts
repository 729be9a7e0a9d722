// The client's own CPU per request, with no socket: `Client.make` over a
// transport that answers each write on the next turn of the event loop
// (`setImmediate`, as a socket read would), the same fake server for every
// contender. What it measures is the client's JS per call (pick, queue, encode,
// decode, complete, the fiber park/resume), none of the kernel's time and
// none of a server's: on this shared VM, loopback runs move ±30% run to run,
// this moves a few percent. Compare two trees by running it in each.
//
//   node bench/clientPath.ts                         seq, pipe10, pipe100, echo1k
//   WORKLOADS=seq CALLS=200000 ROUNDS=5 node bench/clientPath.ts
//   CONTENDER=raw node bench/clientPath.ts           the floor: bench/clients/baseline.ts's loop, same transport
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Socket from "effect/socket/Socket"
import * as Workload from "../src/bin/workload.ts"
import * as Client from "../src/Client.ts"
import * as ClientTransport from "../src/ClientTransport.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as Wire from "../src/Wire.ts"

const names = (process.env.WORKLOADS ?? "seq,pipe10,pipe100,echo1k").split(",")
const calls = Number(process.env.CALLS ?? 100_000)
const rounds = Number(process.env.ROUNDS ?? 3)
const contender = process.env.CONTENDER ?? "ours"

// A transport that replies to every frame written with the reply of `code`.
const transport = (reply: (code: number, payload: Uint8Array) => Response.Response) =>
(
  handler: ClientTransport.Handler
): ClientTransport.Transport => {
  const decoder = new Wire.FrameDecoder()
  const frames: Array<Uint8Array> = []
  let pending: Array<Response.Response> = []
  let scheduled = false
  const answer = () => {
    scheduled = false
    const replies = pending
    pending = []
    handler.onData(Wire.encodeResponses(replies))
  }
  return {
    write: (bytes) => {
      decoder.push(bytes, frames)
      for (let i = 0; i < frames.length; i++) {
        const request = Wire.decodeRequestUnsafe(frames[i]!)
        pending.push(reply(request.code, request.payload))
      }
      frames.length = 0
      if (!scheduled) {
        scheduled = true
        setImmediate(answer)
      }
      return true
    },
    destroy: () => {}
  }
}

const pong = Response.ok("PONG")
const answer = transport((code, payload) => (code === 1 ? pong : Response.ok(payload)))

const dialer = () => {
  const open: ClientTransport.Open = (handler) => Effect.sync(() => answer(handler))
  const socket = ClientTransport.withOpen(Socket.make({ reader: Effect.never, writer: Effect.never } as any), open)
  return Layer.succeed(Client.Dialer)(Client.Dialer.of({ address: "memory", dial: Effect.succeed(socket) }))
}

const layer = dialer()

const report = (name: string, round: number, requests: number, cpu: NodeJS.CpuUsage, wall: number) =>
  console.log(
    `${contender} ${name.padEnd(8)} round ${round + 1}: CPU ${
      (((cpu.user + cpu.system) / requests) * 1000).toFixed(0)
    } ns/req, wall ${((wall * 1e6) / requests).toFixed(0)} ns/req`
  )

// bench/clients/baseline.ts's caller over the same transport, one caller.
const raw = (name: string) =>
  new Promise<void>((done) => {
    const workload = Workload.workloads[name]!
    const request = Request.makeUnsafe(workload.code, { payload: new Uint8Array(workload.payloadSize).fill(97) })
    const batch = Array.from({ length: workload.depth }, () => request)
    const loops = Math.max(1, Math.round(calls / workload.depth))
    const decoder = new Wire.FrameDecoder()
    const frames: Array<Uint8Array> = []
    let round = -1
    let left = 0
    let waiting = 0
    let cpu = process.cpuUsage()
    let start = performance.now()
    const next = () => {
      if (round >= 0) report(name, round, loops * workload.depth, process.cpuUsage(cpu), performance.now() - start)
      if (++round === rounds) return done()
      left = loops
      cpu = process.cpuUsage()
      start = performance.now()
      send()
    }
    const socket = answer({
      onData: (chunk) => {
        decoder.push(chunk, frames)
        for (let i = 0; i < frames.length; i++) Wire.decodeResponseUnsafe(frames[i]!)
        waiting -= frames.length
        frames.length = 0
        if (waiting > 0) return
        if (--left > 0) send()
        else next()
      },
      onDrain: () => {},
      onError: () => {}
    })
    const send = () => {
      waiting = workload.depth
      socket.write(Wire.encodeRequests(batch))
    }
    round = -1 // the first `next` ends the warm-up, unreported
    left = loops
    send()
  })

const measure = (name: string) => {
  const workload = Workload.workloads[name]!
  const request = Request.makeUnsafe(workload.code, { payload: new Uint8Array(workload.payloadSize).fill(97) })
  const batch = Array.from({ length: workload.depth }, () => request)
  return Effect.gen(function*() {
    const client = yield* Client.make()
    const once = workload.depth === 1 ? client.call(request) : client.pipeline(batch)
    const loops = Math.max(1, Math.round(calls / workload.depth / workload.callers))
    const caller = Effect.fnUntraced(function*() {
      for (let i = 0; i < loops; i++) yield* once
    })
    const all = Effect.all(Array.from({ length: workload.callers }, () => caller()), {
      concurrency: "unbounded",
      discard: true
    })
    yield* all // warm-up
    for (let round = 0; round < rounds; round++) {
      const cpu = process.cpuUsage()
      const start = performance.now()
      yield* all
      const wall = performance.now() - start
      const used = process.cpuUsage(cpu)
      const requests = loops * workload.depth * workload.callers
      report(name, round, requests, used, wall)
    }
  }).pipe(Effect.scoped, Effect.provide(layer))
}

if (contender === "raw") { for (const name of names) await raw(name) }
else await Effect.runPromise(Effect.forEach(names, measure, { discard: true }))
