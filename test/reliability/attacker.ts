// A CPU attacker, in a process of its own so its work does not land on the
// event loop of the client whose latency we measure.
//
//   PORT, KIND ("groups": 16 MiB frames of one-byte group starts and ends, the
//   slowest body per byte the limits allow; "empties": 4 MiB writes of empty
//   frames), CONNECTIONS (default 1)
//
// Each connection writes its frames again as soon as the previous write is
// flushed, and reads (and counts) the replies. Prints `ready` once connected;
// on SIGTERM prints one JSON line `{"replies": n}` and exits.
import * as Net from "node:net"
import * as Wire from "../../src/Wire.ts"

const port = Number(process.env.PORT)
const kind = process.env.KIND ?? "groups"
const connections = Number(process.env.CONNECTIONS ?? 1)

const bytes = (() => {
  if (kind === "empties") return new Uint8Array(4 << 20)
  const body = new Uint8Array(Wire.defaultMaxFrameSize)
  for (let i = 0; i < body.length; i += 2) body.set([9 * 8 + 3, 9 * 8 + 4], i)
  const prefix = [0x80, 0x80, 0x80, 0x08] // uvarint(1 << 24)
  const frame = new Uint8Array(prefix.length + body.length)
  frame.set(prefix)
  frame.set(body, prefix.length)
  return frame
})()

let replies = 0
let connected = 0
const sockets: Array<Net.Socket> = []
for (let c = 0; c < connections; c++) {
  const socket = Net.connect({ port, host: "127.0.0.1", noDelay: true })
  const decoder = new Wire.FrameDecoder(1 << 26)
  const frames: Array<Uint8Array> = []
  const send = () => {
    if (!socket.destroyed) socket.write(bytes, () => setImmediate(send))
  }
  socket.on("connect", () => {
    if (++connected === connections) process.stdout.write("ready\n")
    send()
  })
  socket.on("data", (chunk) => {
    decoder.push(chunk, frames)
    replies += frames.length
    frames.length = 0
  })
  socket.on("error", () => {})
  sockets.push(socket)
}

process.on("SIGTERM", () => {
  for (const s of sockets) s.destroy()
  process.stdout.write(JSON.stringify({ replies }) + "\n", () => process.exit(0))
})
