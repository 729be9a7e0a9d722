// A raw node:net client for server tests: writes exact bytes and collects
// exactly what comes back, with no client library in between.
import * as Effect from "effect/Effect"
import * as Net from "node:net"
import type * as Response from "../../src/Response.ts"
import * as Wire from "../../src/Wire.ts"

export interface RawClient {
  readonly socket: Net.Socket
  readonly write: (bytes: Uint8Array) => Effect.Effect<void>
  /** Waits for `n` response frames (fails if the server closes first). */
  readonly read: (n: number) => Effect.Effect<Array<Response.Response>, Error>
  /** Waits until the server closes; resolves with every response received. */
  readonly closed: Effect.Effect<Array<Response.Response>>
}

export const connect = (port: number, host = "127.0.0.1") =>
  Effect.acquireRelease(
    Effect.callback<RawClient, Error>((resume) => {
      const socket = Net.connect({ port, host, noDelay: true })
      const decoder = new Wire.FrameDecoder()
      const frames: Array<Uint8Array> = []
      let consumed = 0
      let ended = false
      let waiters: Array<() => void> = []
      const wake = () => {
        const ws = waiters
        waiters = []
        for (const w of ws) w()
      }
      socket.on("data", (chunk) => {
        const error = decoder.push(chunk, frames)
        if (error) socket.destroy(error)
        wake()
      })
      socket.on("close", () => {
        ended = true
        wake()
      })
      socket.on("error", () => {})
      const waitFor = (done: () => boolean) =>
        Effect.callback<void>((resume) => {
          const check = () => (done() ? resume(Effect.void) : void waiters.push(check))
          check()
        })
      const client: RawClient = {
        socket,
        write: (bytes) => Effect.callback<void>((resume) => void socket.write(bytes, () => resume(Effect.void))),
        read: (n) =>
          Effect.flatMap(waitFor(() => ended || frames.length - consumed >= n), () => {
            if (frames.length - consumed < n) {
              return Effect.fail(new Error(`connection closed after ${frames.length - consumed} of ${n} replies`))
            }
            const out = frames.slice(consumed, consumed + n).map((f) =>
              Wire.decodeResponseUnsafe(f, Wire.noDecodeLimits)
            )
            consumed += n
            return Effect.succeed(out)
          }),
        closed: Effect.map(
          waitFor(() => ended),
          () => frames.slice(consumed).map((f) => Wire.decodeResponseUnsafe(f, Wire.noDecodeLimits))
        )
      }
      socket.once("connect", () => resume(Effect.succeed(client)))
      socket.once("error", (e) => resume(Effect.fail(e)))
    }),
    (client) => Effect.sync(() => client.socket.destroy())
  )

export const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)
