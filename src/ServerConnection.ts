/**
 * One server connection: the read → handle → write loop, and the server's
 * deadline sweeper. Internal to `Server`.
 *
 * The loop takes a batch of chunks, decodes every complete frame in place,
 * runs the handlers (in order, or `concurrency` at a time), and sends all the
 * replies of the batch with one write. It does not take another batch until
 * that write has drained, so a peer that stops reading stops being read: its
 * memory is bounded by one batch. On a socket with the `DirectRead`
 * capability (`NodeStream`) a batch whose handlers return completed Effects is
 * answered inside the socket's data handler, with no fiber hop; the
 * connection's fiber, which owns the socket and its scope, takes over only
 * when a batch needs it.
 *
 * Timeouts use one sweeper fiber per server that compares each connection's
 * deadlines with `Clock` — never a timer per request or per connection — so
 * `TestClock` drives them.
 *
 * @since 0.1.0
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Socket from "effect/socket/Socket"
import * as Handlers from "./Handlers.ts"
import * as Message from "./Message.ts"
import type * as Request from "./Request.ts"
import * as Response from "./Response.ts"
import * as Errors from "./ServerError.ts"
import type * as ServerOptions from "./ServerOptions.ts"
import { requestSpan } from "./ServerTracing.ts"
import * as Wire from "./Wire.ts"

/**
 * What a connection is doing:
 * - `Reading`: waiting in `pull`; idle/read deadlines apply; shutdown may close it;
 * - `Handling`: running handlers; no deadline (a slow handler is not a slow peer);
 * - `Writing`: replies written, waiting for the socket to drain; the write deadline applies.
 */
const Reading = 0
const Handling = 1
const Writing = 2

/** @internal */
export class Connection {
  phase: 0 | 1 | 2 = Reading
  /** Clock millis of the last request or reply; the idle deadline counts from it. */
  lastActivity: number
  /** Clock millis when the incomplete frame held by the decoder began; -1 when none. */
  frameStartedAt = -1
  /** Clock millis when the pending write began. */
  writeStartedAt = -1
  /** Bytes this connection has charged to the server-wide `maxBufferedBytes`. */
  held = 0
  /** Of `held`, replies written that the socket has not taken yet. */
  unsent = 0
  /** Closed: its charge was given back. */
  released = false
  /** Of `held`, the reservation for the incomplete frame (its declared size); 0 when none. */
  reserved = 0
  fiber: Fiber.Fiber<unknown, unknown> | undefined
  /** Set by the sweeper when a deadline passed: the connection is closing. */
  timedOut: Errors.Timeout | undefined
  /** Destroys the socket at once (set once the loop holds the writer). */
  closeNow: (() => void) | undefined
  constructor(now: number) {
    this.lastActivity = now
  }
  isIdle(): boolean {
    return this.phase === Reading
  }
  interrupt(): void {
    this.fiber?.interruptUnsafe()
  }
}

const connectionsOpen = Metric.gauge("quasizero_server_connections_open", {
  description: "Connections open now"
})
const connectionsTotal = Metric.counter("quasizero_server_connections_total", {
  description: "Connections accepted",
  incremental: true
})
const requestsTotal = Metric.counter("quasizero_server_requests_total", {
  description: "Requests read",
  incremental: true
})
const errorsTotal = Metric.frequency("quasizero_server_errors_total", {
  description: "Connection errors by reason"
})
const requestsByCode = Metric.frequency("quasizero_server_requests_by_code", {
  description: 'Requests by command code (codes without a handler count as "unknown")'
})
const handlerSeconds = Metric.histogram("quasizero_server_handler_seconds", {
  description: "Handler run time; handlers returning a completed Effect count as 0",
  boundaries: Metric.exponentialBoundaries({ start: 1e-6, factor: 4, count: 14 })
})

/** Replies encoded into one write at most; past it the loop writes and waits for the drain. */
const maxRepliesPerWrite = 1024

/**
 * Work one connection may do without the event loop getting a turn before it
 * yields: bytes decoded, plus `frameWork` per frame answered (a frame costs
 * about as much as decoding that many bytes of the worst body): about one
 * full pass, ~1 ms here. Only a peer whose data is always queued reaches it;
 * a batch that had to wait for its data starts from 0.
 */
const yieldAfterWork = 64 * 1024
const frameWork = 128

/** Frames decoded and answered per pass over a read batch. */
const maxFramesPerPass = 1024

/** Frames up to this size are never refused for `maxBufferedBytes` (they are counted). */
const smallFrame = 64 * 1024

const unknownCommand = (code: number): Response.Response => Response.error(`unknown command code ${code}`)
const internalError = Response.error("internal error")

// Exits share two prototypes: comparing them is one load, where `Exit.isExit`
// and `Effect.isEffect` are `in` checks, megamorphic across effect shapes.
const successProto: object = Object.getPrototypeOf(Exit.void)
const failureProto: object = Object.getPrototypeOf(Exit.fail(undefined))
const protoOf = (u: unknown): unknown => typeof u === "object" && u !== null ? Object.getPrototypeOf(u) : undefined
const isExitFast = (u: unknown): u is Exit.Exit<unknown, unknown> => {
  const proto = protoOf(u)
  return proto === successProto || proto === failureProto || Exit.isExit(u)
}

/**
 * A socket whose data handler can answer a batch synchronously (`NodeStream`
 * has it): while the loop is parked in `pull` with nothing queued, the socket
 * calls `direct` with each chunk instead of queueing it. `direct` returns
 * `undefined` when it handled the chunk, or a batch to resume the pull with.
 *
 * @internal
 */
export const DirectReadTypeId: unique symbol = Symbol.for("quasizero/ServerConnection/DirectRead") as never

/** @internal */
export interface DirectRead {
  readonly [DirectReadTypeId]: {
    direct: ((chunk: Uint8Array) => ReadonlyArray<Uint8Array> | undefined) | undefined
  }
}

// The empty batch a direct handler resumes the pull with: the fiber takes over the batch in progress.
const resumed: ReadonlyArray<Uint8Array> = []
const noChunks: ReadonlyArray<Uint8Array> = []

// What `step` needs next: `Done` (the batch is answered), `Finish` (answered,
// then the connection ends on a framing error or a refused frame), `Suspend`
// (run the handler in `pending`), `Drain` (wait for the write in `pending`),
// `Yield` (the fairness yield), `Concurrent` (run the pass with
// `concurrency > 1`); `Continue` is internal to `step`.
type Step = 0 | 1 | 2 | 3 | 4 | 5 | 6
const Done = 0
const Finish = 1
const Suspend = 2
const Drain = 3
const Yield = 4
const Concurrent = 5
const Continue = 6

// Where `step` is in the batch: decoding a pass, answering its frames, after
// the pass, the last write, the end.
type Stage = 0 | 1 | 2 | 3 | 4
const Decode = 0
const Handle = 1
const Passed = 2
const Final = 3
const End = 4

/** @internal */
export const make = (deps: {
  readonly options: ServerOptions.ResolvedOptions
  readonly handlers: Handlers.Shape
  readonly setup: { readonly apply: (options: { readonly tcpKeepAlive: number }) => Effect.Effect<void> }
  readonly admit: (conn: Connection) => "admitted" | "draining" | "full"
  readonly onClosed: (conn: Connection) => void
  readonly open: () => number
  readonly isDraining: () => boolean
  /** Server-wide bytes held in frames and unsent replies, against `maxBufferedBytes`. */
  readonly buffers: { held: number }
  /** The server's context: metrics are recorded in its registry. */
  readonly context: Context.Context<never>
  readonly clock: Clock.Clock
}) => {
  const { buffers, handlers, options } = deps
  const { maxBufferedBytes } = options
  // Sets what `conn` holds in frames to `bytes` (its unsent replies stay
  // counted), in its own and the server-wide count.
  const hold = (conn: Connection, bytes: number) => {
    if (conn.released) return
    const total = bytes + conn.unsent
    buffers.held += total - conn.held
    conn.held = total
  }
  // Counts `delta` more (or fewer) bytes of replies the socket has not taken.
  const holdUnsent = (conn: Connection, delta: number) => {
    if (conn.released) return
    conn.unsent += delta
    conn.held += delta
    buffers.held += delta
  }
  // A closed connection gives back everything; writes still draining change nothing after.
  const release = (conn: Connection) => {
    if (conn.released) return
    buffers.held -= conn.held
    conn.held = 0
    conn.unsent = 0
    conn.released = true
  }
  const { decodeLimits } = options
  // The counter's hook, looked up once: `updateUnsafe` finds the registry in
  // the context and the series in it on every call (~0.2 µs a read).
  const requestsRead = (requestsTotal as unknown as {
    hook: (context: Context.Context<never>) => { update: (n: number, context: Context.Context<never>) => void }
  }).hook(deps.context)
  const table = handlers.handlers
  // Labels only for registered codes: a peer sending random codes must not
  // grow the metric without bound.
  const codeLabels = new Map(Array.from(table.keys(), (code) => [code, String(code)]))
  const countCode = (code: number) => requestsByCode.updateUnsafe(codeLabels.get(code) ?? "unknown", deps.context)
  const timed = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      const start = deps.clock.currentTimeNanosUnsafe()
      return Effect.onExit(effect, () =>
        Effect.sync(() =>
          handlerSeconds.updateUnsafe(Number(deps.clock.currentTimeNanosUnsafe() - start) / 1e9, deps.context)
        ))
    })

  const report = (reason: Errors.ServerErrorReason): Effect.Effect<void> => {
    const error = new Errors.ServerError({ reason })
    const logged = Effect.andThen(
      Metric.update(errorsTotal, reason._tag),
      Effect.logDebug("quasizero connection error", error.message)
    )
    return options.onError === undefined
      ? logged
      : Effect.andThen(logged, Effect.ignoreCause(Effect.suspend(() => options.onError!(error))))
  }

  // A typed failure is answered at once; a defect or an interruption needs the fiber.
  const onHandlerFailure = (request: Request.Request) =>
  (
    cause: Cause.Cause<unknown>
  ): Response.Response | Effect.Effect<Response.Response> => {
    // Interrupted at shutdown: invent no reply; the connection closes.
    if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
    if (Cause.hasFails(cause) && !Cause.hasDies(cause)) {
      const error = Cause.findErrorOption(cause)
      if (error._tag === "Some") return Handlers.failureResponse(handlers, error.value)
    }
    return Effect.as(
      Effect.andThen(
        Effect.logError(`quasizero: handler for code ${request.code} died`, cause),
        report(new Errors.HandlerDefect({ code: request.code, cause }))
      ),
      internalError
    )
  }

  // Decodes one frame and runs its handler. Never fails: a malformed body or a
  // failing handler becomes the reply. A handler that returns an already
  // completed Effect (`Effect.succeed`, `Effect.fail`: an Exit) is answered
  // right here, without a trip through the fiber's run loop; that is most
  // handlers, and it is what keeps pipelined batches close to raw node:net.
  // Any other Effect is left in `suspended` and `undefined` returned: the
  // fiber must run it.
  let suspended: Effect.Effect<Response.Response> | undefined
  const handleFrame = (bytes: Uint8Array, start: number, end: number): Response.Response | undefined => {
    let request: Request.Request
    try {
      request = Wire.decodeRequestAtUnsafe(bytes, start, end, decodeLimits)
    } catch (e) {
      if (!(e instanceof Wire.WireError)) throw e
      const reason = e.reason._tag === "MetadataLimit"
        ? new Errors.RequestLimit({ error: e })
        : new Errors.MalformedRequest({ error: e })
      suspended = Effect.as(report(reason), Response.error(reason.message))
      return undefined
    }
    if (options.requestMetrics) countCode(request.code)
    const handler = table.get(request.code)
    if (handler === undefined) return unknownCommand(request.code)
    let effect: Effect.Effect<Handlers.Result, unknown>
    try {
      effect = handler(request)
    } catch (defect) {
      effect = Effect.die(defect)
    }
    if (!options.spans) {
      // Prototype checks: `Exit.isExit` / `Effect.isEffect` are `in` checks,
      // megamorphic across the shapes handlers return (~40 ns a frame).
      const proto = protoOf(effect)
      if (proto === successProto) {
        if (options.requestMetrics) handlerSeconds.updateUnsafe(0, deps.context)
        return succeeded(request, (effect as Exit.Success<Handlers.Result>).value)
      }
      if (proto === failureProto) {
        if (options.requestMetrics) handlerSeconds.updateUnsafe(0, deps.context)
        return settled(onHandlerFailure(request)((effect as Exit.Failure<never, unknown>).cause))
      }
    }
    // A JavaScript handler may return anything: not an Effect is a defect, not a crash.
    if (!Effect.isEffect(effect)) effect = Effect.die(Handlers.notAnEffect(request.code, effect))
    if (options.spans) {
      effect = requestSpan(effect, request)
      if (isExitFast(effect)) {
        return Exit.isSuccess(effect)
          ? succeeded(request, effect.value as Handlers.Result)
          : settled(onHandlerFailure(request)(effect.cause))
      }
    }
    suspended = Effect.matchCauseEffect(options.requestMetrics ? timed(effect) : effect, {
      onFailure: (cause) => asEffect(onHandlerFailure(request)(cause)),
      onSuccess: (result) => {
        const reply = succeeded(request, result)
        if (reply !== undefined) return Effect.succeed(reply)
        const effect = suspended!
        suspended = undefined
        return effect
      }
    })
    return undefined
  }

  // A reply, or `undefined` with the Effect that makes it in `suspended`
  // (only the rare paths: defects, interruptions).
  const settled = (reply: Response.Response | Effect.Effect<Response.Response>): Response.Response | undefined => {
    if (!Effect.isEffect(reply)) return reply
    suspended = reply
    return undefined
  }
  const asEffect = (reply: Response.Response | Effect.Effect<Response.Response>): Effect.Effect<Response.Response> =>
    Effect.isEffect(reply) ? reply : Effect.succeed(reply)

  // A success that is not a Response, bytes, a string or void is a handler defect.
  const succeeded = (request: Request.Request, result: Handlers.Result): Response.Response | undefined =>
    Handlers.toResponse(result)
      ?? settled(onHandlerFailure(request)(Cause.die(Handlers.invalidSuccess(request.code, result))))

  const handleFrameEffect = (bytes: Uint8Array, start: number, end: number): Effect.Effect<Response.Response> => {
    const reply = handleFrame(bytes, start, end)
    if (reply !== undefined) return Effect.succeed(reply)
    const effect = suspended!
    suspended = undefined
    return effect
  }

  // The hot loop: every complete frame of a batch, one write. Replies whose
  // predecessors are all answered never wait for a slower handler after them:
  // when a handler suspends, the replies before it are written first (the
  // write order is the request order either way). A batch whose handlers all
  // complete synchronously is still one write.
  //
  // The batch is a resumable state machine (`step`), so that it can run in
  // two places. On a socket with the `DirectRead` capability (`NodeStream`)
  // the socket's data handler runs it synchronously, with no fiber hop, while
  // the connection's fiber stays parked in `pull`; only what really needs the
  // fiber (a handler that is not a completed Effect, a write waiting for
  // drain, the fairness yield, `concurrency > 1`, the end of the connection)
  // wakes it, and it carries on from the same state. On any other socket the
  // fiber pulls each batch and runs `step` itself.
  const loop = Effect.fnUntraced(function*(conn: Connection, socket: Socket.Socket) {
    const clock = yield* Clock.Clock
    const context = yield* Effect.context<never>()
    const pull = yield* Socket.readerBytes(socket)
    const writer = yield* socket.writer
    const decoder = new Wire.FrameDecoder(options.maxFrameSize)
    // The frames of a pass: body `i` is `sources[i]` from `ranges[2i]` to
    // `ranges[2i + 1]`, decoded in place (no view per frame).
    const ranges: Array<number> = []
    const sources: Array<Uint8Array> = []
    let replies: Array<Response.Response> = []
    const timed = options.timeout > 0 || options.idleTimeout > 0
    const runFork = Effect.runForkWith(context)
    conn.closeNow = () => {
      const closed = writer.write(new Socket.CloseEvent(1000))
      if (!isExitFast(closed)) runFork(Effect.ignore(closed))
    }
    // Bytes decoded plus frames answered (weighted) since the event loop last
    // had a turn: since the loop yielded, or since a pull had to wait for data
    // (a microtask queued before the pull runs only if the pull suspends).
    let work = 0
    let pullWaited = false
    const markWaited = () => {
      pullWaited = true
    }

    // Set while the loop is suspended in a handler of a sequential batch. A
    // handler that is not an already completed Effect may suspend; the loop
    // then queues `flushReady` as a microtask, which runs only once the fiber
    // has suspended (or finished the batch), so a handler that completes
    // synchronously costs no write.
    let inHandler = false
    let flushQueued = false
    const flushReady = () => {
      flushQueued = false
      if (!inHandler || replies.length === 0) return
      const bytes = Wire.encodeResponses(replies)
      replies = []
      const written = writer.write(bytes)
      // Failures surface at the loop's next write; a pending drain just completes.
      if (!isExitFast(written)) {
        holdUnsent(conn, bytes.length)
        runFork(Effect.ensuring(Effect.ignore(written), Effect.sync(() => holdUnsent(conn, -bytes.length))))
      }
    }

    // Interrupted (shutdownTimeout) while replies wait for a handler's successor
    // or for the end of the batch: they are done, so they are written; the
    // writer's release then ends the socket after them. Never waits for a drain.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (replies.length === 0) return
        const written = writer.write(Wire.encodeResponses(replies))
        replies = []
        if (!isExitFast(written)) runFork(Effect.ignore(written))
      })
    )

    // The batch in progress.
    let chunks = noChunks
    let chunkIndex = 0
    let chunkOffset = 0
    let frameIndex = 0
    let now = 0
    let batchBytes = 0
    let completing = 0
    let framing: Wire.WireError | undefined
    let refused: Errors.BufferLimit | undefined
    let anyFrames = false
    let waited = false
    let last = false
    let stage: Stage = Decode
    // What the fiber must run for `Suspend` (a handler) or `Drain` (a write).
    let pending: Effect.Effect<any, any> | undefined
    let pendingBytes = 0
    let pendingLate = false

    const begin = (batch: ReadonlyArray<Uint8Array>) => {
      conn.phase = Handling
      // Reading the clock is a syscall on some VMs (13% of the loop's time on
      // ours): read it only with timeouts on, once per batch, plus once more
      // after the write when a handler had to wait.
      now = timed ? clock.currentTimeMillisUnsafe() : 0
      chunks = batch
      chunkIndex = 0
      chunkOffset = 0
      batchBytes = 0
      for (let i = 0; i < batch.length; i++) batchBytes += batch[i]!.length
      // The batch is charged to maxBufferedBytes (with the reservation of a
      // frame it may complete) until it is answered.
      completing = conn.reserved
      hold(conn, batchBytes + completing)
      work += batchBytes
      framing = undefined
      refused = undefined
      anyFrames = false
      waited = false
      last = false
      stage = Decode
    }

    // Writes `replies`; `Drain` when the socket has not taken them yet.
    const send = (late: boolean): Step => {
      conn.writeStartedAt = late ? clock.currentTimeMillisUnsafe() : now
      conn.phase = Writing
      const bytes = Wire.encodeResponses(replies)
      replies = []
      const written = writer.write(bytes)
      if (isExitFast(written)) {
        if (written._tag === "Failure") {
          pending = written
          pendingBytes = 0
          pendingLate = late
          return Drain
        }
        wrote(late)
        return Continue
      }
      // Replies the socket has not taken yet count against maxBufferedBytes
      // until it drains (an interrupted wait is released with the connection).
      holdUnsent(conn, bytes.length)
      pending = written
      pendingBytes = bytes.length
      pendingLate = late
      return Drain
    }
    const wrote = (late: boolean) => {
      // After a slow handler the idle clock restarts from the reply, not the request.
      if (late) conn.lastActivity = clock.currentTimeMillisUnsafe()
      conn.phase = Handling
    }
    const answered = (reply: Response.Response): Step => {
      replies.push(reply)
      // A flood of tiny requests is answered in slices, each drained
      // before the next is made: replies in memory stay bounded per connection.
      return replies.length === maxRepliesPerWrite ? send(waited && timed) : Continue
    }

    // Runs the batch until it is done or needs the fiber.
    const step = (): Step => {
      while (true) {
        switch (stage) {
          case Decode: {
            // Decoded in passes of at most maxFramesPerPass frames (the decoder
            // stops at a frame boundary, the rest of the chunk waits), each
            // answered before the next is decoded: a batch of tiny frames never
            // holds more than that many views.
            while (chunkIndex < chunks.length && framing === undefined && sources.length < maxFramesPerPass) {
              const chunk = chunks[chunkIndex]!
              const rest = chunkOffset === 0 ? chunk : chunk.subarray(chunkOffset)
              framing = decoder.pushRanges(rest, ranges, maxFramesPerPass)
              for (let i = sources.length * 2; i < ranges.length; i += 2) {
                if (ranges[i]! >= 0) sources.push(rest)
                else {
                  // A frame completed from earlier chunks: its copy, from 0.
                  sources.push(decoder.joined)
                  decoder.joined = Message.emptyPayload
                  ranges[i] = 0
                }
              }
              if (decoder.consumed === rest.length) {
                chunkIndex++
                chunkOffset = 0
              } else chunkOffset += decoder.consumed
            }
            last = chunkIndex === chunks.length || framing !== undefined
            if (sources.length > 0) {
              anyFrames = true
              conn.lastActivity = now
              requestsRead.update(sources.length, deps.context)
            }
            if (last) reserve()
            frameIndex = 0
            if (options.concurrency !== 1 && sources.length > 0) {
              waited = true
              stage = Passed
              return Concurrent
            }
            stage = Handle
            continue
          }
          case Handle: {
            while (frameIndex < sources.length) {
              const i = frameIndex++
              const reply = handleFrame(sources[i]!, ranges[2 * i]!, ranges[2 * i + 1]!)
              if (reply === undefined) {
                waited = true
                pending = suspended
                suspended = undefined
                return Suspend
              }
              const next = answered(reply)
              if (next !== Continue) return next
            }
            stage = Passed
            continue
          }
          case Passed: {
            // Fairness: after a budget of work, let the event loop serve other
            // connections before this one decodes more (a flooding peer whose
            // data is always queued would otherwise never yield).
            work += sources.length * frameWork
            sources.length = 0
            ranges.length = 0
            stage = last ? Final : Decode
            if (work >= yieldAfterWork) {
              work = 0
              return Yield
            }
            continue
          }
          case Final: {
            if (framing !== undefined) replies.push(Response.error(framing.message))
            else if (refused !== undefined) replies.push(Response.error(refused.message))
            stage = End
            if (replies.length > 0) {
              const next = send(waited && timed)
              if (next !== Continue) return next
            }
            continue
          }
          default: {
            // Not kept while idle: a chunk is a view that can pin a larger buffer of the socket.
            chunks = noChunks
            if (framing !== undefined || refused !== undefined) return Finish
            // Between batches only the incomplete frame's reservation stays charged.
            hold(conn, conn.reserved)
            return Done
          }
        }
      }
    }

    // After the last pass: the incomplete frame's declared size is reserved. A
    // new frame over smallFrame that does not fit is refused: the frames
    // before it are answered, then the connection closes.
    const reserve = () => {
      const size = decoder.pendingFrameSize
      if (
        size > smallFrame && (anyFrames || completing === 0)
        && buffers.held - conn.held + batchBytes + completing + size > maxBufferedBytes
      ) {
        refused = new Errors.BufferLimit({ size, limit: maxBufferedBytes })
      }
      conn.reserved = refused === undefined ? size : 0
      hold(conn, batchBytes + completing + conn.reserved)
      // A frame left incomplete started in this batch unless it was already pending with none completed.
      conn.frameStartedAt = decoder.pending === 0
        ? -1
        : anyFrames || conn.frameStartedAt < 0
        ? now
        : conn.frameStartedAt
    }

    // Runs in the fiber what `step` could not do synchronously, until the batch is done.
    const drive = function*(next: Step) {
      while (true) {
        switch (next) {
          case Done:
          case Finish:
            return next
          case Suspend: {
            if (replies.length > 0 && !flushQueued) {
              flushQueued = true
              queueMicrotask(flushReady)
            }
            const handler = pending as Effect.Effect<Response.Response>
            pending = undefined
            inHandler = true
            const response = yield* handler
            inHandler = false
            next = answered(response)
            if (next !== Continue) continue
            break
          }
          case Drain:
            yield* drainPending()
            break
          case Yield:
            yield* Effect.yieldNow
            break
          case Concurrent:
            yield* handleConcurrently()
            break
        }
        next = step()
      }
    }

    // Waits for the write `send` left pending.
    const drainPending = function*() {
      const written = pending as Effect.Effect<void, Socket.SocketError>
      pending = undefined
      yield* written
      holdUnsent(conn, -pendingBytes)
      wrote(pendingLate)
    }

    // `concurrency > 1`: up to that many handlers at once; each reply is
    // written as soon as every reply before it is ready.
    const handleConcurrently = function*() {
      const n = sources.length
      const results: Array<Response.Response | undefined> = Array.from({ length: n })
      let next = 0
      let wake: Deferred.Deferred<void> | undefined
      const wakeUp = () => {
        const w = wake
        wake = undefined
        if (w !== undefined) Deferred.doneUnsafe(w, Exit.void)
      }
      const work = Effect.onExit(
        Effect.forEach(
          sources,
          (source, i) =>
            Effect.map(handleFrameEffect(source, ranges[2 * i]!, ranges[2 * i + 1]!), (reply) => {
              results[i] = reply
              if (i === next) wakeUp()
            }),
          { concurrency: options.concurrency, discard: true }
        ),
        () => Effect.sync(wakeUp)
      )
      const fiber = yield* Effect.forkChild(work, { startImmediately: true })
      while (true) {
        while (next < n && results[next] !== undefined) {
          replies.push(results[next]!)
          results[next++] = undefined
        }
        if (next === n) break
        if (replies.length > 0) {
          if (send(timed) === Drain) yield* drainPending()
          continue // more may be ready after the write
        }
        const exit = fiber.pollUnsafe()
        if (exit !== undefined && Exit.isFailure(exit)) return yield* exit
        wake = Deferred.makeUnsafe<void>()
        // Interrupted at the deadline: the ready prefix joins `replies`, which the
        // loop's finalizer writes.
        yield* Effect.onInterrupt(Deferred.await(wake), () =>
          Effect.sync(() => {
            while (next < n && results[next] !== undefined) replies.push(results[next++]!)
          }))
      }
    }

    // The direct path: called by the socket's data handler while the fiber is
    // parked in `pull` with nothing queued. `undefined`: the batch is done and
    // the fiber stays parked; `resumed`: the fiber takes over the batch.
    let handedOver: Step = Done
    const direct = (chunk: Uint8Array): ReadonlyArray<Uint8Array> | undefined => {
      // Draining: the fiber decides, as without the direct path (it may be
      // interrupted already, and then the chunk is never read).
      if (deps.isDraining()) return [chunk]
      // The data came from the event loop: it had a turn.
      work = 0
      begin([chunk])
      let next: Step
      try {
        next = step()
      } catch (defect) {
        pending = Effect.die(defect)
        next = Drain
      }
      if (next === Done && !deps.isDraining()) {
        conn.phase = Reading
        return undefined
      }
      handedOver = next
      return resumed
    }
    const directRead = (socket as Partial<DirectRead>)[DirectReadTypeId]
    if (directRead !== undefined && conn.fiber !== undefined) directRead.direct = direct

    while (true) {
      conn.phase = Reading
      pullWaited = false
      queueMicrotask(markWaited)
      const batch = yield* pull
      let next: Step
      if (batch === resumed) next = handedOver
      else {
        if (pullWaited) work = 0
        begin(batch)
        next = step()
      }
      if ((yield* drive(next)) === Finish) {
        if (framing !== undefined) return yield* report(new Errors.FrameError({ error: framing }))
        return yield* report(refused!)
      }
      if (deps.isDraining()) return
    }
  })

  // One server-wide sweeper for every deadline, rather than a watchdog fiber
  // raced against each connection: it sleeps (on `Clock`, so `TestClock`
  // drives it) until the earliest deadline of any connection, or for the
  // shortest timeout, since a deadline that starts later is at least that far
  // off. Deadlines only move later while it sleeps. An expired connection is
  // destroyed (rather than ended: a peer that does not read would keep an
  // ended socket open), its fiber interrupted, and the timeout reported.
  const { idleTimeout, timeout } = options
  const runForkServer = Effect.runForkWith(deps.context)
  let expiredKind: "Idle" | "Read" | "Write" = "Idle"
  const deadlineOf = (conn: Connection): number => {
    if (conn.phase === Reading) {
      let deadline = Infinity
      if (idleTimeout > 0) {
        deadline = conn.lastActivity + idleTimeout
        expiredKind = "Idle"
      }
      if (timeout > 0 && conn.frameStartedAt >= 0 && conn.frameStartedAt + timeout < deadline) {
        deadline = conn.frameStartedAt + timeout
        expiredKind = "Read"
      }
      return deadline
    }
    if (conn.phase === Writing && timeout > 0) {
      expiredKind = "Write"
      return conn.writeStartedAt + timeout
    }
    return Infinity
  }
  const expire = (conn: Connection, kind: "Idle" | "Read" | "Write") => {
    const error = new Errors.Timeout({ kind, after: Duration.millis(kind === "Idle" ? idleTimeout : timeout) })
    conn.timedOut = error
    // Destroyed before the interruption runs the writer's release, which would end it gracefully.
    conn.closeNow?.()
    conn.interrupt()
    runForkServer(report(error))
  }
  const sweeper = Effect.fnUntraced(function*(connections: Iterable<Connection>) {
    if (idleTimeout === 0 && timeout === 0) return
    const clock = yield* Clock.Clock
    const recheck = Math.min(idleTimeout || Infinity, timeout || Infinity)
    while (true) {
      const now = clock.currentTimeMillisUnsafe()
      let next = now + recheck
      for (const conn of connections) {
        if (conn.timedOut !== undefined) continue
        const deadline = deadlineOf(conn)
        if (deadline <= now) expire(conn, expiredKind)
        else if (deadline < next) next = deadline
      }
      yield* Effect.sleep(next - now)
    }
  })

  const serveConnection = Effect.fnUntraced(function*(socket: Socket.Socket) {
    const clock = yield* Clock.Clock
    const context = yield* Effect.context<never>()
    const conn = new Connection(clock.currentTimeMillisUnsafe())
    const admitted = deps.admit(conn)
    if (admitted !== "admitted") {
      // The reader must be opened for the socket to be closed when the scope ends.
      yield* socket.reader
      if (admitted === "full") yield* report(new Errors.ConnectionLimit({ limit: options.maxConnections }))
      return
    }
    conn.fiber = yield* Effect.withFiber((fiber) => Effect.succeed(fiber))
    connectionsOpen.updateUnsafe(deps.open(), context)
    connectionsTotal.updateUnsafe(1, context)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        release(conn)
        deps.onClosed(conn)
        connectionsOpen.updateUnsafe(deps.open(), context)
      })
    )
    if (options.tcpKeepAlive > 0) yield* deps.setup.apply({ tcpKeepAlive: options.tcpKeepAlive })
    const outcome = yield* Effect.result(loop(conn, socket))
    // Timed out: the sweeper closed it and reported (the socket may fail first).
    if (outcome._tag === "Success" || conn.timedOut !== undefined) return
    const error = outcome.failure
    // EOF (close code 1000) is how a connection normally ends.
    if (error.reason._tag === "SocketCloseError" && error.reason.code === 1000) return
    yield* report(new Errors.SocketFailure({ error }))
  })

  return {
    // The handlers' services are provided once per connection, not per request.
    serve: (socket: Socket.Socket) =>
      Effect.updateContext(
        Effect.scoped(serveConnection(socket)),
        (context: Context.Context<never>) => Context.merge(context, handlers.context)
      ),
    /** Runs the deadline sweeper over the server's connections (returns at once with no timeout set). */
    sweeper
  }
}
