/**
 * The server's one error, `ServerError`, and its reasons. Re-exported by
 * `Server`.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"
import type * as Socket from "effect/socket/Socket"
import { formatDuration } from "./Options.ts"
import type * as Wire from "./Wire.ts"

// -----------------------------------------------------------------------------

/**
 * A broken frame (length varint over 10 bytes, declared length over `maxFrameSize`): one error reply, then close.
 *
 * @since 0.1.0
 * @category errors
 */
export class FrameError extends Data.TaggedError("FrameError")<{ readonly error: Wire.WireError }> {
  override get message(): string {
    return `framing error, connection closed: ${this.error.message}`
  }
}

/**
 * A frame whose body is not a valid `Request`: an error reply; the connection stays usable.
 *
 * @since 0.1.0
 * @category errors
 */
export class MalformedRequest extends Data.TaggedError("MalformedRequest")<{ readonly error: Wire.WireError }> {
  override get message(): string {
    return `malformed request: ${this.error.message}`
  }
}

/**
 * A request went past a decode limit (`maxMetadataEntries`,
 * `maxMetadataBytes`): it was decoded no further and answered with this
 * message; the connection stays usable.
 *
 * @since 0.2.0
 * @category errors
 */
export class RequestLimit extends Data.TaggedError("RequestLimit")<{ readonly error: Wire.WireError }> {
  override get message(): string {
    return `request refused: ${this.error.message}`
  }
}

/**
 * A frame over 64 KiB arrived while the server-wide `maxBufferedBytes` was
 * in use by other frames and unsent replies: it was answered with this
 * message and its connection closed.
 *
 * @since 0.2.0
 * @category errors
 */
export class BufferLimit extends Data.TaggedError("BufferLimit")<{ readonly size: number; readonly limit: number }> {
  override get message(): string {
    return `frame of ${this.size} bytes refused: the server's buffers are full (maxBufferedBytes ${this.limit}), connection closed`
  }
}

/**
 * A handler threw, died or produced an invalid result: an `internal error` reply; the connection stays usable.
 *
 * @since 0.1.0
 * @category errors
 */
export class HandlerDefect extends Data.TaggedError("HandlerDefect")<{
  readonly code: number
  readonly cause: Cause.Cause<unknown>
}> {
  override get message(): string {
    return `handler for code ${this.code} died`
  }
}

/**
 * `idleTimeout` (`Idle`) or `timeout` (`Read`: a started frame, `Write`: a pending write) passed: the connection is destroyed.
 *
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends Data.TaggedError("Timeout")<{
  readonly kind: "Idle" | "Read" | "Write"
  readonly after: Duration.Duration
}> {
  override get message(): string {
    const what = this.kind === "Idle" ? "no request" : this.kind === "Read" ? "incomplete frame" : "write not drained"
    return `${what} after ${formatDuration(this.after)}, connection closed`
  }
}

/**
 * A connection over `maxConnections`: closed on accept.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionLimit extends Data.TaggedError("ConnectionLimit")<{ readonly limit: number }> {
  override get message(): string {
    return `connection refused: ${this.limit} connections already open`
  }
}

/**
 * The socket failed (reset, write error, ...): the connection is closed.
 *
 * @since 0.1.0
 * @category errors
 */
export class SocketFailure extends Data.TaggedError("SocketFailure")<{ readonly error: Socket.SocketError }> {
  override get message(): string {
    return `socket error: ${this.error.message}`
  }
}

/**
 * A bad server option: building the layer fails.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOption extends Data.TaggedError("InvalidOption")<{
  readonly option: string
  readonly value: unknown
  readonly expected: string
}> {
  override get message(): string {
    return `invalid server option ${this.option}: expected ${this.expected}, got ${String(this.value)}`
  }
}

const TypeId = "~quasizero/ServerError"

/**
 * Why a connection misbehaved or the server could not start.
 *
 * @since 0.1.0
 * @category errors
 */
export type ServerErrorReason =
  | FrameError
  | MalformedRequest
  | RequestLimit
  | BufferLimit
  | HandlerDefect
  | Timeout
  | ConnectionLimit
  | SocketFailure
  | InvalidOption

/**
 * The server's one error. Connection-level errors go to `onError` (and the
 * debug log); `InvalidOption` fails building the layer.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "quasizero"
 * const onError = (e: Server.ServerError) =>
 *   e.reason._tag === "Timeout" ? Effect.logInfo(e.message) : Effect.void
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerError extends Data.TaggedError("ServerError")<{ readonly reason: ServerErrorReason }> {
  constructor(props: { readonly reason: ServerErrorReason }) {
    const cause = causeOf(props.reason)
    super(cause === undefined ? props : ({ ...props, cause } as { readonly reason: ServerErrorReason }))
  }
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  override get message(): string {
    return this.reason.message
  }
}

// The error under a reason, forwarded as the standard `cause` (as ClientError does).
const causeOf = (reason: ServerErrorReason): unknown => {
  switch (reason._tag) {
    case "FrameError":
    case "MalformedRequest":
    case "RequestLimit":
    case "SocketFailure":
      return reason.error
    case "HandlerDefect":
      return Cause.squash(reason.cause)
    default:
      return undefined
  }
}

/**
 * `true` for a `ServerError`.
 *
 * @example
 * ```ts
 * import { Server } from "quasizero"
 * Server.isServerError(new Error("x")) // false
 * ```
 *
 * @since 0.1.0
 * @category guards
 */
export const isServerError = (u: unknown): u is ServerError => Predicate.hasProperty(u, TypeId)
