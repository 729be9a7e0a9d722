/**
 * One server connection: the read → handle → write loop and its watchdog.
 * Internal to `Server`.
 *
 * The loop pulls a batch of chunks, decodes every complete frame in place,
 * runs the handlers (in order, or `concurrency` at a time), and sends all the
 * replies of the batch with one write. It does not pull again until that write
 * has drained, so a peer that stops reading stops being read: its memory is
 * bounded by one batch.
 *
 * Timeouts use one watchdog fiber per connection that compares deadlines with
 * `Clock` — never a timer per request — so `TestClock` drives them.
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

  const onHandlerFailure = (request: Request.Request) => (cause: Cause.Cause<unknown>) => {
    // Interrupted at shutdown: invent no reply; the connection closes.
    if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
    if (Cause.hasFails(cause) && !Cause.hasDies(cause)) {
      const error = Cause.findErrorOption(cause)
      if (error._tag === "Some") return Effect.succeed(Handlers.failureResponse(handlers, error.value))
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
  const handleFrame = (body: Uint8Array): Response.Response | Effect.Effect<Response.Response> => {
    let request: Request.Request
    try {
      request = Wire.decodeRequestUnsafe(body, decodeLimits)
    } catch (e) {
      if (!(e instanceof Wire.WireError)) throw e
      const reason = e.reason._tag === "MetadataLimit"
        ? new Errors.RequestLimit({ error: e })
        : new Errors.MalformedRequest({ error: e })
      return Effect.as(report(reason), Response.error(reason.message))
    }
    if (options.requestMetrics) countCode(request.code)
    const handler = table.get(request.code)
    if (handler === undefined) return unknownCommand(request.code)
    let effect: Effect.Effect<Handlers.Result, unknown>
    try {
      effect = handler(request)
      // A JavaScript handler may return anything: not an Effect is a defect, not a crash.
      if (!Effect.isEffect(effect)) effect = Effect.die(Handlers.notAnEffect(request.code, effect))
    } catch (defect) {
      effect = Effect.die(defect)
    }
    if (options.spans) {
      effect = requestSpan(effect, request)
    } else if (Exit.isExit(effect)) {
      if (options.requestMetrics) handlerSeconds.updateUnsafe(0, deps.context)
      return Exit.isSuccess(effect)
        ? succeeded(request, effect.value as Handlers.Result)
        : onHandlerFailure(request)(effect.cause)
    }
    return Effect.matchCauseEffect(options.requestMetrics ? timed(effect) : effect, {
      onFailure: onHandlerFailure(request),
      onSuccess: (result) => {
        const reply = succeeded(request, result)
        return Effect.isEffect(reply) ? reply : Effect.succeed(reply)
      }
    })
  }

  // A success that is not a Response, bytes, a string or void is a handler defect.
  const succeeded = (
    request: Request.Request,
    result: Handlers.Result
  ): Response.Response | Effect.Effect<Response.Response> =>
    Handlers.toResponse(result) ?? onHandlerFailure(request)(Cause.die(Handlers.invalidSuccess(request.code, result)))

  const handleFrameEffect = (body: Uint8Array): Effect.Effect<Response.Response> => {
    const reply = handleFrame(body)
    return Effect.isEffect(reply) ? reply : Effect.succeed(reply)
  }

  // The hot loop: one pull, every complete frame, one write. Replies whose
  // predecessors are all answered never wait for a slower handler after them:
  // when a handler suspends, the replies before it are written first (the
  // write order is the request order either way). A batch whose handlers all
  // complete synchronously is still one write.
  const loop = Effect.fnUntraced(function*(conn: Connection, socket: Socket.Socket) {
    const clock = yield* Clock.Clock
    const context = yield* Effect.context<never>()
    const pull = yield* Socket.readerBytes(socket)
    const writer = yield* socket.writer
    const decoder = new Wire.FrameDecoder(options.maxFrameSize)
    const frames: Array<Uint8Array> = []
    let replies: Array<Response.Response> = []
    const timed = options.timeout > 0 || options.idleTimeout > 0
    const runFork = Effect.runForkWith(context)
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
      if (!Exit.isExit(written)) {
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
        if (!Exit.isExit(written)) runFork(Effect.ignore(written))
      })
    )

    // Writes `replies` and waits for the socket to take them.
    const send = function*(late: boolean, now: number) {
      conn.writeStartedAt = late ? clock.currentTimeMillisUnsafe() : now
      conn.phase = Writing
      const bytes = Wire.encodeResponses(replies)
      replies = []
      const written = writer.write(bytes)
      if (!Exit.isExit(written)) {
        // Replies the socket has not taken yet count against maxBufferedBytes
        // until it drains (an interrupted wait is released with the connection).
        holdUnsent(conn, bytes.length)
        yield* written
        holdUnsent(conn, -bytes.length)
      } else yield* written
      // After a slow handler the idle clock restarts from the reply, not the request.
      if (late) conn.lastActivity = clock.currentTimeMillisUnsafe()
      conn.phase = Handling
    }

    // `concurrency > 1`: up to that many handlers at once; each reply is
    // written as soon as every reply before it is ready.
    const handleConcurrently = function*(now: number) {
      const n = frames.length
      const results: Array<Response.Response | undefined> = Array.from({ length: n })
      let next = 0
      let wake: Deferred.Deferred<void> | undefined
      const wakeUp = () => {
        const w = wake
        wake = undefined
        if (w !== undefined) Deferred.doneUnsafe(w, Exit.void)
      }
      const work = Effect.onExit(
        Effect.forEach(frames, (frame, i) =>
          Effect.map(handleFrameEffect(frame), (reply) => {
            results[i] = reply
            if (i === next) wakeUp()
          }), { concurrency: options.concurrency, discard: true }),
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
          yield* send(timed, now)
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

    while (true) {
      conn.phase = Reading
      pullWaited = false
      queueMicrotask(markWaited)
      const chunks = yield* pull
      if (pullWaited) work = 0
      conn.phase = Handling
      // Reading the clock is a syscall on some VMs (13% of the loop's time on
      // ours): read it only with timeouts on, once per batch, plus once more
      // after the write when a handler had to wait.
      const now = timed ? clock.currentTimeMillisUnsafe() : 0
      let batchBytes = 0
      for (let i = 0; i < chunks.length; i++) batchBytes += chunks[i]!.length
      // The batch is charged to maxBufferedBytes (with the reservation of a
      // frame it may complete) until it is answered.
      const completing = conn.reserved
      hold(conn, batchBytes + completing)
      work += batchBytes
      let framing: Wire.WireError | undefined
      let refused: Errors.BufferLimit | undefined
      let anyFrames = false
      let waited = false
      // Decoded in passes of at most maxFramesPerPass frames (the decoder stops
      // at a frame boundary, the rest of the chunk waits), each answered
      // before the next is decoded: a batch of tiny frames never holds more
      // than that many views.
      let chunkIndex = 0
      let chunkOffset = 0
      while (true) {
        while (chunkIndex < chunks.length && framing === undefined && frames.length < maxFramesPerPass) {
          const chunk = chunks[chunkIndex]!
          const rest = chunkOffset === 0 ? chunk : chunk.subarray(chunkOffset)
          framing = decoder.push(rest, frames, maxFramesPerPass)
          if (decoder.consumed === rest.length) {
            chunkIndex++
            chunkOffset = 0
          } else chunkOffset += decoder.consumed
        }
        const last = chunkIndex === chunks.length || framing !== undefined
        if (frames.length > 0) {
          anyFrames = true
          conn.lastActivity = now
          requestsTotal.updateUnsafe(frames.length, context)
        }
        if (last) {
          // The incomplete frame's declared size is reserved. A new frame over
          // smallFrame that does not fit is refused: the frames before it are
          // answered, then the connection closes.
          const reserve = decoder.pendingFrameSize
          if (
            reserve > smallFrame && (anyFrames || completing === 0)
            && buffers.held - conn.held + batchBytes + completing + reserve > maxBufferedBytes
          ) {
            refused = new Errors.BufferLimit({ size: reserve, limit: maxBufferedBytes })
          }
          conn.reserved = refused === undefined ? reserve : 0
          hold(conn, batchBytes + completing + conn.reserved)
          // A frame left incomplete started in this batch unless it was already pending with none completed.
          conn.frameStartedAt = decoder.pending === 0
            ? -1
            : anyFrames || conn.frameStartedAt < 0
            ? now
            : conn.frameStartedAt
        }
        if (options.concurrency === 1) {
          for (let i = 0; i < frames.length; i++) {
            const reply = handleFrame(frames[i]!)
            if (Effect.isEffect(reply)) {
              waited = true
              if (replies.length > 0 && !flushQueued) {
                flushQueued = true
                queueMicrotask(flushReady)
              }
              inHandler = true
              const response = yield* reply
              inHandler = false
              replies.push(response)
            } else replies.push(reply)
            // A flood of tiny requests is answered in slices, each drained
            // before the next is made: replies in memory stay bounded per connection.
            if (replies.length === maxRepliesPerWrite) yield* send(waited && timed, now)
          }
        } else if (frames.length > 0) {
          waited = true
          yield* handleConcurrently(now)
        }
        // Fairness: after a budget of work, let the event loop serve other
        // connections before this one decodes more (a flooding peer whose data
        // is always queued would otherwise never yield).
        work += frames.length * frameWork
        frames.length = 0
        if (work >= yieldAfterWork) {
          work = 0
          yield* Effect.yieldNow
        }
        if (last) break
      }
      if (framing !== undefined) replies.push(Response.error(framing.message))
      else if (refused !== undefined) replies.push(Response.error(refused.message))
      if (replies.length > 0) yield* send(waited && timed, now)
      if (framing !== undefined) return yield* report(new Errors.FrameError({ error: framing }))
      if (refused !== undefined) return yield* report(refused)
      // Between batches only the incomplete frame's reservation stays charged.
      hold(conn, conn.reserved)
      if (deps.isDraining()) return
    }
  })

  // Sleeps until the earliest deadline and fails when one has passed.
  const watchdog = Effect.fnUntraced(function*(conn: Connection) {
    const clock = yield* Clock.Clock
    const { idleTimeout, timeout } = options
    const recheck = Math.min(idleTimeout || Infinity, timeout || Infinity)
    while (true) {
      const now = clock.currentTimeMillisUnsafe()
      let next = now + recheck // a deadline that starts later is at least this far off
      if (conn.phase === Reading) {
        if (idleTimeout > 0) {
          const deadline = conn.lastActivity + idleTimeout
          if (now >= deadline) return new Errors.Timeout({ kind: "Idle", after: Duration.millis(idleTimeout) })
          next = Math.min(next, deadline)
        }
        if (timeout > 0 && conn.frameStartedAt >= 0) {
          const deadline = conn.frameStartedAt + timeout
          if (now >= deadline) return new Errors.Timeout({ kind: "Read", after: Duration.millis(timeout) })
          next = Math.min(next, deadline)
        }
      } else if (conn.phase === Writing && timeout > 0) {
        const deadline = conn.writeStartedAt + timeout
        if (now >= deadline) return new Errors.Timeout({ kind: "Write", after: Duration.millis(timeout) })
        next = Math.min(next, deadline)
      }
      yield* Effect.sleep(next - now)
    }
  })

  const closeNow = (socket: Socket.Socket) =>
    Effect.flatMap(socket.writer, (writer) => Effect.ignore(writer.write(new Socket.CloseEvent(1000))))

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
    const serving = options.timeout > 0 || options.idleTimeout > 0
      ? Effect.raceFirst(loop(conn, socket), Effect.flip(watchdog(conn)))
      : loop(conn, socket)
    const outcome = yield* Effect.result(serving)
    if (outcome._tag === "Success") return
    const error = outcome.failure
    if (error._tag === "Timeout") {
      // Destroy rather than end: a peer that does not read would keep an ended socket open.
      yield* closeNow(socket)
      return yield* report(error)
    }
    // EOF (close code 1000) is how a connection normally ends.
    if (error.reason._tag === "SocketCloseError" && error.reason.code === 1000) return
    yield* report(new Errors.SocketFailure({ error }))
  })

  // The handlers' services are provided once per connection, not per request.
  return (socket: Socket.Socket) =>
    Effect.updateContext(
      Effect.scoped(serveConnection(socket)),
      (context: Context.Context<never>) => Context.merge(context, handlers.context)
    )
}
