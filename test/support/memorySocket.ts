// An in-memory SocketServer for TestClock tests: no real I/O, so a frozen
// clock cannot deadlock a test and every step is deterministic. Integration
// tests use real loopback sockets; this only stands in for the transport.
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as NetAddress from "effect/net/NetAddress"
import * as Socket from "effect/socket/Socket"
import * as SocketServer from "effect/socket/SocketServer"

type Resume<A> = (effect: Effect.Effect<A, Socket.SocketError>) => void

const closeError = (code: number) => new Socket.SocketError({ reason: new Socket.SocketCloseError({ code }) })

// One direction of a connection: chunks queue up until pulled.
class Pipe {
  chunks: Array<Uint8Array> = []
  error: Socket.SocketError | undefined
  waiter: Resume<ReadonlyArray<Uint8Array>> | undefined
  push(chunk: Uint8Array): void {
    if (this.error) return
    this.chunks.push(chunk)
    this.wake()
  }
  close(error: Socket.SocketError): void {
    this.error ??= error
    this.wake()
  }
  private wake(): void {
    const waiter = this.waiter
    if (waiter === undefined) return
    if (this.chunks.length > 0) {
      this.waiter = undefined
      const batch = this.chunks
      this.chunks = []
      waiter(Effect.succeed(batch))
    } else if (this.error) {
      this.waiter = undefined
      waiter(Effect.fail(this.error))
    }
  }
  readonly pull = Effect.callback<ReadonlyArray<Uint8Array>, Socket.SocketError>((resume) => {
    this.waiter = resume
    this.wake()
    return Effect.sync(() => {
      if (this.waiter === resume) this.waiter = undefined
    })
  })
}

/** The test's end of a connection. */
export interface Peer {
  /** Sends bytes to the server. */
  readonly send: (bytes: Uint8Array) => void
  /** Half-closes: the server sees EOF. */
  readonly end: () => void
  /** Everything the server wrote so far. */
  readonly received: () => Uint8Array
  /** How the server closed its side: "open", "ended" (graceful) or "destroyed". */
  readonly state: () => "open" | "ended" | "destroyed"
  /** While paused, the server's writes do not complete (a peer that does not read). */
  readonly pauseReading: (paused: boolean) => void
}

export interface MemorySocketServer {
  readonly layer: SocketServer.SocketServer["Service"]
  /** Opens a connection to the running server. */
  readonly connect: () => Peer
}

export const make = (): MemorySocketServer => {
  let onConnection: ((socket: Socket.Socket) => void) | undefined
  const makePeer = (): [Socket.Socket, Peer] => {
    const inbound = new Pipe()
    const outbound: Array<Uint8Array> = []
    let state: "open" | "ended" | "destroyed" = "open"
    let paused = false
    let drained: Array<() => void> = []
    const write = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> =>
      Effect.suspend(() => {
        if (state !== "open") return Effect.void
        if (Socket.isCloseEvent(chunk)) {
          state = "destroyed"
          inbound.close(closeError(1006))
          return Effect.void
        }
        outbound.push(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk)
        // Like a socket over its high-water mark: the write waits for "drain".
        return paused ? Effect.callback<void>((resume) => void drained.push(() => resume(Effect.void))) : Effect.void
      })
    const socket = Socket.make({
      reader: Effect.acquireRelease(
        Effect.succeed({
          pull: inbound.pull as Socket.Reader<Uint8Array>["pull"],
          upgrade: Socket.SocketUpgradeError.unsupported
        }),
        () =>
          Effect.sync(() => {
            if (state === "open") state = "ended"
            inbound.close(closeError(1006))
          })
      ),
      writer: Effect.acquireRelease(
        Effect.succeed({
          write,
          writeAll: (chunks: ReadonlyArray<Uint8Array | string>) => Effect.forEach(chunks, write, { discard: true })
        }),
        () =>
          Effect.sync(() => {
            if (state === "open") state = "ended"
          })
      )
    })
    const peer: Peer = {
      send: (bytes) => inbound.push(bytes),
      end: () => inbound.close(closeError(1000)),
      received: () => {
        const size = outbound.reduce((n, c) => n + c.length, 0)
        const out = new Uint8Array(size)
        let at = 0
        for (const c of outbound) {
          out.set(c, at)
          at += c.length
        }
        return out
      },
      state: () => state,
      pauseReading: (value) => {
        paused = value
        if (!value) {
          const waiting = drained
          drained = []
          for (const resume of waiting) resume()
        }
      }
    }
    return [socket, peer]
  }
  const run = <R, E, _>(handler: (socket: Socket.Socket) => Effect.Effect<_, E, R>) =>
    Effect.gen(function*() {
      const context = yield* Effect.context<R>()
      const fibers = new Set<Fiber.Fiber<unknown, unknown>>()
      onConnection = (socket) => {
        const fiber = Effect.runForkWith(context as Context.Context<R>)(handler(socket))
        fibers.add(fiber)
        fiber.addObserver(() => fibers.delete(fiber))
      }
      return yield* Effect.never.pipe(
        Effect.onInterrupt(() =>
          Effect.andThen(Effect.sync(() => (onConnection = undefined)), Fiber.interruptAll(fibers))
        )
      )
    })
  return {
    layer: SocketServer.SocketServer.of({
      address: NetAddress.unixPathAddress("memory"),
      run
    }),
    connect: () => {
      const [socket, peer] = makePeer()
      if (onConnection === undefined) throw new Error("memory server is not running")
      onConnection(socket)
      return peer
    }
  }
}
