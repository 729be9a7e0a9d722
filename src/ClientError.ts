/**
 * The client's one error, `ClientError`, and its reasons. Re-exported by
 * `Client`.
 *
 * Every reason carries the server `address` and `maybeProcessed`: `true` when
 * the request was (or may have been) written to the socket before the failure,
 * so the server may have run it; `false` when it provably never left the
 * client, so retrying it cannot run it twice. The client never replays a
 * request that may have been processed.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"
import { formatDuration } from "./Options.ts"
import type * as Wire from "./Wire.ts"

const outcome = (maybeProcessed: boolean): string =>
  maybeProcessed ? "the request may have been processed" : "the request was not sent"

const describe = (cause: unknown): string => {
  if (Predicate.hasProperty(cause, "message") && typeof cause.message === "string") {
    // SocketError's message is generic ("An error occurred during Open"): show the OS error under it.
    const reason = Predicate.hasProperty(cause, "reason") ? cause.reason : undefined
    const inner = Predicate.hasProperty(reason, "cause")
      ? reason.cause
      : Predicate.hasProperty(cause, "cause")
      ? cause.cause
      : undefined
    if (Predicate.hasProperty(inner, "message") && typeof inner.message === "string" && inner.message.length > 0) {
      return `${cause.message}: ${inner.message}`
    }
    return cause.message
  }
  return String(cause)
}

/**
 * An option passed to `Client.make` is out of range; `option` is its path
 * (`"pool.maxCap"`).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const reason = new Client.InvalidOption({
 *   address: "127.0.0.1:7475",
 *   option: "pool.maxCap",
 *   value: 0,
 *   expected: "a positive integer",
 *   maybeProcessed: false
 * })
 * reason.message // "invalid option pool.maxCap: expected a positive integer, got 0"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOption extends Data.TaggedError("InvalidOption")<{
  readonly address: string
  readonly option: string
  readonly value: unknown
  readonly expected: string
  readonly maybeProcessed: false
}> {
  override get message(): string {
    let shown: string
    try {
      shown = typeof this.value === "string" ? JSON.stringify(this.value) : String(this.value)
    } catch {
      shown = typeof this.value
    }
    return `invalid option ${this.option}: expected ${this.expected}, got ${shown}`
  }
}

/**
 * The dialer could not open a connection (refused, unreachable, TLS
 * handshake failed...). Nothing was sent.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const isDown = (e: Client.ClientError) => e.reason._tag === "ConnectFailed"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectFailed extends Data.TaggedError("ConnectFailed")<{
  readonly address: string
  readonly cause: unknown
  readonly maybeProcessed: false
}> {
  override get message(): string {
    return `cannot connect to ${this.address}: ${describe(this.cause)}`
  }
}

/**
 * Opening a connection took longer than `connectTimeout`. Nothing was sent.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const slowNetwork = (e: Client.ClientError) => e.reason._tag === "ConnectTimeout"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectTimeout extends Data.TaggedError("ConnectTimeout")<{
  readonly address: string
  readonly timeout: Duration.Duration
  readonly maybeProcessed: false
}> {
  override get message(): string {
    return `connecting to ${this.address} timed out after ${formatDuration(this.timeout)}`
  }
}

/**
 * Every connection stayed busy (`maxCap` connections with `maxInFlight`
 * requests each) for `acquireTimeout`: the pool is exhausted. Nothing was
 * sent.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const exhausted = (e: Client.ClientError) => e.reason._tag === "AcquireTimeout"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class AcquireTimeout extends Data.TaggedError("AcquireTimeout")<{
  readonly address: string
  readonly timeout: Duration.Duration
  readonly maybeProcessed: false
}> {
  override get message(): string {
    return `no connection to ${this.address} became available within ${formatDuration(this.timeout)}`
  }
}

/**
 * No reply within `requestTimeout`. The connection is closed and never
 * reused: with no request ids, its late reply would otherwise answer the next
 * request.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const slowHandler = (e: Client.ClientError) => e.reason._tag === "RequestTimeout"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestTimeout extends Data.TaggedError("RequestTimeout")<{
  readonly address: string
  readonly timeout: Duration.Duration
  readonly maybeProcessed: boolean
}> {
  override get message(): string {
    return `no reply from ${this.address} within ${formatDuration(this.timeout)}; ${outcome(this.maybeProcessed)}`
  }
}

/**
 * The connection closed before the reply came: the peer closed it, a read or
 * write failed, or it was closed because another request on it timed out or
 * broke the protocol (`detail` says which).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const safeToRetry = (e: Client.ClientError) => e.reason._tag === "ConnectionClosed" && !e.maybeProcessed
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionClosed extends Data.TaggedError("ConnectionClosed")<{
  readonly address: string
  readonly detail: string
  readonly cause?: unknown
  readonly maybeProcessed: boolean
}> {
  override get message(): string {
    return `connection to ${this.address} closed (${this.detail}); ${outcome(this.maybeProcessed)}`
  }
}

/**
 * The client option a reply went over: `maxFrameSize` (the frame's declared
 * length), `maxMetadataEntries` or `maxMetadataBytes` (its metadata).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const limit: Client.ProtocolLimit = "maxMetadataEntries"
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export type ProtocolLimit = "maxFrameSize" | "maxMetadataEntries" | "maxMetadataBytes"

/**
 * The server sent bytes that are not a valid reply (bad framing, a frame over
 * `maxFrameSize`, a malformed body, or a reply nobody asked for): the
 * connection is closed. A reply whose metadata is over `maxMetadataEntries` /
 * `maxMetadataBytes` fails only its own call (decoding stops at the first
 * entry past the limit; the frame was read whole, so the connection stays).
 * `limit` names the option that was exceeded, if any.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const broken = (e: Client.ClientError) => e.reason._tag === "ProtocolError"
 * const tooMuchMetadata = (e: Client.ClientError) =>
 *   e.reason._tag === "ProtocolError" && e.reason.limit === "maxMetadataEntries"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class ProtocolError extends Data.TaggedError("ProtocolError")<{
  readonly address: string
  readonly detail: string
  /** The option the reply went over. @since 0.2.0 */
  readonly limit?: ProtocolLimit | undefined
  readonly cause?: Wire.WireError | undefined
  readonly maybeProcessed: boolean
}> {
  override get message(): string {
    return `protocol error from ${this.address}: ${this.detail}; ${outcome(this.maybeProcessed)}`
  }
}

/**
 * A request's body is larger than `maxFrameSize`; it was not sent.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const tooBig = (e: Client.ClientError) => e.reason._tag === "RequestTooLarge"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestTooLarge extends Data.TaggedError("RequestTooLarge")<{
  readonly address: string
  readonly size: number
  readonly limit: number
  readonly maybeProcessed: false
}> {
  override get message(): string {
    return `request of ${this.size} bytes exceeds the maximum frame size of ${this.limit} bytes; it was not sent`
  }
}

/**
 * The client's scope closed while the request was waiting or in flight.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const shuttingDown = (e: Client.ClientError) => e.reason._tag === "PoolClosed"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolClosed extends Data.TaggedError("PoolClosed")<{
  readonly address: string
  readonly maybeProcessed: boolean
}> {
  override get message(): string {
    return `client for ${this.address} is closed; ${outcome(this.maybeProcessed)}`
  }
}

/**
 * A multi-endpoint client had no endpoint to send a call to: its resolver
 * found none, or every one is draining (never sent).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const noneLeft = (e: Client.ClientError) => e.reason._tag === "NoEndpoint"
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class NoEndpoint extends Data.TaggedError("NoEndpoint")<{
  readonly address: string
  readonly maybeProcessed: false
}> {
  override get message(): string {
    return `no endpoint of ${this.address} can take the call; ${outcome(false)}`
  }
}

/**
 * Why a call failed; branch on `_tag`.
 *
 * @since 0.1.0
 * @category errors
 */
export type ClientErrorReason =
  | InvalidOption
  | ConnectFailed
  | ConnectTimeout
  | AcquireTimeout
  | RequestTimeout
  | ConnectionClosed
  | ProtocolError
  | RequestTooLarge
  | PoolClosed
  | NoEndpoint

const TypeId = "~quasizero/ClientError"

/**
 * The client's one error. `message`, `address` and `maybeProcessed` come from
 * the reason; branch on `error.reason._tag`, never on the message.
 *
 * @example
 * ```ts
 * import { Client, Request } from "quasizero"
 * import { Effect } from "effect"
 * const program = Client.call(Request.makeUnsafe(1)).pipe(
 *   Effect.catchTag("ClientError", (e) =>
 *     e.maybeProcessed ? Effect.fail(e) : Client.call(Request.makeUnsafe(1))
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class ClientError extends Data.TaggedError("ClientError")<{ readonly reason: ClientErrorReason }> {
  constructor(props: { readonly reason: ClientErrorReason }) {
    super(
      "cause" in props.reason && props.reason.cause !== undefined
        ? ({ ...props, cause: props.reason.cause } as { readonly reason: ClientErrorReason })
        : props
    )
  }
  /** @since 0.1.0 */
  readonly [TypeId] = TypeId
  override get message(): string {
    return this.reason.message
  }
  /** The server address the client talks to. */
  get address(): string {
    return this.reason.address
  }
  /** `true` when the server may have received (and run) the request. */
  get maybeProcessed(): boolean {
    return this.reason.maybeProcessed
  }
}

/**
 * `true` for a `ClientError`.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * Client.isClientError(new Error("x")) // false
 * ```
 *
 * @since 0.1.0
 * @category guards
 */
export const isClientError = (u: unknown): u is ClientError => Predicate.hasProperty(u, TypeId)
