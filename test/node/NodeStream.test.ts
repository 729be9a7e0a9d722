// The lean server-side socket: backpressure by pausing, every chunk delivered
// in order, writes on a closed peer failing instead of hanging.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Net from "node:net"
import * as NodeStream from "../../src/node/NodeStream.ts"

// A connected pair on loopback: the accepted side and the client side.
const pair = Effect.acquireRelease(
  Effect.callback<{ readonly accepted: Net.Socket; readonly client: Net.Socket; readonly server: Net.Server }>(
    (resume) => {
      const server = Net.createServer((accepted) => {
        accepted.pause()
        resume(Effect.succeed({ accepted, client, server }))
      })
      let client: Net.Socket
      server.listen(0, "127.0.0.1", () => {
        client = Net.connect((server.address() as Net.AddressInfo).port, "127.0.0.1")
        client.on("error", () => {})
      })
    }
  ),
  ({ accepted, client, server }) =>
    Effect.sync(() => {
      accepted.destroy()
      client.destroy()
      server.close()
    })
)

const waitFor = (done: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200 && !done(); i++) yield* Effect.sleep("10 millis")
    return done()
  })

describe("NodeStream", () => {
  it.live("pauses a peer that sends faster than it is pulled, and loses nothing", () =>
    Effect.gen(function*() {
      const { accepted, client } = yield* pair
      const { pull } = yield* NodeStream.make(accepted).reader
      const total = 8 * 1024 * 1024
      client.write(new Uint8Array(total).fill(7))
      // Nothing pulls: the socket must stop reading once the queue passes its mark.
      expect(yield* waitFor(() => accepted.isPaused())).toBe(true)
      let received = 0
      while (received < total) {
        const batch = yield* pull
        for (const chunk of batch) received += chunk.length
      }
      expect(received).toBe(total)
    }))

  it.live("a pull after the peer's FIN gets the remaining bytes, then a close error", () =>
    Effect.gen(function*() {
      const { accepted, client } = yield* pair
      const { pull } = yield* NodeStream.make(accepted).reader
      client.end(new Uint8Array([1, 2, 3]))
      const batch = yield* pull
      expect(batch.flatMap((c) => [...c])).toEqual([1, 2, 3])
      const error = yield* Effect.flip(pull)
      expect(error.reason._tag).toBe("SocketCloseError")
    }))

  it.live("a write to a peer that has gone fails instead of waiting for a drain", () =>
    Effect.gen(function*() {
      const { accepted, client } = yield* pair
      const socket = NodeStream.make(accepted)
      const { pull } = yield* socket.reader
      const writer = yield* socket.writer
      client.destroy()
      yield* Effect.flip(pull) // the server learns of the close
      const error = yield* Effect.flip(writer.write(new Uint8Array(1 << 20)))
      expect(error.reason._tag).toBe("SocketWriteError")
    }))
})
