// The raw node:net baseline server: what Node itself can do for this wire with
// no framework — one 'data' handler, frames decoded in place with the same
// hand-written codec, all replies of a chunk in one write. PING and ECHO only.
import * as Net from "node:net"
import * as Request from "../../src/Request.ts"
import * as Response from "../../src/Response.ts"
import * as Wire from "../../src/Wire.ts"
import { reportCpuOnExit } from "../lib/stats.ts"

const pong = Response.ok("PONG")

const handle = (req: Request.Request): Response.Response =>
  req.code === 1 ? pong : req.code === 2 ? Response.ok(req.payload) : Response.error(`unknown command code ${req.code}`)

const server = Net.createServer({ noDelay: true }, (socket) => {
  const decoder = new Wire.FrameDecoder()
  const frames: Array<Uint8Array> = []
  socket.on("data", (chunk) => {
    if (decoder.push(chunk, frames)) return socket.destroy()
    const replies: Array<Response.Response> = []
    for (let i = 0; i < frames.length; i++) replies.push(handle(Wire.decodeRequestUnsafe(frames[i]!)))
    frames.length = 0
    socket.write(Wire.encodeResponses(replies))
  })
  socket.on("error", () => {})
})
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const address = server.address() as Net.AddressInfo
  console.log(`listening on 127.0.0.1:${address.port}`)
})
reportCpuOnExit()

// Under --expose-gc, SIGUSR2 prints live memory after a full GC (bench/serverMemory.ts).
const gc = (globalThis as { gc?: () => void }).gc
if (gc !== undefined) {
  process.on("SIGUSR2", () => {
    gc()
    setTimeout(() => {
      gc()
      const m = process.memoryUsage()
      process.stdout.write(`gc ${JSON.stringify({ heapUsed: m.heapUsed, external: m.external, rss: m.rss })}\n`)
    }, 50)
  })
}
