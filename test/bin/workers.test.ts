// `quasizero serve --workers N`: N processes on one port with SO_REUSEPORT.
// Which process took a connection is read from /proc: each worker's count of
// open sockets grows by the connections the kernel gave it.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Request from "../../src/Request.ts"
import * as Wire from "../../src/Wire.ts"

const cli = new URL("../../src/bin/quasizero.ts", import.meta.url).pathname

const sockets = (pid: number): number =>
  Fs.readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return Fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")
    } catch {
      return false // closed while we looked
    }
  }).length

const childrenOf = (pid: number): Array<number> =>
  Fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number)

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const ping = (port: number) =>
  new Promise<{ readonly socket: Net.Socket; readonly reply: string }>((resolve, reject) => {
    const socket = Net.connect({ port, host: "127.0.0.1" })
    const frames: Array<Uint8Array> = []
    const decoder = new Wire.FrameDecoder()
    socket.on("connect", () => socket.write(Wire.encodeRequest(Request.makeUnsafe(1))))
    socket.on("data", (chunk) => {
      decoder.push(chunk, frames)
      if (frames.length > 0) {
        resolve({ socket, reply: new TextDecoder().decode(Wire.decodeResponseUnsafe(frames[0]!).payload) })
      }
    })
    socket.on("error", reject)
  })

describe("quasizero serve --workers", () => {
  it.live(
    "2 workers share one port: both take connections, one line is printed, SIGTERM exits 0",
    () =>
      Effect.promise(async () => {
        const primary = ChildProcess.spawn(process.execPath, [cli, "serve", "--port", "0", "--workers", "2"], {
          stdio: ["ignore", "pipe", "pipe"]
        })
        try {
          let out = ""
          let err = ""
          primary.stderr.on("data", (d) => (err += d))
          const port = await new Promise<number>((resolve, reject) => {
            primary.stdout.on("data", (d) => {
              out += d
              const match = /^listening on 127\.0\.0\.1:(\d+)\n/.exec(out)
              if (match) resolve(Number(match[1]))
            })
            primary.on("exit", (code) => reject(new Error(`exited ${code}: ${err}`)))
          })
          const workers = childrenOf(primary.pid!)
          expect(workers).toHaveLength(1) // the primary serves too
          const pids = [primary.pid!, workers[0]!]
          const before = pids.map(sockets)

          const clients = await Promise.all(Array.from({ length: 24 }, () => ping(port)))
          expect(clients.map((c) => c.reply)).toEqual(Array.from({ length: 24 }, () => "PONG"))
          const gained = pids.map((pid, i) => sockets(pid) - before[i]!)
          console.log(`[reliability] --workers 2: 24 connections split ${gained.join(" / ")} between the two processes`)
          expect(gained[0]! + gained[1]!).toBe(24)
          // SO_REUSEPORT hashes each connection to a listener: all 24 on one
          // side would mean the other is not listening (odds 2^-23 otherwise).
          expect(gained[0]).toBeGreaterThan(0)
          expect(gained[1]).toBeGreaterThan(0)
          for (const c of clients) c.socket.destroy()

          const exit = new Promise<number | null>((resolve) => primary.once("exit", (code) => resolve(code)))
          primary.kill("SIGTERM")
          expect(await exit).toBe(0)
          expect(out).toMatch(/^listening on 127\.0\.0\.1:\d+\n$/) // exactly one line
          expect(alive(workers[0]!)).toBe(false) // stopped and reaped before the primary exited
        } finally {
          primary.kill("SIGKILL")
        }
      }),
    20_000
  )

  it.live("a worker that dies stops the others and the command exits 1", () =>
    Effect.promise(async () => {
      const primary = ChildProcess.spawn(process.execPath, [cli, "serve", "--port", "0", "--workers", "3"], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      try {
        let err = ""
        primary.stderr.on("data", (d) => (err += d))
        await new Promise<void>((resolve) => primary.stdout.on("data", () => resolve()))
        const workers = childrenOf(primary.pid!)
        expect(workers).toHaveLength(2)
        const exit = new Promise<number | null>((resolve) => primary.once("exit", (code) => resolve(code)))
        process.kill(workers[0]!, "SIGKILL")
        expect(await exit).toBe(1)
        expect(err).toMatch(new RegExp(`^quasizero serve: worker ${workers[0]} exited \\(SIGKILL\\)\\n$`))
        expect(alive(workers[1]!)).toBe(false)
      } finally {
        primary.kill("SIGKILL")
      }
    }), 20_000)

  it.live("rejects --workers 0", () =>
    Effect.sync(() => {
      const result = ChildProcess.spawnSync(process.execPath, [cli, "serve", "--workers", "0"], { encoding: "utf8" })
      expect(result.status).not.toBe(0)
      expect(result.stdout + result.stderr).toMatch(/--workers: expected 1 to 1024, got 0/)
    }), 20_000)
})
