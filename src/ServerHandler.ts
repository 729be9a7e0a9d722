/**
 * One frame to one reply: decodes the request in place and runs its handler.
 * Shared by every connection of a server. Internal to `Server`.
 *
 * A handler that returns an already completed Effect (`Effect.succeed`,
 * `Effect.fail`: an Exit) is answered synchronously, without a trip through a
 * fiber's run loop; that is most handlers, and it is what keeps pipelined
 * batches close to raw node:net. Any other Effect is left in `suspended` for
 * a fiber to run.
 *
 * @since 0.1.0
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Handlers from "./Handlers.ts"
import type * as Request from "./Request.ts"
import * as Response from "./Response.ts"
import * as Errors from "./ServerError.ts"
import type { ServerMetrics } from "./ServerMetrics.ts"
import type * as ServerOptions from "./ServerOptions.ts"
import { requestSpan } from "./ServerTracing.ts"
import * as Wire from "./Wire.ts"

// Exits share two prototypes: comparing them is one load, where `Exit.isExit`
// and `Effect.isEffect` are `in` checks, megamorphic across effect shapes.
const successProto: object = Object.getPrototypeOf(Exit.void)
const failureProto: object = Object.getPrototypeOf(Exit.fail(undefined))
const protoOf = (u: unknown): unknown => typeof u === "object" && u !== null ? Object.getPrototypeOf(u) : undefined

/** @internal */
export const isExitFast = (u: unknown): u is Exit.Exit<unknown, unknown> => {
  const proto = protoOf(u)
  return proto === successProto || proto === failureProto || Exit.isExit(u)
}

const unknownCommand = (code: number): Response.Response => Response.error(`unknown command code ${code}`)
const internalError = Response.error("internal error")

/** @internal */
export class FrameHandler {
  /** The Effect that makes the reply when `handle` returned `undefined`; taken at once by the caller. */
  suspended: Effect.Effect<Response.Response> | undefined
  readonly table: Handlers.Shape["handlers"]
  readonly requestMetrics: boolean
  readonly spans: boolean
  readonly decodeLimits: ServerOptions.ResolvedOptions["decodeLimits"]
  readonly handlers: Handlers.Shape
  readonly metrics: ServerMetrics
  constructor(handlers: Handlers.Shape, options: ServerOptions.ResolvedOptions, metrics: ServerMetrics) {
    this.handlers = handlers
    this.metrics = metrics
    this.table = handlers.handlers
    this.requestMetrics = options.requestMetrics
    this.spans = options.spans
    this.decodeLimits = options.decodeLimits
  }

  /**
   * Decodes one frame and runs its handler. Never fails: a malformed body or
   * a failing handler becomes the reply. `undefined`: the Effect in
   * `suspended` makes it.
   */
  handle(bytes: Uint8Array, start: number, end: number): Response.Response | undefined {
    let request: Request.Request
    try {
      request = Wire.decodeRequestAtUnsafe(bytes, start, end, this.decodeLimits)
    } catch (e) {
      if (!(e instanceof Wire.WireError)) throw e
      const reason = e.reason._tag === "MetadataLimit"
        ? new Errors.RequestLimit({ error: e })
        : new Errors.MalformedRequest({ error: e })
      this.suspended = Effect.as(this.metrics.report(reason), Response.error(reason.message))
      return undefined
    }
    if (this.requestMetrics) this.metrics.countCode(request.code)
    const handler = this.table.get(request.code)
    if (handler === undefined) return unknownCommand(request.code)
    let effect: Effect.Effect<Handlers.Result, unknown>
    try {
      effect = handler(request)
    } catch (defect) {
      effect = Effect.die(defect)
    }
    if (!this.spans) {
      // Prototype checks: `Exit.isExit` / `Effect.isEffect` are `in` checks,
      // megamorphic across the shapes handlers return (~40 ns a frame).
      // Inline: `getPrototypeOf` throws only on null/undefined (~3% of a frame as a call).
      const proto = effect == null ? undefined : Object.getPrototypeOf(effect)
      if (proto === successProto) {
        if (this.requestMetrics) this.metrics.handlerTime(0)
        return this.succeeded(request, (effect as Exit.Success<Handlers.Result>).value)
      }
      if (proto === failureProto) {
        if (this.requestMetrics) this.metrics.handlerTime(0)
        return this.settled(this.onFailure(request, (effect as Exit.Failure<never, unknown>).cause))
      }
    }
    // A JavaScript handler may return anything: not an Effect is a defect, not a crash.
    if (!Effect.isEffect(effect)) effect = Effect.die(Handlers.notAnEffect(request.code, effect))
    if (this.spans) {
      effect = requestSpan(effect, request)
      if (isExitFast(effect)) {
        return Exit.isSuccess(effect)
          ? this.succeeded(request, effect.value as Handlers.Result)
          : this.settled(this.onFailure(request, effect.cause))
      }
    }
    this.suspended = Effect.matchCauseEffect(this.requestMetrics ? this.metrics.timed(effect) : effect, {
      onFailure: (cause) => asEffect(this.onFailure(request, cause)),
      onSuccess: (result) => {
        const reply = this.succeeded(request, result)
        return reply !== undefined ? Effect.succeed(reply) : this.take()
      }
    })
    return undefined
  }

  /** `handle` as an Effect (the `concurrency > 1` path). */
  handleEffect(bytes: Uint8Array, start: number, end: number): Effect.Effect<Response.Response> {
    const reply = this.handle(bytes, start, end)
    return reply !== undefined ? Effect.succeed(reply) : this.take()
  }

  take(): Effect.Effect<Response.Response> {
    const effect = this.suspended!
    this.suspended = undefined
    return effect
  }

  // A typed failure is answered at once; a defect or an interruption needs the fiber.
  onFailure(
    request: Request.Request,
    cause: Cause.Cause<unknown>
  ): Response.Response | Effect.Effect<Response.Response> {
    // Interrupted at shutdown: invent no reply; the connection closes.
    if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
    if (Cause.hasFails(cause) && !Cause.hasDies(cause)) {
      const error = Cause.findErrorOption(cause)
      if (error._tag === "Some") return Handlers.failureResponse(this.handlers, error.value)
    }
    return Effect.as(
      Effect.andThen(
        Effect.logError(`quasizero: handler for code ${request.code} died`, cause),
        this.metrics.report(new Errors.HandlerDefect({ code: request.code, cause }))
      ),
      internalError
    )
  }

  // A reply, or `undefined` with the Effect that makes it in `suspended`
  // (only the rare paths: defects, interruptions).
  settled(reply: Response.Response | Effect.Effect<Response.Response>): Response.Response | undefined {
    if (!Effect.isEffect(reply)) return reply
    this.suspended = reply
    return undefined
  }

  // A success that is not a Response, bytes, a string or void is a handler defect.
  succeeded(request: Request.Request, result: Handlers.Result): Response.Response | undefined {
    return Handlers.toResponse(result)
      ?? this.settled(this.onFailure(request, Cause.die(Handlers.invalidSuccess(request.code, result))))
  }
}

const asEffect = (reply: Response.Response | Effect.Effect<Response.Response>): Effect.Effect<Response.Response> =>
  Effect.isEffect(reply) ? reply : Effect.succeed(reply)
