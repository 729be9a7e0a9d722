/**
 * Error replies as failures: `RemoteError` and `ensureOk`. A reply with an
 * `errorMessage` is data for `call` (as in Go); these are for callers who
 * want it in the error channel. Re-exported by `Client`.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Response from "./Response.ts"

/**
 * A reply whose `errorMessage` is set, as a failure. Like Go, `call` returns
 * such a reply as data; `ensureOk` turns it into this error for those who
 * want one. The whole reply (payload and metadata too) is kept.
 *
 * @example
 * ```ts
 * import { Client, Response } from "quasizero"
 * const error = new Client.RemoteError({ response: Response.error("boom") })
 * error.message // "boom"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class RemoteError extends Data.TaggedError("RemoteError")<{ readonly response: Response.Response }> {
  override get message(): string {
    return this.response.errorMessage
  }
}

/**
 * Succeeds with the reply when its `errorMessage` is empty, fails with
 * `RemoteError` otherwise.
 *
 * @example
 * ```ts
 * import { Client, Request } from "quasizero"
 * import { Effect } from "effect"
 * const pong = Client.call(Request.makeUnsafe(1)).pipe(Effect.flatMap(Client.ensureOk))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const ensureOk = (response: Response.Response): Effect.Effect<Response.Response, RemoteError> =>
  response.errorMessage.length === 0 ? Effect.succeed(response) : Effect.fail(new RemoteError({ response }))
