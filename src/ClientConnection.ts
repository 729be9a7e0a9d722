/**
 * One client connection: a socket, a FIFO of waiting calls, driven by the
 * socket's own callbacks. Internal to `Client` (the pool picks a connection,
 * this module talks on it).
 *
 * Invariants:
 * - request order is the only correlation: a call's entry enters the
 *   `inflight` FIFO in the same synchronous step in which its bytes are handed
 *   to the socket, and only `flush` writes, so the FIFO order is the byte
 *   order; `onData` completes the FIFO head with each reply, calling the
 *   caller's resume directly (no fiber between the socket and the caller);
 * - calls are queued and written coalesced: all calls made while `onData`
 *   delivers a batch of replies (the callers it resumes call again inline),
 *   or in one microtask, go out in one write; an idle connection writes a
 *   lone call at once; after a write the socket could not take whole, the
 *   next waits for `onDrain`;
 * - any read or write error, protocol error or request timeout closes the
 *   connection for good: every written call fails with `maybeProcessed: true`,
 *   every queued one with `false`, and `onClose` drops it from the pool;
 * - a call counts against the connection (`outstanding`) from the moment it
 *   is queued until its reply is consumed, whether its caller still waits or
 *   not; each slot that frees is reported with `onSlotFree`;
 * - the connection's scope owns the socket (the transport's finalizer);
 *   each call's deadline is read from `Clock` when it is queued, and the
 *   client's one sweeper (`deadline`, `expire`) closes a connection whose
 *   oldest call is past it: no timer per request, no fiber per connection
 *   or per call.
 *
 * @since 0.1.0
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import type * as Socket from "effect/socket/Socket"
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
import type * as ClientTransport from "./ClientTransport.ts"
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
  /** `Duration.zero` disables it. */
  readonly requestTimeout: Duration.Duration
  /** Bounds on each reply's metadata (`maxMetadataEntries`, `maxMetadataBytes`). */
  readonly decodeLimits: Wire.DecodeLimits
  /** Called once, synchronously, right after the connection closed (the client drops it from its pool). */
  readonly onClose: (connection: Connection) => void
  /**
   * Called synchronously each time a call leaves the connection (its reply
   * was consumed, or it failed unsent) while the connection stays open: the
   * client hands the freed slot to a waiting caller.
   */
  readonly onSlotFree: (connection: Connection) => void
  /** Keep `idleSince` up to date (the client reaps idle connections). */
  readonly trackIdle: boolean
  /**
   * Called synchronously when a call arrives on a connection with nothing
   * outstanding (the client's `requestTimeout` sweeper may be parked).
   */
  readonly onBusy: () => void
}

/**
 * A connection (see the module notes). `state` is `"open"` while calls are
 * accepted; `"closed"` is final: every call fails at once with the error the
 * connection closed with (not sent, so safe to retry elsewhere).
 *
 * @since 0.1.0
 * @category models
 */
export class Connection implements ClientTransport.Handler {
  /** `"open"`: calls are queued and written. `"closed"`: final; calls fail at once. */
  state: "open" | "closed" = "open"
  /** Error for calls made after the close (`maybeProcessed: false`). */
  closedError: ClientError | undefined
  /** Clock time at which the last call left (or the connection opened); kept when `trackIdle`. */
  idleSince: number
  /** The pool's bookkeeping: the connection's own scope, and when it joined the pool. */
  scope: Scope.Closeable | undefined
  openedAt = 0
  /** `requestTimeout` in milliseconds; 0 when disabled. */
  readonly timeoutMillis: number

  private readonly config: Config
  private readonly clock: Clock.Clock
  private transport: ClientTransport.Transport | undefined
  private readonly decoder: Wire.FrameDecoder
  // Offset pairs of the frames of one chunk (`FrameDecoder.pushRanges`).
  private readonly ranges: Array<number> = []

  // Written calls awaiting replies, oldest first: `inflight[head..]`.
  private inflight: Array<Entry> = []
  private head = 0
  // Calls not yet written, in call order, and the requests of a batch.
  private queued: Array<Entry> = []
  private spare: Array<Entry> = []

  // `onData` is completing calls: calls made now are flushed when it is done.
  private delivering = false
  // `flush` is writing: calls made now (a freed slot served) join its loop.
  private flushing = false
  // The last write was not taken whole: the next waits for `onDrain`.
  private draining = false
  private flushScheduled = false

  constructor(config: Config, clock: Clock.Clock) {
    this.config = config
    this.clock = clock
    this.timeoutMillis = Duration.toMillis(config.requestTimeout)
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

  /**
   * Closes the connection, failing every pending call with `PoolClosed`
   * (`failure`: the pool's one, shared by all its connections).
   */
  shutdown(failure: Failure = poolClosedFailure(this.config.address)): void {
    this.close(failure)
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
    const idle = this.head === this.inflight.length && this.queued.length === 0
    this.queued.push(new Entry(request, requests, resume, deadline))
    if (idle) this.config.onBusy()
    // While replies are delivered or a write is under way, it is flushed after.
    if (this.delivering || this.flushing || this.draining) return
    if (idle) {
      // Idle connection: nothing to coalesce with, write now.
      this.flush()
    } else if (!this.flushScheduled) {
      this.flushScheduled = true
      // Made on first use: a connection that never coalesces never pays for it.
      queueMicrotask(
        this.flushTask ??= () => {
          this.flushScheduled = false
          if (!this.delivering && !this.flushing && !this.draining) this.flush()
        }
      )
    }
  }

  private flushTask: (() => void) | undefined

  // ---------------------------------------------------------------------------
  // writing
  // ---------------------------------------------------------------------------

  // Writes every queued call, one buffer per round, until none is left or
  // the socket asks to wait for `onDrain`.
  private flush(): void {
    this.flushing = true
    while (this.state === "open" && !this.draining && this.queued.length > 0) {
      const bytes = this.takeBatch()
      if (bytes === undefined) continue
      this.draining = true
      // May close the connection (a write failing at once).
      if (this.transport!.write(bytes)) this.draining = false
    }
    this.flushing = false
  }

  /** @internal */
  onDrain(): void {
    this.draining = false
    if (!this.delivering && !this.flushing) this.flush()
  }

  // Moves every queued call to the inflight FIFO and encodes their requests
  // into one buffer. A request over `maxFrameSize` fails on its own, unsent.
  private takeBatch(): Uint8Array | undefined {
    const entries = this.queued
    this.queued = this.spare
    const count = entries.length
    const bytes = encodeEntries(entries, this.config.maxFrameSize, this.config.address)
    const kept = entries.length
    for (let i = 0; i < kept; i++) {
      const entry = entries[i]!
      entry.written = true
      this.inflight.push(entry)
    }
    entries.length = 0
    this.spare = entries
    // Slots of requests failed unsent free up once the batch is counted.
    for (let dropped = count - kept; dropped > 0; dropped--) this.released()
    return bytes
  }

  // ---------------------------------------------------------------------------
  // reading
  // ---------------------------------------------------------------------------

  /** Bytes from the socket: completes a call per reply, then writes what they queued. @internal */
  onData(chunk: Uint8Array): void {
    if (this.state !== "open") return
    const ranges = this.ranges
    const decoder = this.decoder
    let failure: Failure | undefined
    this.delivering = true
    // Replies are decoded in place, at their offsets: no view per frame.
    const error = decoder.pushRanges(chunk, ranges)
    for (let j = 0; j < ranges.length && failure === undefined && this.state === "open"; j += 2) {
      const start = ranges[j]!
      failure = start < 0 ? this.deliver(decoder.joined, 0, ranges[j + 1]!) : this.deliver(chunk, start, ranges[j + 1]!)
    }
    ranges.length = 0
    if (failure === undefined && error !== undefined) {
      failure = protocolFailure(this.config.address, error.message, error)
    }
    this.delivering = false
    if (failure !== undefined) return this.close(failure)
    if (this.state === "open" && this.queued.length > 0 && !this.draining && !this.flushing) this.flush()
  }

  /** The socket failed or the peer closed it. @internal */
  onError(error: Socket.SocketError, during: "read" | "write"): void {
    this.close(socketFailure(this.config.address, error, during))
  }

  // Completes the oldest call with the reply at `bytes[start, end)`; a failure closes the connection.
  private deliver(bytes: Uint8Array, start: number, end: number): Failure | undefined {
    const entry = this.inflight[this.head]
    if (entry === undefined) {
      return protocolFailure(this.config.address, "a reply arrived with no request waiting for it", undefined)
    }
    let response: Response.Response | undefined
    try {
      response = Wire.decodeResponseAtUnsafe(bytes, start, end, this.config.decodeLimits)
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
  // request timeout
  // ---------------------------------------------------------------------------

  /** Deadline of the oldest unanswered call; `Infinity` when none (or no `requestTimeout`). */
  get deadline(): number {
    const entry = this.head < this.inflight.length ? this.inflight[this.head] : this.queued[0]
    return entry === undefined ? Infinity : entry.deadline
  }

  /** Closes the connection if its oldest call is past its deadline at `now`; the call gets `RequestTimeout`. */
  expire(now: number): void {
    if (this.state !== "open" || this.deadline > now) return
    const entry = this.head < this.inflight.length ? this.inflight[this.head]! : this.queued[0]!
    const timeout = this.config.requestTimeout
    this.close(timeoutFailure(this.config.address, timeout, formatDuration(timeout), entry))
  }

  // ---------------------------------------------------------------------------
  // closing
  // ---------------------------------------------------------------------------

  /**
   * Marks the connection closed, lets the client drop it from its pool,
   * fails every pending call, then destroys the socket. Synchronous, so
   * nothing can interrupt it halfway.
   */
  close(failure: Failure): void {
    const detached = this.detach(failure)
    if (detached === undefined) return
    this.config.onClose(this)
    failAll(detached, failure)
    this.transport?.destroy()
  }

  /** Closes without touching the socket (for the scope's finalizer: the transport's own closes it). */
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
    return detached
  }

  /** The connection's scope is closing: pending calls fail (the transport's own finalizer closes the socket). @internal */
  closedByScope(): void {
    if (this.state === "open") this.closeNow(closedFailure(this.config.address, "closed by the client"))
  }

  /** @internal */
  attach(transport: ClientTransport.Transport): void {
    this.transport = transport
    if (this.state !== "open") transport.destroy()
  }
}

/**
 * Opens a connection over `open` (this is when a socket connects). Closing
 * the scope fails pending calls and closes the socket.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  open: ClientTransport.Open,
  config: Config
): Effect.Effect<Connection, Socket.SocketError, Scope.Scope> =>
  // Plain steps, not a generator: this runs once per dial.
  Effect.withFiber((fiber) => {
    const connection = new Connection(config, fiber.getRef(Clock.Clock))
    return Effect.flatMap(open(connection), (transport) => {
      connection.attach(transport)
      // Added after the transport's, so it runs first when the scope closes.
      return Effect.as(Effect.addFinalizer(() => Effect.sync(() => connection.closedByScope())), connection)
    })
  })
