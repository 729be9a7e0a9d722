// A minimal quasizero server on raw node:net, for client tests: it is not our
// Server, so the client is tested against an independent implementation. It
// serves the demo codes (1 PING, 2 ECHO, 3 FAIL, 4 META, 5 SLEEP), replies in
// request order, and has fault hooks.
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import * as Request from "../../src/Request.ts"
import * as Response from "../../src/Response.ts"
import * as Wire from "../../src/Wire.ts"

/** What to do instead of a normal reply. */
export type Fault =
  | { readonly _tag: "Stall" } // never reply (nor to anything after it on the connection)
  | { readonly _tag: "Close" } // destroy the connection
  | { readonly _tag: "HalfFrame" } // write half of the reply frame, then destroy the connection
  | { readonly _tag: "Raw"; readonly bytes: Uint8Array } // write these bytes as the reply

export interface Options {
  /** Decides a fault per request (undefined: reply normally). */
  readonly fault?: ((request: Request.Request, connection: number) => Fault | undefined) | undefined
  /** Destroy every new connection at once. */
  readonly closeOnAccept?: boolean | undefined
  readonly port?: number | undefined
  /** Listen on this Unix socket path instead of TCP. */
  readonly path?: string | undefined
}

export interface RawServer {
  readonly port: number
  readonly address: string
  /** Connections accepted so far. */
  readonly accepted: number
  /** Connections open now. */
  readonly open: number
  /** Most connections open at once. */
  readonly maxOpen: number
  /** Requests received. */
  readonly requests: ReadonlyArray<Request.Request>
  /** Frames per socket read, per read. */
  readonly framesPerRead: ReadonlyArray<number>
  options: Options
  /** Stops listening and destroys every connection (a crash, as far as clients can tell). */
  readonly kill: Effect.Effect<void>
  /** Listens again on the same port. */
  readonly restart: Effect.Effect<void>
}

const textDecoder = new TextDecoder()

const demo = (request: Request.Request): Response.Response | Promise<Response.Response> => {
  switch (request.code) {
    case 1:
      return Response.ok("PONG")
    case 2:
      return Response.ok(request.payload)
    case 3:
      return Response.error("something went wrong")
    case 4:
      return Response.makeUnchecked("", request.metadata, new TextEncoder().encode("META"))
    case 5: {
      const ms = Number(textDecoder.decode(request.payload))
      return new Promise((resolve) => setTimeout(() => resolve(Response.ok("SLEPT")), ms))
    }
    default:
      return Response.errorf("unknown command code %d", request.code)
  }
}

export const make = (options: Options = {}): Effect.Effect<RawServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (server) => server.kill
  )

const start = async (initial: Options): Promise<RawServer> => {
  const sockets = new Set<Net.Socket>()
  const requests: Array<Request.Request> = []
  const framesPerRead: Array<number> = []
  let accepted = 0
  let maxOpen = 0
  let connectionId = 0
  let listener: Net.Server

  const onConnection = (socket: Net.Socket) => {
    accepted++
    const id = ++connectionId
    sockets.add(socket)
    maxOpen = Math.max(maxOpen, sockets.size)
    socket.setNoDelay(true)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => {})
    if (server.options.closeOnAccept) {
      socket.destroy()
      return
    }
    const decoder = new Wire.FrameDecoder()
    const frames: Array<Uint8Array> = []
    // Replies in request order: slot i is filled when request i is answered.
    const slots: Array<{ bytes: Uint8Array | undefined; after: "none" | "close" | "stall" }> = []
    let next = 0
    let stalled = false
    const flush = () => {
      const out: Array<Uint8Array> = []
      let closeAfter = false
      while (next < slots.length && slots[next]!.bytes !== undefined) {
        const slot = slots[next++]!
        out.push(slot.bytes!)
        if (slot.after === "close") {
          closeAfter = true
          break
        }
      }
      if (out.length > 0) socket.write(Buffer.concat(out))
      if (closeAfter) socket.destroy()
    }
    socket.on("data", (chunk: Buffer) => {
      const error = decoder.push(chunk, frames)
      framesPerRead.push(frames.length)
      for (const frame of frames) {
        const request = Wire.decodeRequestUnsafe(Uint8Array.from(frame))
        requests.push(request)
        if (stalled) continue
        const slot: (typeof slots)[number] = { bytes: undefined, after: "none" }
        slots.push(slot)
        const fault = server.options.fault?.(request, id)
        if (fault !== undefined) {
          switch (fault._tag) {
            case "Stall":
              stalled = true
              slots.pop()
              continue
            case "Close":
              slot.bytes = new Uint8Array(0)
              slot.after = "close"
              continue
            case "HalfFrame": {
              const whole = Wire.encodeResponse(Response.ok("0123456789abcdef"))
              slot.bytes = whole.subarray(0, whole.length >> 1)
              slot.after = "close"
              continue
            }
            case "Raw":
              slot.bytes = fault.bytes
              continue
          }
        }
        const reply = demo(request)
        if (reply instanceof Promise) {
          void reply.then((response) => {
            slot.bytes = Wire.encodeResponse(response)
            flush()
          })
        } else slot.bytes = Wire.encodeResponse(reply)
      }
      frames.length = 0
      flush()
      if (error !== undefined) socket.destroy()
    })
  }

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      listener = Net.createServer({ noDelay: true }, onConnection)
      listener.once("error", reject)
      if (initial.path !== undefined) listener.listen({ path: initial.path }, () => resolve(0))
      else listener.listen({ host: "127.0.0.1", port }, () => resolve((listener.address() as Net.AddressInfo).port))
    })

  const port = await listen(initial.port ?? 0)

  const kill = Effect.promise(() =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy()
      sockets.clear()
      if (!listener.listening) return resolve()
      listener.close(() => resolve())
    })
  )

  const server: RawServer = {
    port,
    address: initial.path !== undefined ? `unix:${initial.path}` : `127.0.0.1:${port}`,
    get accepted() {
      return accepted
    },
    get open() {
      return sockets.size
    },
    get maxOpen() {
      return maxOpen
    },
    requests,
    framesPerRead,
    options: initial,
    kill,
    restart: Effect.promise(() => listen(port).then(() => undefined))
  }
  return server
}

/** Waits (real time, bounded) until `check` holds. */
export const eventually = (check: () => boolean, what: string, timeoutMs = 2000): Effect.Effect<void> =>
  Effect.suspend(() => {
    const start = Date.now()
    const loop: Effect.Effect<void> = Effect.suspend(() => {
      if (check()) return Effect.void
      if (Date.now() - start > timeoutMs) return Effect.die(new Error(`timed out waiting for ${what}`))
      return Effect.flatMap(Effect.sleep(5), () => loop)
    })
    return loop
  })
