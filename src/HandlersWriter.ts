/**
 * Go's handler form, `func(req, res) error`: a handler fills a mutable
 * response, and a failure after it set payload or metadata sends all three
 * fields, as Go quasizero does. Re-exported by `Handlers`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type { Handler } from "./Handlers.ts"
import { failureMessage } from "./HandlersError.ts"
import * as Message from "./Message.ts"
import type * as Request from "./Request.ts"
import * as Response from "./Response.ts"

/**
 * A mutable response for Go-style handlers (`func(req, res) error`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ResponseWriter {
  /** Sets the payload (Go's `Set` / `SetString`). */
  set(payload: Message.PayloadInput): void
  /** Sets one metadata pair (Go's `SetMeta`). */
  setMeta(key: string, value: string): void
  /** Sets the error message (Go's `SetError` / `SetErrorf` result). */
  setError(message: string): void
  /** The response as built so far. */
  readonly response: Response.Response
}

const makeWriter = (): ResponseWriter => {
  let errorMessage = ""
  let payload = Message.emptyPayload
  let metadata: Map<string, string> | undefined
  return {
    set: (p) => {
      payload = Message.toPayload(p)
    },
    setMeta: (key, value) => {
      metadata ??= new Map()
      metadata.set(key, value)
    },
    setError: (message) => {
      errorMessage = message
    },
    get response() {
      return Response.makeUnchecked(errorMessage, metadata ?? Message.emptyMetadata, payload)
    }
  }
}

/**
 * Adapts a Go-style handler that fills a mutable response. When it fails
 * after setting payload or metadata, the reply carries all three fields, as
 * Go quasizero sends them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Handlers } from "quasizero"
 * const echo = Handlers.writer((req, res) => Effect.sync(() => res.set(req.payload)))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const writer = <E = never, R = never>(
  handler: (request: Request.Request, response: ResponseWriter) => Effect.Effect<void, E, R>
): Handler<WriterFailure<E>, R> =>
(request) =>
  Effect.suspend(() => {
    const res = makeWriter()
    return Effect.map(
      Effect.mapError(handler(request, res), (error) => new WriterFailure(error, res.response)),
      () => res.response
    )
  })

/**
 * The failure of a `writer` handler: the error plus the response built before
 * it. The server sends that response with `error_message` set.
 *
 * @since 0.1.0
 * @category models
 */
export class WriterFailure<E> {
  readonly error: E
  readonly partial: Response.Response
  constructor(error: E, partial: Response.Response) {
    this.error = error
    this.partial = partial
  }
  get message(): string {
    return failureMessage(this.error)
  }
}
