/**
 * A scripted in-memory server for client tests on the `TestClock`: a
 * `Client.Dialer` whose sockets talk to request handlers in the same process,
 * with no real I/O (real I/O on a frozen clock deadlocks). Unlike
 * `MemorySocketServer`, no quasizero `Server` runs behind it: the test decides
 * every reply, refuses dials, hangs connects or breaks writes.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Socket from "effect/socket/Socket"
import type * as Client from "../Client.ts"
import type * as Request from "../Request.ts"
import type * as Response from "../Response.ts"
import * as Wire from "../Wire.ts"

/**
 * One connection as the scripted server sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryConnection {
  readonly id: number
  /** Requests received, in order. */
  readonly requests: Array<Request.Request>
  /** Calls to the writer (`write` + `writeAll`). */
  writes: number
  closed: boolean
  /** Sends a reply (or raw bytes) to the client. */
  readonly reply: (response: Response.Response | Uint8Array) => void
  /** Closes the connection from the server side. */
  readonly close: () => void
}

/**
 * A scripted server behind a `Client.Dialer`: answer, delay, drop or break
 * each request by hand.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryServer {
  readonly dialer: Client.Dialer["Service"]
  readonly connections: Array<MemoryConnection>
  readonly open: number
  /** Answers a request at once, or returns undefined to leave it unanswered. */
  handler: (request: Request.Request, connection: MemoryConnection) => Response.Response | undefined
  /** Fail the next `failDials` dials with a refused error. */
  failDials: number
  /** Never complete the connect. */
  hangOnConnect: boolean
  /** Fail every write with a write error. */
  failWrites: boolean
}

const refused = () =>
  new Socket.SocketError({
    reason: new Socket.SocketOpenError({ kind: "Unknown", cause: new Error("connect ECONNREFUSED (memory)") })
  })

/**
 * Builds a scripted server; `handler` answers each request at once, or
 * returns `undefined` to leave it unanswered (reply later with
 * `connection.reply`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Client, Request, Response } from "quasizero"
 * import { MemoryDialer } from "quasizero/testing"
 *
 * const server = MemoryDialer.make(() => Response.ok("PONG"))
 * server.failDials = 2 // the first two connects are refused
 * const program = Effect.gen(function*() {
 *   const client = yield* Client.make({ pool: { initialSize: 0 } })
 *   return yield* client.call(Request.makeUnsafe(1))
 * }).pipe(Effect.scoped, Effect.provideService(Client.Dialer, server.dialer))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  handler: MemoryServer["handler"] = () => undefined
): MemoryServer => {
  let nextId = 0
  let open = 0
  const server: MemoryServer = {
    connections: [],
    get open() {
      return open
    },
    handler,
    failDials: 0,
    hangOnConnect: false,
    failWrites: false,
    dialer: {
      address: "memory:1",
      dial: Effect.suspend(() => {
        if (server.failDials > 0) {
          server.failDials--
          return Effect.fail(refused())
        }
        return Effect.succeed(socket())
      })
    }
  }

  const socket = (): Socket.Socket => {
    let connection: MemoryConnection | undefined
    let buffered: Array<Uint8Array> = []
    let waiter: ((effect: Effect.Effect<ReadonlyArray<Uint8Array>, Socket.SocketError>) => void) | undefined
    const closeError = new Socket.SocketError({ reason: new Socket.SocketCloseError({ code: 1000 }) })

    const deliver = () => {
      if (waiter === undefined) return
      if (buffered.length > 0) {
        const chunks = buffered
        buffered = []
        const resume = waiter
        waiter = undefined
        resume(Exit.succeed(chunks))
      } else if (connection?.closed) {
        const resume = waiter
        waiter = undefined
        resume(Exit.fail(closeError))
      }
    }
    const close = () => {
      if (connection === undefined || connection.closed) return
      connection.closed = true
      open--
      queueMicrotask(deliver)
    }

    const reader: Socket.Socket["reader"] = Effect.gen(function*() {
      if (server.hangOnConnect) return yield* Effect.never
      const id = ++nextId
      open++
      connection = {
        id,
        requests: [],
        writes: 0,
        closed: false,
        reply: (response) => {
          if (connection!.closed) return
          buffered.push(response instanceof Uint8Array ? response : Wire.encodeResponse(response))
          // Asynchronously, like a socket.
          queueMicrotask(deliver)
        },
        close
      }
      server.connections.push(connection)
      yield* Effect.addFinalizer(() => Effect.sync(close))
      const pull = Effect.callback<ReadonlyArray<Uint8Array>, Socket.SocketError>((resume) => {
        waiter = resume
        deliver()
      })
      return {
        pull: pull as Socket.Reader["pull"],
        upgrade: Socket.SocketUpgradeError.unsupported
      }
    })

    const decoder = new Wire.FrameDecoder()
    const frames: Array<Uint8Array> = []
    const receive = (chunk: Uint8Array) => {
      decoder.push(chunk, frames)
      for (const frame of frames) {
        const request = Wire.decodeRequestUnsafe(frame)
        connection!.requests.push(request)
        const response = server.handler(request, connection!)
        if (response !== undefined) connection!.reply(response)
      }
      frames.length = 0
    }
    const writeError = new Socket.SocketError({
      reason: new Socket.SocketWriteError({ cause: new Error("write EPIPE (memory)") })
    })
    const write = (chunk: Uint8Array | string | Socket.CloseEvent) =>
      Effect.suspend(() => {
        if (server.failWrites && !Socket.isCloseEvent(chunk)) return Effect.fail(writeError)
        return write0(chunk)
      })
    const write0 = (chunk: Uint8Array | string | Socket.CloseEvent) =>
      Effect.sync(() => {
        if (connection === undefined || connection.closed) return
        connection.writes++
        if (Socket.isCloseEvent(chunk)) return close()
        receive(typeof chunk === "string" ? new TextEncoder().encode(chunk) : Uint8Array.from(chunk))
      })
    const writeAll = (chunks: ReadonlyArray<Uint8Array | string>) =>
      Effect.sync(() => {
        if (connection === undefined || connection.closed) return
        connection.writes++
        for (const chunk of chunks) receive(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk)
      })
    return Socket.make({ reader, writer: Effect.succeed({ write, writeAll }) })
  }

  return server
}
