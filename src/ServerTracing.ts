/**
 * Traces across the wire, server side: the request span (`spans: true`)
 * continues the trace whose W3C `traceparent` (or `b3`, `x-b3-*`) the
 * request carries in its metadata, parsed by effect's `HttpTraceContext`
 * (as `HttpMiddleware` does with headers). Internal to `Server`.
 *
 * @since 0.2.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Headers from "effect/http/Headers"
import * as TraceContext from "effect/http/HttpTraceContext"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"
import type * as Message from "./Message.ts"
import type * as Request from "./Request.ts"

const keys = ["traceparent", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags"] as const

/**
 * The remote parent span in `metadata`, if any.
 *
 * @since 0.2.0
 * @internal
 */
export const remoteParent = (metadata: Message.Metadata): Tracer.ExternalSpan | undefined => {
  if (metadata.size === 0) return undefined
  let record: Record<string, string> | undefined
  for (const key of keys) {
    const value = metadata.get(key)
    if (value === undefined) continue
    record ??= {}
    record[key] = value
  }
  return record === undefined
    ? undefined
    : Option.getOrUndefined(TraceContext.fromHeaders(Headers.fromRecordUnsafe(record)))
}

/**
 * The handler effect in the request span `quasizero.request` (kind server),
 * child of the caller's span when the request carries one.
 *
 * @since 0.2.0
 * @internal
 */
export const requestSpan = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  request: Request.Request
): Effect.Effect<A, E, R> => {
  const parent = remoteParent(request.metadata)
  const attributes = { "quasizero.code": request.code }
  return Effect.withSpan(
    effect,
    "quasizero.request",
    parent === undefined ? { kind: "server", attributes } : { kind: "server", attributes, parent }
  )
}
