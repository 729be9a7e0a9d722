/**
 * The demo command set served by `quasizero serve` and used by the examples,
 * tests and benchmarks:
 * 1 PING → `PONG`; 2 ECHO → the request payload; 3 FAIL → error
 * `something went wrong`; 4 META → the request metadata, payload `META`;
 * 5 SLEEP → sleeps the payload's decimal milliseconds, then `SLEPT`.
 * Internal: the CLI's demo set, not part of the package's API (not exported
 * from the root index).
 *
 * @since 0.1.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Handlers from "./Handlers.ts"
import * as Request from "./Request.ts"
import * as Response from "./Response.ts"

/** @since 0.1.0 @category constants */
export const PING = 1
/** @since 0.1.0 @category constants */
export const ECHO = 2
/** @since 0.1.0 @category constants */
export const FAIL = 3
/** @since 0.1.0 @category constants */
export const META = 4
/** @since 0.1.0 @category constants */
export const SLEEP = 5

const pong = Response.ok("PONG")
const slept = Response.ok("SLEPT")

class DemoFailure {
  readonly message = "something went wrong"
}

/**
 * The demo handlers as a table for `Handlers.make` / `Handlers.layer`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const table: ReadonlyArray<readonly [number, Handlers.Handler<DemoFailure>]> = [
  [PING, () => Effect.succeed(pong)],
  [ECHO, (req) => Effect.succeed(req.payload)],
  [FAIL, () => Effect.fail(new DemoFailure())],
  [META, (req) => Effect.succeed(Response.makeUnchecked("", req.metadata, meta))],
  [SLEEP, (req) => {
    const ms = Number(Request.text(req))
    return Number.isFinite(ms) && ms >= 0
      ? Effect.as(Effect.sleep(ms), slept)
      : Effect.succeed(
        Response.error(`SLEEP needs a decimal number of milliseconds, got ${JSON.stringify(Request.text(req))}`)
      )
  }]
]

const meta = new TextEncoder().encode("META")

/**
 * The demo handlers as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Handlers.Handlers, Handlers.HandlersError> = Handlers.layer(table)
