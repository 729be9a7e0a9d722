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
    const ms = sleepMillis(req.payload)
    return ms === undefined
      ? Effect.succeed(Response.error(`invalid sleep duration ${goQuote(req.payload)}`))
      : Effect.as(Effect.sleep(ms), slept)
  }]
]

// SLEEP parses its payload as Go's qz-server does — `strconv.ParseInt(
// strings.TrimSpace(payload), 10, 64)`, a negative value sleeping not at all —
// and fails with Go's very message, so the two servers answer alike
// (test/interop/goClient.test.ts).
const int64 = /^[+-]?[0-9]+$/
const sleepMillis = (payload: Uint8Array): number | undefined => {
  const text = new TextDecoder().decode(payload).trim()
  if (!int64.test(text)) return undefined
  const n = BigInt(text)
  return n < -(2n ** 63n) || n >= 2n ** 63n ? undefined : Math.max(0, Number(n))
}

const printable = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u
const escapes: Record<number, string> = { 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r" }
const hex = (n: number, width: number) => n.toString(16).padStart(width, "0")

/** Go's `%q` of bytes (`strconv.Quote`): escapes as Go writes them, `\xNN` for bytes that are not UTF-8. */
const goQuote = (bytes: Uint8Array): string => {
  let out = '"'
  for (let i = 0; i < bytes.length;) {
    const [rune, size] = decodeRune(bytes, i)
    i += size
    if (rune < 0) out += `\\x${hex(bytes[i - 1]!, 2)}`
    else if (rune === 0x22 || rune === 0x5c) out += `\\${String.fromCharCode(rune)}`
    else if (escapes[rune] !== undefined) out += escapes[rune]
    else if (printable.test(String.fromCodePoint(rune))) out += String.fromCodePoint(rune)
    else if (rune < 0x20 || rune === 0x7f) out += `\\x${hex(rune, 2)}`
    else if (rune < 0x10000) out += `\\u${hex(rune, 4)}`
    else out += `\\U${hex(rune, 8)}`
  }
  return out + '"'
}

/** One UTF-8 rune at `i`: `[codePoint, size]`, or `[-1, 1]` for a byte that starts no valid rune (as Go's utf8). */
const decodeRune = (b: Uint8Array, i: number): [number, number] => {
  const b0 = b[i]!
  if (b0 < 0x80) return [b0, 1]
  const size = b0 >= 0xc2 && b0 <= 0xdf ? 2 : b0 >= 0xe0 && b0 <= 0xef ? 3 : b0 >= 0xf0 && b0 <= 0xf4 ? 4 : 0
  if (size === 0 || i + size > b.length) return [-1, 1]
  let rune = b0 & (0xff >> (size + 1))
  for (let k = 1; k < size; k++) {
    const c = b[i + k]!
    if ((c & 0xc0) !== 0x80) return [-1, 1]
    rune = (rune << 6) | (c & 0x3f)
  }
  const min = size === 2 ? 0x80 : size === 3 ? 0x800 : 0x10000
  return rune < min || rune > 0x10ffff || (rune >= 0xd800 && rune <= 0xdfff) ? [-1, 1] : [rune, size]
}

const meta = new TextEncoder().encode("META")

/**
 * The demo handlers as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Handlers.Handlers, Handlers.HandlersError> = Handlers.layer(table)
