/**
 * A waiting call on a client connection, and the failures a closing
 * connection hands to its calls. Internal to `Client`.
 *
 * An entry lives in its connection's FIFO from the moment it is queued until
 * its reply is consumed or the connection closes, whether or not its caller
 * is still waiting: with no request ids, the reply of an abandoned call must
 * still be read (and dropped) so that the next reply reaches the next caller.
 *
 * @since 0.1.0
 * @internal
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Socket from "effect/socket/Socket"
import {
  ClientError,
  ConnectionClosed,
  PoolClosed,
  ProtocolError,
  type ProtocolLimit,
  RequestTimeout,
  RequestTooLarge
} from "./ClientError.ts"
import type * as Request from "./Request.ts"
import type * as Response from "./Response.ts"
import * as Wire from "./Wire.ts"

/** @internal */
export type Resume = (effect: Effect.Effect<any, ClientError>) => void

/**
 * One waiting call: one request (`call`) or several (`pipeline`), answered
 * together once all their replies are in.
 *
 * @internal
 */
export class Entry {
  resume: Resume | undefined
  written = false
  /** Replies read so far (a pipeline's), and the first failure among them. */
  received = 0
  error: ClientError | undefined
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

/**
 * Errors handed to calls when a connection closes: one for calls already
 * written (may have been processed), one for calls still queued (not sent),
 * and optionally a specific one for the call that caused the close.
 *
 * @internal
 */
export interface Failure {
  readonly written: ClientError
  readonly unwritten: ClientError
  readonly culprit?: Entry | undefined
  readonly culpritError?: ClientError | undefined
}

/** @internal */
export const failAll = (entries: ReadonlyArray<Entry>, failure: Failure): void => {
  const written = Exit.fail(failure.written)
  const unwritten = Exit.fail(failure.unwritten)
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!
    if (entry === failure.culprit) entry.complete(Exit.fail(failure.culpritError!))
    else entry.complete(entry.written ? written : unwritten)
  }
}

/** A close whose calls all fail with `ConnectionClosed` and `detail`. @internal */
export const closedFailure = (address: string, detail: string, cause?: unknown): Failure => ({
  written: new ClientError({ reason: new ConnectionClosed({ address, detail, cause, maybeProcessed: true }) }),
  unwritten: new ClientError({ reason: new ConnectionClosed({ address, detail, cause, maybeProcessed: false }) })
})

const socketDetail = (error: Socket.SocketError, during: "read" | "write"): string => {
  const reason = error.reason
  if (reason._tag === "SocketCloseError") return reason.code === 1000 ? "closed by the server" : "connection reset"
  const cause = "cause" in reason ? reason.cause : undefined
  const text = cause instanceof Error && cause.message.length > 0 ? cause.message : reason.message
  return `${during} failed: ${text}`
}

const limitName = (cause: Wire.WireError | undefined): ProtocolLimit | undefined => {
  const reason = cause?.reason
  if (reason?._tag === "FrameTooLarge") return "maxFrameSize"
  if (reason?._tag === "MetadataLimit") return reason.limit === "entries" ? "maxMetadataEntries" : "maxMetadataBytes"
  return undefined
}

/**
 * What a reply that failed to decode does: over a metadata limit, decoding
 * stopped early but the frame was read whole, so order holds and only its
 * call fails (a `ProtocolError` naming the limit); malformed, the connection
 * closes (a `Failure`).
 *
 * @internal
 */
export const replyFailure = (address: string, error: unknown): ClientError | Failure => {
  if (!(error instanceof Wire.WireError)) throw error
  if (error.reason._tag !== "MetadataLimit") return protocolFailure(address, `malformed reply: ${error.message}`, error)
  return new ClientError({
    reason: new ProtocolError({
      address,
      detail: `reply over a limit: ${error.message}`,
      limit: limitName(error),
      cause: error,
      maybeProcessed: true
    })
  })
}

/** The client closed: calls fail with `PoolClosed`. @internal */
export const poolClosedFailure = (address: string): Failure => ({
  written: new ClientError({ reason: new PoolClosed({ address, maybeProcessed: true }) }),
  unwritten: new ClientError({ reason: new PoolClosed({ address, maybeProcessed: false }) })
})

/** A read or write error. @internal */
export const socketFailure = (address: string, error: Socket.SocketError, during: "read" | "write"): Failure =>
  closedFailure(address, socketDetail(error, during), error)

/** A reply that cannot be a reply: written calls get `ProtocolError`. @internal */
export const protocolFailure = (address: string, detail: string, cause: Wire.WireError | undefined): Failure => ({
  written: new ClientError({
    reason: new ProtocolError({ address, detail, limit: limitName(cause), cause, maybeProcessed: true })
  }),
  unwritten: new ClientError({
    reason: new ConnectionClosed({ address, detail: `closed after a protocol error: ${detail}`, maybeProcessed: false })
  })
})

/** `culprit` got no reply in time: it gets `RequestTimeout`, the others `ConnectionClosed`. @internal */
export const timeoutFailure = (
  address: string,
  timeout: Duration.Duration,
  format: string,
  culprit: Entry
): Failure => ({
  ...closedFailure(address, `closed after a request got no reply within ${format}`),
  culprit,
  culpritError: new ClientError({
    reason: new RequestTimeout({ address, timeout, maybeProcessed: culprit.written })
  })
})

const batch: Array<Request.Request> = []

const encode = (entries: ReadonlyArray<Entry>): Uint8Array => {
  // A lone pipeline (the common batch) is encoded from its own array.
  if (entries.length === 1 && entries[0]!.requests !== undefined) return Wire.encodeRequests(entries[0]!.requests)
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!
    if (entry.request !== undefined) batch.push(entry.request)
    else for (let j = 0; j < entry.requests!.length; j++) batch.push(entry.requests![j]!)
  }
  const bytes = Wire.encodeRequests(batch)
  batch.length = 0
  return bytes
}

/**
 * Encodes the requests of `entries` into one buffer. An entry with a request
 * over `limit` fails with `RequestTooLarge` (unsent) and is removed from
 * `entries`, in place; `undefined` when none is left.
 *
 * @internal
 */
export const encodeEntries = (entries: Array<Entry>, limit: number, address: string): Uint8Array | undefined => {
  const bytes = encode(entries)
  // Frames of a batch within the limit are each within it; only a larger
  // batch needs each request measured.
  if (bytes.length <= limit) return bytes
  let kept = 0
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!
    const requests = entry.request !== undefined ? [entry.request] : entry.requests!
    let size = 0
    for (let j = 0; j < requests.length && size <= limit; j++) size = Wire.requestBodySize(requests[j]!)
    if (size > limit) {
      entry.complete(Exit.fail(
        new ClientError({ reason: new RequestTooLarge({ address, size, limit, maybeProcessed: false }) })
      ))
    } else entries[kept++] = entry
  }
  entries.length = kept
  return kept > 0 ? encode(entries) : undefined
}
