/**
 * The server's metrics and its error report, shared by every connection.
 * Internal to `Server`.
 *
 * @since 0.1.0
 * @internal
 */
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as Handlers from "./Handlers.ts"
import * as Errors from "./ServerError.ts"
import type * as ServerOptions from "./ServerOptions.ts"

const connectionsOpen = Metric.gauge("quasizero_server_connections_open", {
  description: "Connections open now"
})
const connectionsTotal = Metric.counter("quasizero_server_connections_total", {
  description: "Connections accepted",
  incremental: true
})
const requestsTotal = Metric.counter("quasizero_server_requests_total", {
  description: "Requests read",
  incremental: true
})
const errorsTotal = Metric.frequency("quasizero_server_errors_total", {
  description: "Connection errors by reason"
})
const requestsByCode = Metric.frequency("quasizero_server_requests_by_code", {
  description: 'Requests by command code (codes without a handler count as "unknown")'
})
const handlerSeconds = Metric.histogram("quasizero_server_handler_seconds", {
  description: "Handler run time; handlers returning a completed Effect count as 0",
  boundaries: Metric.exponentialBoundaries({ start: 1e-6, factor: 4, count: 14 })
})

/** @internal */
export interface ServerMetrics {
  /** Connections open now (the gauge) after one opened or closed. */
  readonly opened: (open: number) => void
  readonly closed: (open: number) => void
  /** `n` more requests read. */
  readonly requests: (n: number) => void
  readonly countCode: (code: number) => void
  readonly handlerTime: (seconds: number) => void
  /** `effect`, with its run time recorded in the handler histogram. */
  readonly timed: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /** Counts, logs and hands `reason` to `onError`. */
  readonly report: (reason: Errors.ServerErrorReason) => Effect.Effect<void>
}

/** @internal */
export const make = (deps: {
  readonly options: ServerOptions.ResolvedOptions
  readonly handlers: Handlers.Shape
  /** The server's context: metrics are recorded in its registry. */
  readonly context: Context.Context<never>
  readonly clock: Clock.Clock
}): ServerMetrics => {
  const { clock, context, options } = deps
  // The counter's hook, looked up once: `updateUnsafe` finds the registry in
  // the context and the series in it on every call (~0.2 µs a read).
  const requestsRead = (requestsTotal as unknown as {
    hook: (context: Context.Context<never>) => { update: (n: number, context: Context.Context<never>) => void }
  }).hook(context)
  // Labels only for registered codes: a peer sending random codes must not
  // grow the metric without bound.
  const codeLabels = new Map(Array.from(deps.handlers.handlers.keys(), (code) => [code, String(code)]))
  const handlerTime = (seconds: number) => handlerSeconds.updateUnsafe(seconds, context)
  return {
    opened: (open) => {
      connectionsOpen.updateUnsafe(open, context)
      connectionsTotal.updateUnsafe(1, context)
    },
    closed: (open) => connectionsOpen.updateUnsafe(open, context),
    requests: (n) => requestsRead.update(n, context),
    countCode: (code) => requestsByCode.updateUnsafe(codeLabels.get(code) ?? "unknown", context),
    handlerTime,
    timed: (effect) =>
      Effect.suspend(() => {
        const start = clock.currentTimeNanosUnsafe()
        return Effect.onExit(effect, () =>
          Effect.sync(() => handlerTime(Number(clock.currentTimeNanosUnsafe() - start) / 1e9)))
      }),
    report: (reason) => {
      const error = new Errors.ServerError({ reason })
      const logged = Effect.andThen(
        Metric.update(errorsTotal, reason._tag),
        Effect.logDebug("quasizero connection error", error.message)
      )
      return options.onError === undefined
        ? logged
        : Effect.andThen(logged, Effect.ignoreCause(Effect.suspend(() => options.onError!(error))))
    }
  }
}
