/**
 * Traces across the wire, client side: like effect's `HttpClient` does over
 * headers, a call made inside a span carries W3C `traceparent` and `b3` in
 * its request metadata (formatted by effect's `HttpTraceContext`), so the
 * server's request span (`spans: true`) continues the caller's trace; with
 * `tracing.spans`, each call also gets a client span `quasizero.call`
 * (attributes: code, endpoint, outcome). With no current span and no client
 * spans, a call costs one `withFiber` more (and
 * no context lookup). `Tracer.DisablePropagation`
 * turns both off for a region, as it does for `HttpClient`. Re-exported by
 * `Client`.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as TraceContext from "effect/http/HttpTraceContext"
import * as Tracer from "effect/Tracer"
import type { ClientError } from "./ClientError.ts"
import type * as Request from "./Request.ts"
import type * as Response from "./Response.ts"

/**
 * Tracing options of a client (`Client.make({ tracing })`):
 * `propagate` (default true) writes the current span's `traceparent` and `b3`
 * into each request's metadata; `spans` (default false) makes a client span
 * `quasizero.call` per call (its id is then the one propagated).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const traced: Client.TracingOptions = { tracing: { spans: true } }
 * const silent: Client.TracingOptions = { tracing: { propagate: false } }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface TracingOptions {
  readonly tracing?: {
    readonly spans?: boolean | undefined
    readonly propagate?: boolean | undefined
  } | undefined
}

const withContext = (request: Request.Request, span: Tracer.Span): Request.Request => {
  const headers = TraceContext.toHeaders(span)
  const metadata = new Map(request.metadata)
  metadata.set("traceparent", headers.traceparent!)
  metadata.set("b3", headers.b3!)
  return { ...request, metadata }
}

const outcome = (exit: Exit.Exit<Response.Response | ReadonlyArray<Response.Response>, ClientError>): string => {
  if (Exit.isSuccess(exit)) {
    const value = exit.value
    const failed = Array.isArray(value)
      ? value.some((r: Response.Response) => r.errorMessage !== "")
      : (value as Response.Response).errorMessage !== ""
    return failed ? "error_reply" : "ok"
  }
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  return error !== undefined && error._tag === "Fail" ? (error.error as ClientError).reason._tag : "interrupted"
}

/**
 * Wraps a client's `call` and `pipeline` with propagation and client spans,
 * as `options` ask (returned as they are when both are off).
 *
 * @since 0.2.0
 * @internal
 */
export const wrap = (
  address: string,
  options: TracingOptions | undefined,
  call: (request: Request.Request) => Effect.Effect<Response.Response, ClientError>,
  pipeline: (requests: ReadonlyArray<Request.Request>) => Effect.Effect<ReadonlyArray<Response.Response>, ClientError>
): {
  readonly call: (request: Request.Request) => Effect.Effect<Response.Response, ClientError>
  readonly pipeline: (
    requests: ReadonlyArray<Request.Request>
  ) => Effect.Effect<ReadonlyArray<Response.Response>, ClientError>
} => {
  const spans = options?.tracing?.spans === true
  const propagate = options?.tracing?.propagate !== false
  if (!spans && !propagate) return { call, pipeline }

  const run = <A extends Response.Response | ReadonlyArray<Response.Response>>(
    code: number,
    count: number,
    send: (span: Tracer.Span | undefined) => Effect.Effect<A, ClientError>
  ): Effect.Effect<A, ClientError> =>
    Effect.withFiber((fiber) => {
      if (!spans) {
        // The fiber's cached parent span (what `Effect.currentSpan` reads):
        // with no span, no context lookup at all on the hot path.
        const parent = fiber.cache.span
        if (parent === undefined || parent._tag !== "Span" || fiber.getRef(Tracer.DisablePropagation)) {
          return send(undefined)
        }
        return send(parent)
      }
      if (fiber.getRef(Tracer.DisablePropagation)) return send(undefined)
      const attributes: Record<string, unknown> = { "quasizero.code": code, "quasizero.endpoint": address }
      if (count > 1) attributes["quasizero.requests"] = count
      return Effect.useSpan("quasizero.call", { kind: "client", attributes }, (span) =>
        Effect.onExit(
          send(propagate ? span : undefined),
          (exit) => Effect.sync(() => span.attribute("quasizero.outcome", outcome(exit)))
        ))
    })

  return {
    call: (request) => run(request.code, 1, (span) => call(span === undefined ? request : withContext(request, span))),
    pipeline: (requests) =>
      requests.length === 0 ? pipeline(requests) : run(
        requests[0]!.code,
        requests.length,
        (span) => pipeline(span === undefined ? requests : requests.map((r) => withContext(r, span)))
      )
  }
}
