// A slowloris attacker, in a process of its own so its work does not land on
// the event loop of the client whose latency we measure.
//
//   PORT, CONNECTIONS (default 500), INTERVAL (ms between bytes, default 100),
//   DURATION (ms, default 10000)
//
// Each connection sends a 1 KiB ECHO frame one byte per INTERVAL, so no frame
// ever completes; when the server closes it, it reconnects at once. Prints
// `ready` once every connection is open, and at the end one JSON line:
// connections opened, closed by the server, bytes sent.
import * as Net from "node:net"

const port = Number(process.env.PORT)
const connections = Number(process.env.CONNECTIONS ?? 500)
const interval = Number(process.env.INTERVAL ?? 100)
const duration = Number(process.env.DURATION ?? 10_000)

const payload = new Uint8Array(1024).fill(120)
// uvarint(1029) ++ {code: 2} ++ {payload: 1 KiB}
const frame = Uint8Array.from([0x85, 0x08, 0x08, 0x02, 0x1a, 0x80, 0x08, ...payload])

let opened = 0
let closed = 0
let bytes = 0
let connected = 0
let stopping = false
const sockets = new Set<Net.Socket>()

const attack = (first: boolean) => {
  if (stopping) return
  const socket = Net.connect({ port, host: "127.0.0.1", noDelay: true })
  sockets.add(socket)
  opened++
  let at = 0
  let timer: NodeJS.Timeout | undefined
  socket.on("connect", () => {
    if (first && ++connected === connections) console.log("ready")
    timer = setInterval(() => {
      if (at < frame.length) {
        socket.write(frame.subarray(at, at + 1))
        at++
        bytes++
      }
    }, interval)
  })
  socket.on("error", () => {})
  socket.on("close", () => {
    clearInterval(timer)
    sockets.delete(socket)
    if (stopping) return
    closed++
    attack(false)
  })
}

// Open connections in small groups so the listen backlog never overflows.
let started = 0
const ramp = setInterval(() => {
  for (let i = 0; i < 50 && started < connections; i++, started++) attack(true)
  if (started === connections) clearInterval(ramp)
}, 5)

setTimeout(() => {
  stopping = true
  for (const socket of sockets) socket.destroy()
  console.log(JSON.stringify({ opened, closedByServer: closed, bytes }))
  process.exit(0)
}, duration)
