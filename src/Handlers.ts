/**
 * The handler map: which code runs which handler, as a service the server
 * reads. A handler takes a `Request` and returns an Effect of a `Response`, a
 * payload (`Uint8Array` or string) or nothing. Its typed failure becomes the
 * reply's `error_message` (the error's `message` unless `mapError` says
 * otherwise); a defect becomes `internal error`; an unknown code gets Go's
 * exact `unknown command code N`.
 *
 * Handlers may require services: `Handlers.layer` captures them when it is
 * built, from the app's own layers, and the server provides them once per
 * connection (not per request).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Message from "./Message.ts"
import type * as Request from "./Request.ts"
import * as Response from "./Response.ts"

/**
 * What a handler may return; `void` is the empty success response.
 *
 * @since 0.1.0
 * @category models
 */
export type Result = Response.Response | Uint8Array | string | void

/**
 * A request handler.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Handlers } from "quasizero"
 * const echo: Handlers.Handler = (req) => Effect.succeed(req.payload)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Handler<E = never, R = never> = (request: Request.Request) => Effect.Effect<Result, E, R>

/**
 * The handler table as given to `make`: a record keyed by code, a map, or
 * `[code, handler]` pairs (duplicates rejected).
 *
 * @since 0.1.0
 * @category models
 */
export type Table<E, R> =
  | { readonly [code: number]: Handler<E, R> }
  | ReadonlyMap<number, Handler<E, R>>
  | ReadonlyArray<readonly [number, Handler<E, R>]>

/**
 * The service shape the server reads.
 *
 * @since 0.1.0
 * @category models
 */
export interface Shape {
  /** Handlers by code, with their services already captured in `context`. */
  readonly handlers: ReadonlyMap<number, Handler<unknown>>
  /** The services the handlers require, provided once per connection. */
  readonly context: Context.Context<never>
  /** Turns a typed handler failure into the reply sent. */
  readonly toResponse: (error: unknown) => Response.Response
}

/**
 * The handler map service.
 *
 * @since 0.1.0
 * @category services
 */
export class Handlers extends Context.Service<Handlers, Shape>()("quasizero/Handlers") {}

/**
 * Options for `make` / `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E> {
  /**
   * The reply for a typed failure: a message, or a whole `Response` (for
   * instance to keep metadata). Default: the error's `message` when it has a
   * string one, else `String(error)`.
   */
  readonly mapError?: ((error: E) => string | Response.Response) | undefined
}

const defaultMessage = (error: unknown): string =>
  typeof error === "object" && error !== null && typeof (error as { message?: unknown }).message === "string"
    ? (error as { message: string }).message
    : String(error)

/**
 * Builds the handler map, capturing the services the handlers need.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Handlers } from "quasizero"
 * const handlers = Handlers.make({
 *   1: () => Effect.succeed("PONG"),
 *   2: (req) => Effect.succeed(req.payload)
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E = never, R = never>(
  table: Table<E, R>,
  options?: Options<E>
): Effect.Effect<Shape, never, R> =>
  Effect.map(Effect.context<R>(), (context) => makeWith(table, context as Context.Context<never>, options))

const makeWith = <E, R>(table: Table<E, R>, context: Context.Context<never>, options?: Options<E>): Shape => {
  const handlers = new Map<number, Handler<unknown>>()
  const add = (code: number, handler: Handler<E, R>) => {
    Message.checkCode(code)
    if (handlers.has(code)) throw new Error(`Handlers: duplicate handler for code ${code}`)
    if (typeof handler !== "function") throw new Error(`Handlers: handler for code ${code} is not a function`)
    handlers.set(code, handler as unknown as Handler<unknown>)
  }
  if (Array.isArray(table)) {
    for (const [code, handler] of table as ReadonlyArray<readonly [number, Handler<E, R>]>) add(code, handler)
  } else if (table instanceof Map) {
    for (const [code, handler] of table) add(code, handler)
  } else {
    for (const key of Object.keys(table)) {
      const code = Number(key)
      if (String(code) !== key) throw new Error(`Handlers: key ${JSON.stringify(key)} is not an int32 code`)
      add(code, (table as { readonly [code: number]: Handler<E, R> })[code]!)
    }
  }
  const mapError = options?.mapError
  return {
    handlers,
    context,
    toResponse: (error) => {
      const mapped = mapError === undefined ? defaultMessage(error) : mapError(error as E)
      return typeof mapped === "string" ? Response.error(mapped) : mapped
    }
  }
}

/**
 * Provides the handler map as a layer; its requirements are the handlers'.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Handlers } from "quasizero"
 * const HandlersLive = Handlers.layer({ 1: () => Effect.succeed("PONG") })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E = never, R = never>(
  table: Table<E, R>,
  options?: Options<E>
): Layer.Layer<Handlers, never, R> => Layer.effect(Handlers, make(table, options))

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
      return Response.makeUnsafe(errorMessage, metadata ?? Message.emptyMetadata, payload)
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
    return defaultMessage(this.error)
  }
}

/**
 * Turns a handler's failure into its reply, honouring `WriterFailure`'s
 * partial response.
 *
 * @since 0.1.0
 * @category conversions
 */
export const failureResponse = (shape: Shape, error: unknown): Response.Response => {
  if (error instanceof WriterFailure) {
    const reply = shape.toResponse(error.error)
    return Response.withError(
      reply.payload.length === 0 && reply.metadata.size === 0 ? error.partial : reply,
      reply.errorMessage
    )
  }
  return shape.toResponse(error)
}

/**
 * Normalises what a handler returned into a `Response`.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toResponse = (result: Result): Response.Response => {
  if (result === undefined) return Response.empty
  if (typeof result === "string" || result instanceof Uint8Array) return Response.ok(result)
  return result
}
