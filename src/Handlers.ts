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
import {
  DuplicateCode,
  failureMessage,
  HandlersError,
  type HandlersErrorReason,
  InvalidCode,
  NotAFunction
} from "./HandlersError.ts"
import { WriterFailure } from "./HandlersWriter.ts"
import type * as Request from "./Request.ts"
import * as Response from "./Response.ts"

export * from "./HandlersError.ts"
export * from "./HandlersWriter.ts"

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
 * Any handler, whatever its error and services: the constraint of a table
 * before inference.
 *
 * @since 0.1.0
 * @category models
 */
// oxlint-disable-next-line no-explicit-any
export type AnyHandler = (request: Request.Request) => Effect.Effect<Result, any, any>

/**
 * Any handler table (record, map or pairs).
 *
 * @since 0.1.0
 * @category models
 */
export type AnyTable =
  | { readonly [code: number]: AnyHandler }
  | ReadonlyMap<number, AnyHandler>
  | ReadonlyArray<readonly [number, AnyHandler]>

/**
 * The typed error of a handler.
 *
 * @since 0.1.0
 * @category type-level
 */
export type HandlerError<H> = H extends (request: Request.Request) => Effect.Effect<infer _A, infer E, infer _R> ? E
  : never

/**
 * The services a handler requires.
 *
 * @since 0.1.0
 * @category type-level
 */
export type HandlerServices<H> = H extends (request: Request.Request) => Effect.Effect<infer _A, infer _E, infer R> ? R
  : never

/**
 * The handlers of a table, as a union.
 *
 * @since 0.1.0
 * @category type-level
 */
export type TableHandlers<T> = T extends ReadonlyMap<number, infer H> ? H
  : T extends ReadonlyArray<readonly [number, infer H]> ? H
  : T[keyof T]

/**
 * The union of a table's handler errors.
 *
 * @since 0.1.0
 * @category type-level
 */
export type TableError<T> = HandlerError<TableHandlers<T>>

/**
 * The union of the services a table's handlers require.
 *
 * @since 0.1.0
 * @category type-level
 */
export type TableServices<T> = HandlerServices<TableHandlers<T>>

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
   * instance to keep metadata). Default: `Handlers.failureMessage` (the
   * error's `message`, its `_tag`, or the value as JSON).
   */
  readonly mapError?: ((error: E) => string | Response.Response) | undefined
}

/**
 * Builds the handler map, capturing the services the handlers need. The
 * table's error type is the union of its handlers' errors and its
 * requirements the union of their services, for every table form.
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
export const make = <const T extends AnyTable>(
  table: T,
  options?: Options<TableError<T>>
): Effect.Effect<Shape, HandlersError, TableServices<T>> =>
  Effect.flatMap(
    Effect.context<TableServices<T>>(),
    (context) => makeWith(table as Table<TableError<T>, never>, context as Context.Context<never>, options)
  )

const isInt32 = (code: number): boolean => Number.isInteger(code) && code >= -2147483648 && code <= 2147483647

const makeWith = <E, R>(
  table: Table<E, R>,
  context: Context.Context<never>,
  options?: Options<E>
): Effect.Effect<Shape, HandlersError> => {
  const handlers = new Map<number, Handler<unknown>>()
  const add = (key: string, code: number, handler: Handler<E, R>): HandlersErrorReason | undefined => {
    if (!isInt32(code)) return new InvalidCode({ key })
    if (handlers.has(code)) return new DuplicateCode({ code })
    if (typeof handler !== "function") return new NotAFunction({ code })
    handlers.set(code, handler as unknown as Handler<unknown>)
    return undefined
  }
  let rejected: HandlersErrorReason | undefined
  if (Array.isArray(table)) {
    for (const [code, handler] of table as ReadonlyArray<readonly [number, Handler<E, R>]>) {
      rejected ??= add(String(code), code, handler)
    }
  } else if (table instanceof Map) {
    for (const [code, handler] of table) rejected ??= add(String(code), code, handler)
  } else {
    for (const key of Object.keys(table)) {
      const code = Number(key)
      rejected ??= String(code) !== key
        ? new InvalidCode({ key })
        : add(key, code, (table as { readonly [code: number]: Handler<E, R> })[code]!)
    }
  }
  if (rejected !== undefined) return Effect.fail(new HandlersError({ reason: rejected }))
  const mapError = options?.mapError
  return Effect.succeed({
    handlers,
    context,
    toResponse: (error) => {
      const mapped = mapError === undefined ? failureMessage(error) : mapError(error as E)
      return typeof mapped === "string" ? Response.error(mapped) : mapped
    }
  })
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
export const layer = <const T extends AnyTable>(
  table: T,
  options?: Options<TableError<T>>
): Layer.Layer<Handlers, HandlersError, TableServices<T>> => Layer.effect(Handlers, make(table, options))

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
 * Normalises what a handler succeeded with into a `Response`; `undefined`
 * when the value is not a `Result` (the server then answers `internal error`
 * and reports a `HandlerDefect` caused by `InvalidResult`).
 *
 * @example
 * ```ts
 * import { Handlers } from "quasizero"
 * Handlers.toResponse("PONG")?.payload // the bytes of "PONG"
 * Handlers.toResponse(undefined) // Response.empty: an empty OK reply
 * Handlers.toResponse(42 as never) // undefined: not a handler result
 * ```
 *
 * @since 0.1.0
 * @category conversions
 */
export const toResponse = (result: Result): Response.Response | undefined => {
  if (result === undefined) return Response.empty
  if (typeof result === "string" || result instanceof Uint8Array) return Response.ok(result)
  return Response.isResponse(result) ? result : undefined
}
