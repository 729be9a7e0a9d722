/**
 * One server connection: its state as fields of `Connection`, and the two
 * ways it is driven. Internal to `Server`.
 *
 * On a `SocketServer` with the `DirectAccept` capability (`NodeServer`'s
 * listener) a connection is a `Connection` attached to its socket by plain
 * listeners: the data handler runs the batch (`ServerBatch.step`)
 * synchronously, and an idle connection holds no fiber, no generator and no
 * Effect. A fiber is forked, in the server's context, only for a batch that
 * needs one (a handler that suspends, a drain, the fairness yield,
 * `concurrency > 1`), and is gone again once the batch is done; while it
 * runs, data that arrives is queued (and the socket paused past a
 * high-water mark) for the same fiber to take next. The server owns the set
 * of connections: its shutdown closes the idle ones and interrupts the
 * fibers of the busy ones after `shutdownTimeout`.
 *
 * On any other `SocketServer` each connection is a fiber that pulls batches
 * from an `effect/socket` `Socket` and runs the same `step` and `drive`.
 *
 * @since 0.1.0
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Socket from "effect/socket/Socket"
import type * as Handlers from "./Handlers.ts"
import type * as Response from "./Response.ts"
import * as Batch from "./ServerBatch.ts"
import * as Drive from "./ServerDrive.ts"
import * as Errors from "./ServerError.ts"
import { FrameHandler } from "./ServerHandler.ts"
import * as Metrics from "./ServerMetrics.ts"
import type * as ServerOptions from "./ServerOptions.ts"
import * as Wire from "./Wire.ts"

/**
 * Where a connection writes: `write` returns an `Exit` when the socket took
 * the bytes (or failed) synchronously, or an Effect that waits for the drain.
 *
 * @internal
 */
export interface Io {
  readonly write: (bytes: Uint8Array) => Effect.Effect<void, Socket.SocketError>
  /** Destroys the socket at once. */
  readonly destroy: () => void
}

/**
 * What a `DirectSocket` tells its connection.
 *
 * @internal
 */
export interface DirectSink {
  data(chunk: Uint8Array): void
  /** The peer ended its side (it may still read the replies). */
  end(): void
  /** The socket failed or closed. */
  failed(error: Socket.SocketError): void
}

/**
 * An accepted socket driven by callbacks, for the direct path.
 *
 * @internal
 */
export interface DirectSocket extends Io {
  /** Attaches `sink` and starts reading. */
  start(sink: DirectSink): void
  pause(): void
  resume(): void
  /** Detaches the sink and closes gracefully: after the pending writes, discarding what still arrives. */
  close(): void
  setKeepAlive(millis: number): void
}

/**
 * A `SocketServer` that can hand accepted sockets to a plain callback
 * (`NodeListener` can): `Server` then serves them with no fiber per
 * connection. `run` accepts until interrupted.
 *
 * @internal
 */
export const DirectAcceptTypeId: unique symbol = Symbol.for("quasizero/ServerConnection/DirectAccept") as never

/** @internal */
export interface DirectAccept {
  readonly [DirectAcceptTypeId]: {
    readonly run: (accept: (socket: DirectSocket) => void) => Effect.Effect<never>
  }
}

/** What every connection of one server shares. @internal */
export interface Shared {
  readonly options: ServerOptions.ResolvedOptions
  readonly concurrency: number
  readonly maxBufferedBytes: number
  /** Timeouts on: the clock is read per batch. */
  readonly timed: boolean
  readonly clock: Clock.Clock
  /** Server-wide bytes held in frames and unsent replies, against `maxBufferedBytes`. */
  readonly buffers: { held: number }
  readonly frames: FrameHandler
  readonly metrics: Metrics.ServerMetrics
  /** Forks in the server's context, with the handlers' services. */
  readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  readonly admit: (conn: Connection) => "admitted" | "draining" | "full"
  readonly onClosed: (conn: Connection) => void
  readonly open: () => number
  readonly isDraining: () => boolean
}

const noIo: Io = { write: () => Exit.void, destroy: () => {} }

/** Bytes queued while a batch fiber runs before the socket is paused. */
const queueHighWater = 256 * 1024

/** @internal */
export class Connection implements DirectSink {
  // --- lifecycle (read by Server and the sweeper)
  phase: 0 | 1 | 2 = Batch.Reading
  /** Clock millis of the last request or reply; the idle deadline counts from it. */
  lastActivity: number
  /** Clock millis when the incomplete frame held by the decoder began; -1 when none. */
  frameStartedAt = -1
  /** Clock millis when the pending write began. */
  writeStartedAt = -1
  /** The fiber running it: for ever on the generic path, only during a batch on the direct one. */
  fiber: Fiber.Fiber<unknown, unknown> | undefined = undefined
  /** Set by the sweeper when a deadline passed: the connection is closing. */
  timedOut: Errors.Timeout | undefined = undefined
  io: Io = noIo
  // --- maxBufferedBytes
  /** Bytes this connection has charged to the server-wide `maxBufferedBytes`. */
  held = 0
  /** Of `held`, replies written that the socket has not taken yet. */
  unsent = 0
  /** Closed: its charge was given back. */
  released = false
  /** Of `held`, the reservation for the incomplete frame (its declared size); 0 when none. */
  reserved = 0
  // --- the batch in progress (see ServerBatch)
  readonly decoder: Wire.FrameDecoder
  /** The frames of a pass: body `i` is `sources[i]` from `ranges[2i]` to `ranges[2i + 1]`. */
  readonly ranges: Array<number> = []
  readonly sources: Array<Uint8Array> = []
  replies: Array<Response.Response> = []
  chunks: ReadonlyArray<Uint8Array> = Batch.noChunks
  chunkIndex = 0
  chunkOffset = 0
  frameIndex = 0
  now = 0
  batchBytes = 0
  completing = 0
  framing: Wire.WireError | undefined = undefined
  refused: Errors.BufferLimit | undefined = undefined
  anyFrames = false
  waited = false
  last = false
  stage: Batch.Stage = Batch.Decode
  /** What the fiber must run for `Suspend` (a handler) or `Drain` (a write). */
  pending: Effect.Effect<any, any> | undefined = undefined
  pendingBytes = 0
  pendingLate = false
  /** Bytes decoded plus frames answered (weighted) since the event loop last had a turn. */
  work = 0
  /** A sequential batch waits in a handler; its ready replies are flushed by a microtask. */
  inHandler = false
  flushQueued = false
  // --- the direct path
  socket: DirectSocket | undefined = undefined
  /** Chunks that arrived while a batch fiber ran. */
  queue: Array<Uint8Array> | undefined = undefined
  queued = 0
  ended = false
  failure: Socket.SocketError | undefined = undefined
  closed = false

  readonly shared: Shared
  constructor(shared: Shared, now: number) {
    this.shared = shared
    this.lastActivity = now
    this.decoder = new Wire.FrameDecoder(shared.options.maxFrameSize)
  }

  isIdle(): boolean {
    return this.phase === Batch.Reading
  }

  /** Shutdown or a deadline: the batch fiber is interrupted; a direct connection without one closes now. */
  interrupt(): void {
    if (this.fiber !== undefined) this.fiber.interruptUnsafe()
    else if (this.socket !== undefined) this.close()
  }

  // --- the direct path -------------------------------------------------------

  data(chunk: Uint8Array): void {
    if (this.closed) return
    if (this.fiber !== undefined) {
      ;(this.queue ??= []).push(chunk)
      this.queued += chunk.length
      if (this.queued > queueHighWater) this.socket!.pause()
      return
    }
    // The data came from the event loop: it had a turn.
    this.work = 0
    this.run([chunk])
  }

  end(): void {
    this.ended = true
    if (this.fiber === undefined) this.close()
  }

  failed(error: Socket.SocketError): void {
    if (this.closed) return
    this.failure ??= error
    if (this.fiber === undefined) this.fail(error)
  }

  private run(batch: ReadonlyArray<Uint8Array>): void {
    Batch.begin(this, batch)
    let next: Batch.Step
    try {
      next = Batch.step(this)
    } catch (defect) {
      this.pending = Effect.die(defect)
      next = Batch.Drain
    }
    if (next === Batch.Done) return this.idle()
    if (next === Batch.Finish) return this.finish()
    const fiber = this.shared.runFork(batchFiber(this, next))
    this.fiber = fiber
    // Called at once when the fiber is already done.
    fiber.addObserver((exit) => this.batchDone(exit))
  }

  private idle(): void {
    this.phase = Batch.Reading
    if (this.shared.isDraining() || this.ended) this.close()
    else if (this.failure !== undefined) this.fail(this.failure)
  }

  private batchDone(exit: Exit.Exit<Batch.Step, Socket.SocketError>): void {
    this.fiber = undefined
    if (this.closed) return
    if (exit._tag === "Success") {
      if (exit.value === Batch.Finish) return this.finish()
      // The fiber took every queued chunk, unless the server is draining: then `idle` closes.
      this.idle()
      if (!this.closed) this.socket!.resume()
      return
    }
    // Interrupted (shutdownTimeout, a deadline) with replies ready: they are sent first.
    Batch.flushLeftovers(this)
    const error = Cause.findErrorOption(exit.cause)
    if (error._tag === "Some" && this.timedOut === undefined) return this.fail(error.value)
    if (Cause.hasDies(exit.cause)) {
      this.shared.runFork(Effect.logDebug("quasizero: connection handler failed", exit.cause))
    }
    this.close()
  }

  // A framing error or a refused frame: the replies are out, the connection ends.
  private finish(): void {
    this.shared.runFork(this.shared.metrics.report(Batch.finishReason(this)))
    this.close()
  }

  private fail(error: Socket.SocketError): void {
    // EOF (close code 1000) is how a connection normally ends; a timed-out one was reported by the sweeper.
    if (this.timedOut === undefined && !(error.reason._tag === "SocketCloseError" && error.reason.code === 1000)) {
      this.shared.runFork(this.shared.metrics.report(new Errors.SocketFailure({ error })))
    }
    this.close()
  }

  /** Closes a direct connection once: its charge given back, the socket closed after pending writes. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.phase = Batch.Reading
    this.queue = undefined
    this.queued = 0
    Batch.release(this)
    this.shared.onClosed(this)
    this.shared.metrics.closed(this.shared.open())
    this.socket?.close()
  }
}

// A batch the data handler could not finish, and the batches queued behind it.
const batchFiber = Effect.fnUntraced(function*(conn: Connection, first: Batch.Step) {
  let next = yield* Drive.drive(conn, first)
  // Not after a read error: the connection ends with it (`idle`), as a pull would have failed.
  while (next === Batch.Done && conn.queued > 0 && conn.failure === undefined && !conn.shared.isDraining()) {
    const batch = conn.queue!
    conn.queue = undefined
    conn.queued = 0
    conn.socket!.resume()
    Batch.begin(conn, batch)
    next = yield* Drive.drive(conn, Batch.step(conn))
  }
  return next
})

/** @internal */
export const make = (deps: {
  readonly options: ServerOptions.ResolvedOptions
  readonly handlers: Handlers.Shape
  readonly admit: (conn: Connection) => "admitted" | "draining" | "full"
  readonly onClosed: (conn: Connection) => void
  readonly open: () => number
  readonly isDraining: () => boolean
  readonly buffers: { held: number }
  /** The server's context: metrics are recorded in its registry, batch fibers run in it. */
  readonly context: Context.Context<never>
  readonly clock: Clock.Clock
}) => {
  const { handlers, options } = deps
  const metrics = Metrics.make({ options, handlers, context: deps.context, clock: deps.clock })
  // The handlers' services are provided once per server, not per request.
  const handlerContext = Context.merge(deps.context, handlers.context as Context.Context<never>)
  const shared: Shared = {
    options,
    concurrency: options.concurrency,
    maxBufferedBytes: options.maxBufferedBytes,
    timed: options.timeout > 0 || options.idleTimeout > 0,
    clock: deps.clock,
    buffers: deps.buffers,
    frames: new FrameHandler(handlers, options, metrics),
    metrics,
    runFork: Effect.runForkWith(handlerContext),
    admit: deps.admit,
    onClosed: deps.onClosed,
    open: deps.open,
    isDraining: deps.isDraining
  }

  // The direct path: a plain callback per accepted socket.
  const accept = (socket: DirectSocket): void => {
    const conn = new Connection(shared, deps.clock.currentTimeMillisUnsafe())
    const admitted = deps.admit(conn)
    if (admitted !== "admitted") {
      socket.close()
      if (admitted === "full") {
        shared.runFork(metrics.report(new Errors.ConnectionLimit({ limit: options.maxConnections })))
      }
      return
    }
    conn.socket = socket
    conn.io = socket
    metrics.opened(deps.open())
    if (options.tcpKeepAlive > 0) socket.setKeepAlive(options.tcpKeepAlive)
    socket.start(conn)
  }

  return { shared, accept }
}
