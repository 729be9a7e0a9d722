/**
 * The batch step machine of a server connection: every complete frame of a
 * read batch decoded in place, answered in order, and all the replies sent
 * with one write. Internal to `Server`; the state lives on `Connection`.
 *
 * A batch runs in two places. `step` is synchronous: on the Node listener
 * the socket's data handler runs it, with no fiber at all, and most batches
 * end there. Only what really needs a fiber (a handler that is not a
 * completed Effect, a write waiting for drain, the fairness yield,
 * `concurrency > 1`) makes `step` return, and `ServerDrive.drive` carries on
 * from the same state in a fiber. On any other `SocketServer` the
 * connection's fiber pulls each batch and runs the same two.
 *
 * Replies whose predecessors are all answered never wait for a slower
 * handler after them: when a handler suspends, the replies before it are
 * written first (the write order is the request order either way). The next
 * batch is not taken until the write has drained, so a peer that stops
 * reading stops being read: its memory is bounded by one batch.
 *
 * @since 0.1.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Message from "./Message.ts"
import * as Response from "./Response.ts"
import type { Connection } from "./ServerConnection.ts"
import * as Errors from "./ServerError.ts"
import { isExitFast } from "./ServerHandler.ts"
import * as Wire from "./Wire.ts"

/**
 * What a connection is doing:
 * - `Reading`: waiting for data; idle/read deadlines apply; shutdown may close it;
 * - `Handling`: running handlers; no deadline (a slow handler is not a slow peer);
 * - `Writing`: replies written, waiting for the socket to drain; the write deadline applies.
 */
export const Reading = 0
export const Handling = 1
export const Writing = 2

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

/** @internal */
export const noChunks: ReadonlyArray<Uint8Array> = []

// What `step` needs next: `Done` (the batch is answered), `Finish` (answered,
// then the connection ends on a framing error or a refused frame), `Suspend`
// (run the handler in `pending`), `Drain` (wait for the write in `pending`),
// `Yield` (the fairness yield), `Concurrent` (run the pass with
// `concurrency > 1`); `Continue` is internal to `step`.
/** @internal */
export type Step = 0 | 1 | 2 | 3 | 4 | 5 | 6
export const Done = 0
export const Finish = 1
export const Suspend = 2
export const Drain = 3
export const Yield = 4
export const Concurrent = 5
export const Continue = 6

// Where `step` is in the batch: decoding a pass, answering its frames, after
// the pass, the last write, the end.
/** @internal */
export type Stage = 0 | 1 | 2 | 3 | 4
export const Decode = 0
const Handle = 1
const Passed = 2
const Final = 3

// -----------------------------------------------------------------------------
// maxBufferedBytes accounting
// -----------------------------------------------------------------------------

// Sets what `conn` holds in frames to `bytes` (its unsent replies stay
// counted), in its own and the server-wide count.
const hold = (conn: Connection, bytes: number) => {
  if (conn.released) return
  const total = bytes + conn.unsent
  conn.shared.buffers.held += total - conn.held
  conn.held = total
}
// Counts `delta` more (or fewer) bytes of replies the socket has not taken.
/** @internal */
export const holdUnsent = (conn: Connection, delta: number) => {
  if (conn.released) return
  conn.unsent += delta
  conn.held += delta
  conn.shared.buffers.held += delta
}
/** A closed connection gives back everything; writes still draining change nothing after. */
export const release = (conn: Connection) => {
  if (conn.released) return
  conn.shared.buffers.held -= conn.held
  conn.held = 0
  conn.unsent = 0
  conn.released = true
}

// -----------------------------------------------------------------------------
// the synchronous part
// -----------------------------------------------------------------------------

/** Starts a batch of chunks. */
export const begin = (conn: Connection, batch: ReadonlyArray<Uint8Array>) => {
  conn.phase = Handling
  // Reading the clock is a syscall on some VMs (13% of the loop's time on
  // ours): read it only with timeouts on, once per batch, plus once more
  // after the write when a handler had to wait.
  conn.now = conn.shared.timed ? conn.shared.clock.currentTimeMillisUnsafe() : 0
  conn.chunks = batch
  conn.chunkIndex = 0
  conn.chunkOffset = 0
  let bytes = 0
  for (let i = 0; i < batch.length; i++) bytes += batch[i]!.length
  conn.batchBytes = bytes
  // The batch is charged to maxBufferedBytes (with the reservation of a
  // frame it may complete) until it is answered.
  conn.completing = conn.reserved
  hold(conn, bytes + conn.completing)
  conn.work += bytes
  conn.framing = undefined
  conn.refused = undefined
  conn.anyFrames = false
  conn.waited = false
  conn.last = false
  conn.stage = Decode
}

// Writes `replies`; `Drain` when the socket has not taken them yet.
/** @internal */
export const send = (conn: Connection, late: boolean): Step => {
  conn.writeStartedAt = late ? conn.shared.clock.currentTimeMillisUnsafe() : conn.now
  conn.phase = Writing
  const bytes = Wire.encodeResponses(conn.replies)
  conn.replies = []
  const written = conn.io.write(bytes)
  if (isExitFast(written)) {
    if (written._tag === "Failure") {
      conn.pending = written
      conn.pendingBytes = 0
      conn.pendingLate = late
      return Drain
    }
    wrote(conn, late)
    return Continue
  }
  // Replies the socket has not taken yet count against maxBufferedBytes
  // until it drains (an interrupted wait is released with the connection).
  holdUnsent(conn, bytes.length)
  conn.pending = written
  conn.pendingBytes = bytes.length
  conn.pendingLate = late
  return Drain
}
/** @internal */
export const wrote = (conn: Connection, late: boolean) => {
  // After a slow handler the idle clock restarts from the reply, not the request.
  if (late) conn.lastActivity = conn.shared.clock.currentTimeMillisUnsafe()
  conn.phase = Handling
}
/** @internal */
export const answered = (conn: Connection, reply: Response.Response): Step => {
  conn.replies.push(reply)
  // A flood of tiny requests is answered in slices, each drained
  // before the next is made: replies in memory stay bounded per connection.
  return conn.replies.length === maxRepliesPerWrite ? send(conn, conn.waited && conn.shared.timed) : Continue
}

/** Runs the batch until it is done or needs a fiber. */
export const step = (conn: Connection): Step => {
  const { frames } = conn.shared
  while (true) {
    switch (conn.stage) {
      case Decode: {
        // Decoded in passes of at most maxFramesPerPass frames (the decoder
        // stops at a frame boundary, the rest of the chunk waits), each
        // answered before the next is decoded: a batch of tiny frames never
        // holds more than that many views.
        const { chunks, decoder, ranges, sources } = conn
        while (conn.chunkIndex < chunks.length && conn.framing === undefined && sources.length < maxFramesPerPass) {
          const chunk = chunks[conn.chunkIndex]!
          const rest = conn.chunkOffset === 0 ? chunk : chunk.subarray(conn.chunkOffset)
          conn.framing = decoder.pushRanges(rest, ranges, maxFramesPerPass)
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
            conn.chunkIndex++
            conn.chunkOffset = 0
          } else conn.chunkOffset += decoder.consumed
        }
        conn.last = conn.chunkIndex === chunks.length || conn.framing !== undefined
        if (sources.length > 0) {
          conn.anyFrames = true
          conn.lastActivity = conn.now
          conn.shared.metrics.requests(sources.length)
        }
        if (conn.last) reserve(conn)
        conn.frameIndex = 0
        if (conn.shared.concurrency !== 1 && sources.length > 0) {
          conn.waited = true
          conn.stage = Passed
          return Concurrent
        }
        conn.stage = Handle
        continue
      }
      case Handle: {
        const { ranges, sources } = conn
        while (conn.frameIndex < sources.length) {
          const i = conn.frameIndex++
          const reply = frames.handle(sources[i]!, ranges[2 * i]!, ranges[2 * i + 1]!)
          if (reply === undefined) {
            conn.waited = true
            conn.pending = frames.take()
            return Suspend
          }
          // `answered`, inlined: it is per frame (~3% of one as a call).
          const replies = conn.replies
          replies.push(reply)
          if (replies.length === maxRepliesPerWrite) {
            const next = send(conn, conn.waited && conn.shared.timed)
            if (next !== Continue) return next
          }
        }
        conn.stage = Passed
        continue
      }
      case Passed: {
        // Fairness: after a budget of work, let the event loop serve other
        // connections before this one decodes more (a flooding peer whose
        // data is always queued would otherwise never yield).
        conn.work += conn.sources.length * frameWork
        conn.sources.length = 0
        conn.ranges.length = 0
        conn.stage = conn.last ? Final : Decode
        if (conn.work >= yieldAfterWork) {
          conn.work = 0
          return Yield
        }
        continue
      }
      case Final: {
        if (conn.framing !== undefined) conn.replies.push(Response.error(conn.framing.message))
        else if (conn.refused !== undefined) conn.replies.push(Response.error(conn.refused.message))
        conn.stage = 4
        if (conn.replies.length > 0) {
          const next = send(conn, conn.waited && conn.shared.timed)
          if (next !== Continue) return next
        }
        continue
      }
      default: {
        // Not kept while idle: a chunk is a view that can pin a larger buffer of the socket.
        conn.chunks = noChunks
        if (conn.framing !== undefined || conn.refused !== undefined) return Finish
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
const reserve = (conn: Connection) => {
  const { buffers, maxBufferedBytes } = conn.shared
  const size = conn.decoder.pendingFrameSize
  if (
    size > smallFrame && (conn.anyFrames || conn.completing === 0)
    && buffers.held - conn.held + conn.batchBytes + conn.completing + size > maxBufferedBytes
  ) {
    conn.refused = new Errors.BufferLimit({ size, limit: maxBufferedBytes })
  }
  conn.reserved = conn.refused === undefined ? size : 0
  hold(conn, conn.batchBytes + conn.completing + conn.reserved)
  // A frame left incomplete started in this batch unless it was already pending with none completed.
  conn.frameStartedAt = conn.decoder.pending === 0
    ? -1
    : conn.anyFrames || conn.frameStartedAt < 0
    ? conn.now
    : conn.frameStartedAt
}

/** The error that ends the connection after a `Finish`. */
export const finishReason = (conn: Connection): Errors.ServerErrorReason =>
  conn.framing !== undefined ? new Errors.FrameError({ error: conn.framing }) : conn.refused!

/**
 * Writes the replies a batch interrupted (shutdownTimeout, a deadline) had
 * ready: they are done, so they are sent before the socket closes. Never
 * waits for a drain.
 */
export const flushLeftovers = (conn: Connection) => {
  if (conn.replies.length === 0) return
  const written = conn.io.write(Wire.encodeResponses(conn.replies))
  conn.replies = []
  if (!isExitFast(written)) conn.shared.runFork(Effect.ignore(written))
}
