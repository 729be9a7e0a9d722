/**
 * An in-memory `SocketServer` (effect has none): connections are pairs of
 * in-process pipes, with no real I/O, so a frozen `TestClock` cannot deadlock
 * a test and every step is deterministic. Reach it from the test's side with
 * raw byte peers (`connect`) or with a `Client.Dialer` (`dialer`) whose
 * sockets connect to it.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as Socket from "effect/socket/Socket"
import * as SocketServer from "effect/socket/SocketServer"
import type * as Client from "../Client.ts"
import { Dialer } from "../Dialer.ts"

type Resume<A> = (effect: Effect.Effect<A, Socket.SocketError>) => void

const closeError = (code: number) => new Socket.SocketError({ reason: new Socket.SocketCloseError({ code }) })
const refused = () =>
  new Socket.SocketError({
    reason: new Socket.SocketOpenError({ kind: "Unknown", cause: new Error("connect ECONNREFUSED (memory)") })
  })
const encoder = new TextEncoder()
const toBytes = (chunk: Uint8Array | string): Uint8Array =>
  typeof chunk === "string" ? encoder.encode(chunk) : Uint8Array.from(chunk)

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

/**
 * The test's end of a raw connection.
 *
 * @since 0.1.0
 * @category models
 */
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

/**
 * The in-memory server: the `SocketServer` to run `Server` on, plus the two
 * ways in.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemorySocketServer {
  /** The `SocketServer` service (address: `unix:memory`). */
  readonly socketServer: SocketServer.SocketServer["Service"]
  /** Opens a raw connection (kept in a backlog until the server runs). Throws once it stopped. */
  readonly connect: () => Peer
  /** A `Client.Dialer` whose sockets connect to the server (backlog before it runs; refused once it stopped). */
  readonly dialer: Client.Dialer["Service"]
  /** Connections accepted and not closed yet. */
  readonly open: () => number
}

/**
 * The in-memory server as a service, for tests that want raw peers next to a
 * client (`TestServer.layer` provides it).
 *
 * @since 0.1.0
 * @category services
 */
export class MemoryServer
  extends Context.Service<MemoryServer, MemorySocketServer>()("quasizero/testing/MemoryServer")
{}

/**
 * Builds an in-memory server.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { SocketServer } from "effect/socket"
 * import { Handlers, Request, Server, Wire } from "quasizero"
 * import { MemorySocketServer } from "quasizero/testing"
 *
 * const memory = MemorySocketServer.make()
 * const program = Effect.gen(function*() {
 *   yield* Layer.build(
 *     Server.layer().pipe(
 *       Layer.provide(Handlers.layer({ 1: () => Effect.succeed("PONG") })),
 *       Layer.provide(Layer.succeed(SocketServer.SocketServer)(memory.socketServer))
 *     )
 *   )
 *   yield* Effect.yieldNow
 *   const peer = memory.connect()
 *   peer.send(Wire.encodeRequest(Request.makeUnsafe(1)))
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): MemorySocketServer => {
  // Like a listening socket: connections made before `run` starts wait in a
  // backlog; once the server stopped, connecting is refused.
  let onConnection: ((socket: Socket.Socket) => void) | undefined
  let backlog: Array<Socket.Socket> = []
  let stopped = false
  let open = 0

  // The server's end of a connection; `sink` receives what the server writes.
  const serverSocket = (inbound: Pipe, sink: {
    readonly write: (chunk: Uint8Array) => void
    readonly end: () => void
    readonly destroy: () => void
  }) => {
    let state: "open" | "ended" | "destroyed" = "open"
    let paused = false
    let drained: Array<() => void> = []
    let counted = true
    open++
    const closed = () => {
      if (counted) {
        counted = false
        open--
      }
    }
    const write = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> =>
      Effect.suspend(() => {
        if (state !== "open") return Effect.void
        if (Socket.isCloseEvent(chunk)) {
          state = "destroyed"
          closed()
          inbound.close(closeError(1006))
          sink.destroy()
          return Effect.void
        }
        sink.write(toBytes(chunk))
        // Like a socket over its high-water mark: the write waits for "drain".
        return paused ? Effect.callback<void>((resume) => void drained.push(() => resume(Effect.void))) : Effect.void
      })
    const end = () => {
      if (state === "open") {
        state = "ended"
        sink.end()
      }
      closed()
    }
    const socket = Socket.make({
      reader: Effect.acquireRelease(
        Effect.succeed({
          pull: inbound.pull as Socket.Reader<Uint8Array>["pull"],
          upgrade: Socket.SocketUpgradeError.unsupported
        }),
        () =>
          Effect.sync(() => {
            end()
            inbound.close(closeError(1006))
          })
      ),
      writer: Effect.acquireRelease(
        Effect.succeed({
          write,
          writeAll: (chunks: ReadonlyArray<Uint8Array | string>) => Effect.forEach(chunks, write, { discard: true })
        }),
        () => Effect.sync(end)
      )
    })
    const control = {
      state: () => state,
      pauseReading: (value: boolean) => {
        paused = value
        if (!value) {
          const waiting = drained
          drained = []
          for (const resume of waiting) resume()
        }
      }
    }
    return [socket, control] as const
  }

  const accept = (socket: Socket.Socket) => {
    if (onConnection === undefined) backlog.push(socket)
    else onConnection(socket)
  }

  const connect = (): Peer => {
    if (stopped) throw new Error("memory server is not running")
    const inbound = new Pipe()
    const outbound: Array<Uint8Array> = []
    const [socket, control] = serverSocket(inbound, {
      write: (chunk) => void outbound.push(chunk),
      end: () => {},
      destroy: () => {}
    })
    accept(socket)
    return {
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
      state: control.state,
      pauseReading: control.pauseReading
    }
  }

  // A client socket: its reader is where the connection opens (as with Node's sockets).
  const clientSocket = (): Socket.Socket => {
    const toClient = new Pipe()
    let toServer: Pipe | undefined
    const reader = Effect.acquireRelease(
      Effect.suspend(() => {
        if (stopped) return Effect.fail(refused())
        const inbound = new Pipe()
        toServer = inbound
        const [socket] = serverSocket(inbound, {
          write: (chunk) => toClient.push(chunk),
          end: () => toClient.close(closeError(1000)),
          destroy: () => toClient.close(closeError(1006))
        })
        accept(socket)
        return Effect.succeed({
          pull: toClient.pull as Socket.Reader<Uint8Array>["pull"],
          upgrade: Socket.SocketUpgradeError.unsupported
        })
      }),
      () =>
        Effect.sync(() => {
          toServer?.close(closeError(1000))
          toClient.close(closeError(1000))
        })
    )
    const write = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> =>
      Effect.sync(() => {
        if (toServer === undefined) return
        if (Socket.isCloseEvent(chunk)) {
          toServer.close(closeError(1006))
          toClient.close(closeError(1000))
        } else toServer.push(toBytes(chunk))
      })
    return Socket.make({
      reader,
      writer: Effect.succeed({
        write,
        writeAll: (chunks: ReadonlyArray<Uint8Array | string>) => Effect.forEach(chunks, write, { discard: true })
      })
    })
  }

  const run = <R, E, _>(handler: (socket: Socket.Socket) => Effect.Effect<_, E, R>) =>
    Effect.suspend(() => {
      const fibers = new Set<Fiber.Fiber<unknown, unknown>>()
      const serve = Effect.gen(function*() {
        const context = yield* Effect.context<R>()
        onConnection = (socket) => {
          const fiber = Effect.runForkWith(context as Context.Context<R>)(handler(socket))
          fibers.add(fiber)
          fiber.addObserver(() => fibers.delete(fiber))
        }
        const waiting = backlog
        backlog = []
        for (const socket of waiting) onConnection(socket)
        return yield* Effect.never
      })
      // onExit, not onInterrupt: a fiber interrupted before it ran must stop the server too.
      return Effect.onExit(serve, () =>
        Effect.andThen(
          Effect.sync(() => {
            onConnection = undefined
            stopped = true
            for (const socket of backlog) void Effect.runFork(Effect.scoped(Effect.asVoid(socket.reader)))
            backlog = []
          }),
          Fiber.interruptAll(fibers)
        ))
    })

  return {
    socketServer: SocketServer.SocketServer.of({ address: NetAddress.unixPathAddress("memory"), run }),
    connect,
    dialer: Dialer.of({
      address: "memory",
      dial: Effect.suspend(() => (stopped ? Effect.fail(refused()) : Effect.sync(clientSocket)))
    }),
    open: () => open
  }
}

/**
 * A fresh in-memory server as layers: the `SocketServer` for `Server.layer`,
 * the `Client.Dialer` for `Client.layer`, and `MemoryServer` for raw peers.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Client, Handlers, Server } from "quasizero"
 * import { MemorySocketServer } from "quasizero/testing"
 *
 * const Test = Layer.mergeAll(Server.layer(), Client.layer()).pipe(
 *   Layer.provide(Handlers.layer({ 1: () => Effect.succeed("PONG") })),
 *   Layer.provide(MemorySocketServer.layer)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<SocketServer.SocketServer | Dialer | MemoryServer> = Layer.effectContext(
  Effect.sync(() => {
    const memory = make()
    return Context.make(SocketServer.SocketServer, memory.socketServer).pipe(
      Context.add(Dialer, memory.dialer),
      Context.add(MemoryServer, memory)
    )
  })
)
