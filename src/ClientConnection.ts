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
 *   every queued one with `false`, and `onClose` invalidates it in the pool;
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
  ClientError,
  ConnectionClosed,
  PoolClosed,
  ProtocolError,
  RequestTimeout,
  RequestTooLarge
} from "./ClientError.ts"
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
  /** Called once, right after the connection closed (the client invalidates it in the pool). */
  readonly onClose: (connection: Connection) => Effect.Effect<void>
}

type Resume = (effect: Effect.Effect<any, ClientError>) => void

// One waiting call: one request (`call`) or several (`pipeline`), answered
// together once all their replies are in.
class Entry {
  resume: Resume | undefined
  written = false
  readonly request: Request.Request | undefined
  readonly requests: ReadonlyArray<Request.Request> | undefined
  readonly responses: Array<Response.Response> | undefined
  readonly deadline: number
  constructor(
    request: Request.Request | undefined,
    requests: ReadonlyArray<Request.Request> | undefined,
    resume: Resume,
    deadline: number
  ) {
    this.request = request
    this.requests = requests
    this.responses = requests === undefined ? undefined : []
    this.resume = resume
    this.deadline = deadline
  }
  complete(exit: Exit.Exit<any, ClientError>): void {
    const resume = this.resume
    if (resume === undefined) return
    this.resume = undefined
    resume(exit)
  }
}

// Errors handed to calls when a connection closes: one for calls already
// written (may have been processed), one for calls still queued (not sent),
// and optionally a specific one for the call that caused the close.
interface Failure {
  readonly written: ClientError
  readonly unwritten: ClientError
  readonly culprit?: Entry | undefined
  readonly culpritError?: ClientError | undefined
}

const closeEvent = new Socket.CloseEvent(1000)

const socketDetail = (error: Socket.SocketError, during: "read" | "write"): string => {
  const reason = error.reason
  if (reason._tag === "SocketCloseError") return reason.code === 1000 ? "closed by the server" : "connection reset"
  const cause = "cause" in reason ? reason.cause : undefined
  const text = cause instanceof Error && cause.message.length > 0 ? cause.message : reason.message
  return `${during} failed: ${text}`
}

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
  private readonly batch: Array<Request.Request> = []

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
    this.decoder = new Wire.FrameDecoder(config.maxFrameSize)
  }

  /** Calls written and not yet answered. */
  get inflightCount(): number {
    return this.inflight.length - this.head
  }

  /** Calls queued and not yet written. */
  get queuedCount(): number {
    return this.queued.length
  }

  /** Sends one request; succeeds with its reply. */
  call(request: Request.Request): Effect.Effect<Response.Response, ClientError> {
    return Effect.callback<Response.Response, ClientError>((resume) => {
      this.register(request, undefined, resume)
    })
  }

  /** Sends the requests in one write; succeeds with their replies, in order. */
  pipeline(requests: ReadonlyArray<Request.Request>): Effect.Effect<Array<Response.Response>, ClientError> {
    return Effect.callback<Array<Response.Response>, ClientError>((resume) => {
      this.register(undefined, requests, resume)
    })
  }

  /** Closes the connection, failing every pending call with `PoolClosed`. */
  shutdown(): Effect.Effect<void> {
    const address = this.config.address
    return this.close({
      written: new ClientError({ reason: new PoolClosed({ address, maybeProcessed: true }) }),
      unwritten: new ClientError({ reason: new PoolClosed({ address, maybeProcessed: false }) })
    })
  }

  private register(
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
    onFailure: (error: Socket.SocketError): Effect.Effect<void> => this.closeWith(error, "write"),
    onSuccess: (): Effect.Effect<void> => this.flush
  }

  // Moves every queued call to the inflight FIFO and encodes their requests
  // into one buffer. A request over `maxFrameSize` fails on its own, unsent.
  private takeBatch(): Uint8Array | undefined {
    let entries = this.queued
    this.queued = this.spare
    const batch = this.batch
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!
      if (entry.request !== undefined) batch.push(entry.request)
      else for (let j = 0; j < entry.requests!.length; j++) batch.push(entry.requests![j]!)
    }
    let bytes: Uint8Array | undefined = Wire.encodeRequests(batch)
    batch.length = 0
    // Frames of a batch within the limit are each within it; only a larger
    // batch needs each request measured.
    if (bytes.length > this.config.maxFrameSize) {
      entries = this.dropOversized(entries)
      bytes = undefined
      if (entries.length > 0) {
        for (let i = 0; i < entries.length; i++) {
          const entry = entries[i]!
          if (entry.request !== undefined) batch.push(entry.request)
          else for (let j = 0; j < entry.requests!.length; j++) batch.push(entry.requests![j]!)
        }
        bytes = Wire.encodeRequests(batch)
        batch.length = 0
      }
    }
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!
      entry.written = true
      this.inflight.push(entry)
    }
    entries.length = 0
    this.spare = entries
    return bytes
  }

  private dropOversized(entries: Array<Entry>): Array<Entry> {
    const kept: Array<Entry> = []
    const limit = this.config.maxFrameSize
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!
      const requests = entry.request !== undefined ? [entry.request] : entry.requests!
      let size = 0
      for (let j = 0; j < requests.length && size <= limit; j++) size = Wire.requestBodySize(requests[j]!)
      if (size > limit) {
        entry.complete(Exit.fail(
          new ClientError({
            reason: new RequestTooLarge({ address: this.config.address, size, limit, maybeProcessed: false })
          })
        ))
      } else kept.push(entry)
    }
    return kept
  }

  // ---------------------------------------------------------------------------
  // reader
  // ---------------------------------------------------------------------------

  /** The reader fiber: pull a batch of chunks, complete a call per reply, repeat. */
  readLoop(pull: Effect.Effect<ReadonlyArray<Uint8Array>, Socket.SocketError>): Effect.Effect<void> {
    const handlers = {
      onFailure: (error: Socket.SocketError): Effect.Effect<void> => this.closeWith(error, "read"),
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
      if (failure === undefined && error !== undefined) failure = this.protocolFailure(error.message, error)
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
    if (entry === undefined) return this.protocolFailure("a reply arrived with no request waiting for it", undefined)
    let response: Response.Response
    try {
      response = Wire.decodeResponseUnsafe(frame)
    } catch (error) {
      if (error instanceof Wire.WireError) return this.protocolFailure(`malformed reply: ${error.message}`, error)
      throw error
    }
    const responses = entry.responses
    if (responses !== undefined) {
      responses.push(response)
      if (responses.length < entry.requests!.length) return undefined
    }
    this.shift()
    entry.complete(Exit.succeed(responses ?? response))
    return undefined
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
    const address = this.config.address
    const detail = `closed after a request got no reply within ${Duration.format(this.config.requestTimeout)}`
    return this.close({
      written: new ClientError({ reason: new ConnectionClosed({ address, detail, maybeProcessed: true }) }),
      unwritten: new ClientError({ reason: new ConnectionClosed({ address, detail, maybeProcessed: false }) }),
      culprit: entry,
      culpritError: new ClientError({
        reason: new RequestTimeout({
          address,
          timeout: this.config.requestTimeout,
          maybeProcessed: entry.written
        })
      })
    })
  })

  // ---------------------------------------------------------------------------
  // closing
  // ---------------------------------------------------------------------------

  private protocolFailure(detail: string, cause: Wire.WireError | undefined): Failure {
    const address = this.config.address
    return {
      written: new ClientError({ reason: new ProtocolError({ address, detail, cause, maybeProcessed: true }) }),
      unwritten: new ClientError({
        reason: new ConnectionClosed({
          address,
          detail: `closed after a protocol error: ${detail}`,
          maybeProcessed: false
        })
      })
    }
  }

  private closeWith(error: Socket.SocketError, during: "read" | "write"): Effect.Effect<void> {
    const address = this.config.address
    const detail = socketDetail(error, during)
    return this.close({
      written: new ClientError({
        reason: new ConnectionClosed({ address, detail, cause: error, maybeProcessed: true })
      }),
      unwritten: new ClientError({
        reason: new ConnectionClosed({ address, detail, cause: error, maybeProcessed: false })
      })
    })
  }

  /**
   * Marks the connection closed, lets the client invalidate it, fails every
   * pending call, then destroys the socket. Uninterruptible: the pending calls
   * must always be failed, even when the invalidation interrupts this fiber.
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

const failAll = (entries: ReadonlyArray<Entry>, failure: Failure): void => {
  const written = Exit.fail(failure.written)
  const unwritten = Exit.fail(failure.unwritten)
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!
    if (entry === failure.culprit) entry.complete(Exit.fail(failure.culpritError!))
    else entry.complete(entry.written ? written : unwritten)
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
  const address = config.address
  const detail = "closed by the client"
  yield* Effect.addFinalizer(() =>
    Effect.sync(() =>
      connection.closeNow({
        written: new ClientError({ reason: new ConnectionClosed({ address, detail, maybeProcessed: true }) }),
        unwritten: new ClientError({ reason: new ConnectionClosed({ address, detail, maybeProcessed: false }) })
      })
    )
  )
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
