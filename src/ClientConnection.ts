/**
 * One client connection: a socket, a FIFO of waiting calls, one reader fiber
 * and one writer fiber. Internal to `Client` (the pool picks a connection,
 * this module talks on it).
 *
 * Invariants:
 * - request order is the only correlation: a call's waiter enters the
 *   `inflight` FIFO in the same synchronous step in which its bytes are handed
 *   to the socket, and only the writer fiber writes, so the FIFO order is the
 *   byte order; the reader completes the FIFO head with each reply;
 * - calls are queued and written coalesced: all calls made while the reader
 *   delivers a batch of replies (the callers it resumes call again inline),
 *   or in one microtask, go out in one write; an idle connection writes a
 *   lone call at once;
 * - any read or write error, protocol error or request timeout closes the
 *   connection for good: every written call fails with `maybeProcessed: true`,
 *   every queued one with `false`, and `onClose` drops it from the pool;
 * - a call counts against the connection (`outstanding`) from the moment it
 *   is queued until its reply is consumed, whether its caller still waits or
 *   not; each slot that frees is reported with `onSlotFree`;
 * - time is read from `Clock` and waited on with `Effect.sleep`: one watchdog
 *   per connection compares the oldest call's deadline with the clock, so
 *   there is no timer per request.
 *
 * @since 0.1.0
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import {
  closedFailure,
  encodeEntries,
  Entry,
  failAll,
  type Failure,
  poolClosedFailure,
  protocolFailure,
  replyFailure,
  type Resume,
  socketFailure,
  timeoutFailure
} from "./ClientEntry.ts"
import { ClientError } from "./ClientError.ts"
import { formatDuration } from "./Options.ts"
import type * as Request from "./Request.ts"
import type * as Response from "./Response.ts"
import * as Wire from "./Wire.ts"

/**
 * What a connection needs from its client.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config {
  readonly address: string
  readonly maxFrameSize: number
  /** `Duration.zero` disables the watchdog. */
  readonly requestTimeout: Duration.Duration
  /** Bounds on each reply's metadata (`maxMetadataEntries`, `maxMetadataBytes`). */
  readonly decodeLimits: Wire.DecodeLimits
  /** Called once, right after the connection closed (the client drops it from its pool). */
  readonly onClose: (connection: Connection) => Effect.Effect<void>
  /**
   * Called synchronously each time a call leaves the connection (its reply
   * was consumed, or it failed unsent) while the connection stays open: the
   * client hands the freed slot to a waiting caller.
   */
  readonly onSlotFree: (connection: Connection) => void
  /** Keep `idleSince` up to date (the client reaps idle connections). */
  readonly trackIdle: boolean
}

const closeEvent = new Socket.CloseEvent(1000)

/**
 * A connection (see the module notes). `state` is `"open"` while calls are
 * accepted; `"closed"` is final: every call fails at once with the error the
 * connection closed with (not sent, so safe to retry elsewhere).
 *
 * @since 0.1.0
 * @category models
 */
export class Connection {
  /** `"open"`: calls are queued and written. `"closed"`: final; calls fail at once. */
  state: "open" | "closed" = "open"
  /** Error for calls made after the close (`maybeProcessed: false`). */
  closedError: ClientError | undefined

  private readonly config: Config
  private readonly clock: Clock.Clock
  /** `requestTimeout` in milliseconds; 0 when disabled. */
  readonly timeoutMillis: number
  private readonly timeoutText: string
  /** Clock time at which the last call left (or the connection opened); kept when `trackIdle`. */
  idleSince: number
  /** Set when the connection's scope starts closing: the socket must not be touched any more. */
  finalizing = false
  private readonly writer: Socket.Writer
  private readonly decoder: Wire.FrameDecoder
  private readonly frames: Array<Uint8Array> = []

  // Written calls awaiting replies, oldest first: `inflight[head..]`.
  private inflight: Array<Entry> = []
  private head = 0
  // Calls not yet written, in call order, and the requests of a batch.
  private queued: Array<Entry> = []
  private spare: Array<Entry> = []

  // The writer fiber, when parked waiting for work.
  private writerResume: ((effect: Effect.Effect<void>) => void) | undefined
  // The watchdog fiber, when parked waiting for a call.
  private watchdogResume: ((effect: Effect.Effect<void>) => void) | undefined
  // The reader is completing calls: calls made now are flushed when it is done.
  private delivering = false
  private flushScheduled = false

  constructor(config: Config, clock: Clock.Clock, writer: Socket.Writer) {
    this.config = config
    this.clock = clock
    this.writer = writer
    this.timeoutMillis = Duration.toMillis(config.requestTimeout)
    this.timeoutText = formatDuration(config.requestTimeout)
    this.idleSince = clock.currentTimeMillisUnsafe()
    this.decoder = new Wire.FrameDecoder(config.maxFrameSize)
  }

  /**
   * Calls on this connection whose replies are not consumed yet: queued,
   * written, and abandoned by their callers alike. This is what counts
   * against `maxInFlight`.
   */
  get outstanding(): number {
    return this.inflight.length - this.head + this.queued.length
  }

  /** Closes the connection, failing every pending call with `PoolClosed`. */
  shutdown(): Effect.Effect<void> {
    return this.close(poolClosedFailure(this.config.address))
  }

  /**
   * Queues one request (`request`) or a pipeline (`requests`); `resume` gets
   * the reply (or replies, in order) or the failure. A closed connection
   * fails it at once with `closedError` (not sent).
   */
  submit(
    request: Request.Request | undefined,
    requests: ReadonlyArray<Request.Request> | undefined,
    resume: Resume
  ): void {
    if (this.state !== "open") return resume(Exit.fail(this.closedError!))
    const deadline = this.timeoutMillis > 0 ? this.clock.currentTimeMillisUnsafe() + this.timeoutMillis : Infinity
    this.queued.push(new Entry(request, requests, resume, deadline))
    if (this.watchdogResume !== undefined) this.wakeWatchdog()
    // While the reader delivers, it flushes when done; a busy writer loops.
    if (this.delivering || this.writerResume === undefined) return
    if (this.head === this.inflight.length && this.queued.length === 1) {
      // Idle connection: nothing to coalesce with, write now.
      this.wakeWriter()
    } else if (!this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(this.flushTask)
    }
  }

  // Resuming a parked fiber runs it synchronously, inline, until it parks again.
  private wakeWriter(): void {
    const resume = this.writerResume!
    this.writerResume = undefined
    resume(Effect.void)
  }

  private wakeWatchdog(): void {
    const resume = this.watchdogResume!
    this.watchdogResume = undefined
    resume(Effect.void)
  }

  private readonly flushTask = (): void => {
    this.flushScheduled = false
    if (!this.delivering && this.queued.length > 0 && this.writerResume !== undefined) this.wakeWriter()
  }

  // ---------------------------------------------------------------------------
  // writer
  // ---------------------------------------------------------------------------

  private readonly park: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (this.state === "open" && this.queued.length > 0) return resume(Effect.void)
    this.writerResume = resume
  })

  /** The writer fiber: park until calls are queued, write them in one go, repeat. */
  readonly writeLoop: Effect.Effect<void> = Effect.flatMap(this.park, () => this.flush)

  private readonly flush: Effect.Effect<void> = Effect.suspend(() => {
    if (this.state !== "open") return Effect.void
    if (this.queued.length === 0) return this.writeLoop
    const bytes = this.takeBatch()
    if (bytes === undefined) return this.flush
    return Effect.matchEffect(this.writer.write(bytes), this.writeHandlers)
  })

  private readonly writeHandlers = {
    onFailure: (error: Socket.SocketError): Effect.Effect<void> =>
      this.close(socketFailure(this.config.address, error, "write")),
    onSuccess: (): Effect.Effect<void> => this.flush
  }

  // Moves every queued call to the inflight FIFO and encodes their requests
  // into one buffer. A request over `maxFrameSize` fails on its own, unsent.
  private takeBatch(): Uint8Array | undefined {
    const entries = this.queued
    this.queued = this.spare
    const count = entries.length
    const bytes = encodeEntries(entries, this.config.maxFrameSize, this.config.address)
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!
      entry.written = true
      this.inflight.push(entry)
    }
    // Slots of requests failed unsent free up once the batch is counted.
    for (let dropped = count - entries.length; dropped > 0; dropped--) this.released()
    entries.length = 0
    this.spare = entries
    return bytes
  }

  // ---------------------------------------------------------------------------
  // reader
  // ---------------------------------------------------------------------------

  /** The reader fiber: pull a batch of chunks, complete a call per reply, repeat. */
  readLoop(pull: Effect.Effect<ReadonlyArray<Uint8Array>, Socket.SocketError>): Effect.Effect<void> {
    const handlers = {
      onFailure: (error: Socket.SocketError): Effect.Effect<void> =>
        this.close(socketFailure(this.config.address, error, "read")),
      onSuccess: (chunks: ReadonlyArray<Uint8Array>): Effect.Effect<void> => this.onChunks(chunks, loop)
    }
    const loop: Effect.Effect<void> = Effect.matchEffect(pull, handlers)
    return loop
  }

  private onChunks(chunks: ReadonlyArray<Uint8Array>, loop: Effect.Effect<void>): Effect.Effect<void> {
    if (this.state !== "open") return Effect.void
    const frames = this.frames
    let failure: Failure | undefined
    this.delivering = true
    for (let i = 0; i < chunks.length && failure === undefined; i++) {
      const error = this.decoder.push(chunks[i]!, frames)
      for (let j = 0; j < frames.length && failure === undefined && this.state === "open"; j++) {
        failure = this.deliver(frames[j]!)
      }
      frames.length = 0
      if (failure === undefined && error !== undefined) {
        failure = protocolFailure(this.config.address, error.message, error)
      }
    }
    this.delivering = false
    if (failure !== undefined) return this.close(failure)
    if (this.state !== "open") return Effect.void
    if (this.queued.length > 0 && this.writerResume !== undefined) this.wakeWriter()
    return loop
  }

  // Completes the oldest call with one reply; a failure closes the connection.
  private deliver(frame: Uint8Array): Failure | undefined {
    const entry = this.inflight[this.head]
    if (entry === undefined) {
      return protocolFailure(this.config.address, "a reply arrived with no request waiting for it", undefined)
    }
    let response: Response.Response | undefined
    try {
      response = Wire.decodeResponseUnsafe(frame, this.config.decodeLimits)
    } catch (error) {
      // Over a metadata limit, this call fails and the connection stays;
      // malformed, the connection closes.
      const failure = replyFailure(this.config.address, error)
      if (!(failure instanceof ClientError)) return failure
      entry.error ??= failure
    }
    const responses = entry.responses
    if (responses !== undefined) {
      if (response !== undefined) responses.push(response)
      if (++entry.received < entry.requests!.length) return undefined
    }
    this.shift()
    // The freed slot goes to a waiting caller first, then this caller resumes
    // (and may call again, behind the waiters).
    this.released()
    entry.complete(entry.error !== undefined ? Exit.fail(entry.error) : Exit.succeed(responses ?? response))
    return undefined
  }

  private released(): void {
    if (this.config.trackIdle && this.outstanding === 0) this.idleSince = this.clock.currentTimeMillisUnsafe()
    this.config.onSlotFree(this)
  }

  private shift(): void {
    this.inflight[this.head++] = undefined as unknown as Entry
    if (this.head === this.inflight.length) {
      this.inflight.length = 0
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.inflight.length) {
      this.inflight = this.inflight.slice(this.head)
      this.head = 0
    }
  }

  // ---------------------------------------------------------------------------
  // watchdog
  // ---------------------------------------------------------------------------

  private oldest(): Entry | undefined {
    return this.head < this.inflight.length ? this.inflight[this.head] : this.queued[0]
  }

  private readonly parkWatchdog: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (this.state !== "open" || this.oldest() !== undefined) return resume(Effect.void)
    this.watchdogResume = resume
  })

  /**
   * The watchdog fiber: sleeps until the oldest call's deadline, then closes
   * the connection if that call (or an older one) is still unanswered.
   */
  readonly watchdog: Effect.Effect<void> = Effect.suspend(() => {
    if (this.state !== "open") return Effect.void
    const entry = this.oldest()
    if (entry === undefined) return Effect.flatMap(this.parkWatchdog, () => this.watchdog)
    const remaining = entry.deadline - this.clock.currentTimeMillisUnsafe()
    if (remaining > 0) return Effect.flatMap(Effect.sleep(remaining), () => this.watchdog)
    return this.close(
      timeoutFailure(this.config.address, this.config.requestTimeout, this.timeoutText, entry)
    )
  })

  // ---------------------------------------------------------------------------
  // closing
  // ---------------------------------------------------------------------------

  /**
   * Marks the connection closed, lets the client drop it from its pool,
   * fails every pending call, then destroys the socket. Uninterruptible: the
   * pending calls must always be failed, even when closing the connection's
   * scope interrupts this fiber.
   */
  close(failure: Failure): Effect.Effect<void> {
    return Effect.uninterruptible(Effect.suspend(() => {
      const detached = this.detach(failure)
      if (detached === undefined) return Effect.void
      return Effect.andThen(
        this.config.onClose(this),
        Effect.suspend(() => {
          failAll(detached, failure)
          return this.finalizing ? Effect.void : Effect.ignore(this.writer.write(closeEvent))
        })
      )
    }))
  }

  /** Closes synchronously without touching the socket (for scope finalizers). */
  closeNow(failure: Failure): void {
    const detached = this.detach(failure)
    if (detached !== undefined) failAll(detached, failure)
  }

  private detach(failure: Failure): Array<Entry> | undefined {
    if (this.state === "closed") return undefined
    this.state = "closed"
    this.closedError = failure.unwritten
    const detached = this.inflight.slice(this.head)
    for (let i = 0; i < this.queued.length; i++) detached.push(this.queued[i]!)
    this.inflight = []
    this.head = 0
    this.queued = []
    this.decoder.reset()
    // Let the parked fibers see the close and end.
    if (this.writerResume !== undefined) this.wakeWriter()
    if (this.watchdogResume !== undefined) this.wakeWatchdog()
    return detached
  }
}

/**
 * Opens a connection on a dialed socket: acquires its reader (this is when a
 * Node socket connects) and writer, then forks the reader, writer and
 * watchdog fibers into the scope. Closing the scope fails pending calls and
 * closes the socket.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(socket: Socket.Socket, config: Config) {
  const pull = yield* Socket.readerBytes(socket)
  const writer = yield* socket.writer
  const clock = yield* Clock.Clock
  const connection = new Connection(config, clock, writer)
  const closed = closedFailure(config.address, "closed by the client")
  yield* Effect.addFinalizer(() => Effect.sync(() => connection.closeNow(closed)))
  yield* Effect.forkScoped(connection.readLoop(pull))
  yield* Effect.forkScoped(connection.writeLoop)
  if (connection.timeoutMillis > 0) yield* Effect.forkScoped(connection.watchdog)
  // Added last, so it runs first when the scope closes.
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      connection.finalizing = true
    })
  )
  return connection
}) as (socket: Socket.Socket, config: Config) => Effect.Effect<Connection, Socket.SocketError, Scope.Scope>
