/**
 * The one validator server and client options are resolved with (re-exported
 * by `Options`): a deadline is off at `0` and `Infinity` alike, a grace period
 * is not, a lifted limit is `Infinity`, and `maxFrameSize` has one cap on both
 * sides. A rejected option names itself, its value and what was expected.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import { decodeDuration, type DurationInput, maxFrameSizeLimit, parseSize, type SizeInput } from "./Options.ts"

/**
 * A rejected option: its name, the value given and what was expected. Each
 * side turns it into its own error (`ServerError` or `ClientError`, reason
 * `InvalidOption`).
 *
 * @example
 * ```ts
 * import { Options } from "quasizero"
 * const invalid: Options.Invalid = { option: "timeout", value: -1, expected: "a duration >= 0" }
 * ```
 *
 * @since 0.2.0
 * @category validation
 */
export interface Invalid {
  readonly option: string
  readonly value: unknown
  readonly expected: string
}

/**
 * The checks `validate` hands its builder; each returns the value with the
 * fallback applied when the option is `undefined`.
 *
 * @example
 * ```ts
 * import type { Options } from "quasizero"
 * type Timeout = Options.Checker["timeout"]
 * ```
 *
 * @since 0.2.0
 * @category validation
 */
export interface Checker {
  /** A deadline: >= 0; `0` and `Infinity` are both off, resolved to `Duration.zero`. */
  readonly timeout: (option: string, value: DurationInput | undefined, fallback: Duration.Duration) => Duration.Duration
  /** A grace period: >= 0; `0` waits for nothing, `Infinity` for everything. */
  readonly grace: (option: string, value: DurationInput | undefined, fallback: Duration.Duration) => Duration.Duration
  /** A period between runs: finite and > 0. */
  readonly interval: (
    option: string,
    value: DurationInput | undefined,
    fallback: Duration.Duration
  ) => Duration.Duration
  /** A whole number in `[min, max]` (max: `Number.MAX_SAFE_INTEGER` by default), or `Infinity` when `unlimited`. */
  readonly count: (
    option: string,
    value: number | undefined,
    fallback: number,
    range: { readonly min: number; readonly max?: number | undefined; readonly unlimited?: boolean | undefined }
  ) => number
  /** A size (`SizeInput`) in `[min, max]`, or `Infinity` when `unlimited`. */
  readonly size: (
    option: string,
    value: SizeInput | undefined,
    fallback: number,
    range: { readonly min: number; readonly max?: number | undefined; readonly unlimited?: boolean | undefined }
  ) => number
  /** `maxFrameSize`: a size in `[1, maxFrameSizeLimit]`, the same on both sides. */
  readonly frameSize: (option: string, value: SizeInput | undefined, fallback: number) => number
  /** Rejects an option a resolver checked itself. */
  readonly reject: (option: string, value: unknown, expected: string) => never
}

class Rejected {
  readonly invalid: Invalid
  constructor(invalid: Invalid) {
    this.invalid = invalid
  }
}

const reject = (option: string, value: unknown, expected: string): never => {
  throw new Rejected({ option, value, expected })
}

const decodeOrReject = (option: string, value: DurationInput, expected: string): Duration.Duration => {
  const decoded = decodeDuration(value)
  if (Option.isNone(decoded) || Duration.isNegative(decoded.value)) return reject(option, value, expected)
  return decoded.value
}

const inRange = (
  option: string,
  value: unknown,
  n: number,
  range: { readonly min: number; readonly max?: number | undefined; readonly unlimited?: boolean | undefined },
  unit: string
): number => {
  const max = range.max ?? Number.MAX_SAFE_INTEGER
  if (n === Infinity && range.unlimited === true) return n
  if (Number.isSafeInteger(n) && n >= range.min && n <= max) return n
  const bounds = max === Number.MAX_SAFE_INTEGER ? `>= ${range.min}` : `in [${range.min}, ${max}]`
  return reject(option, value, `${unit} ${bounds}${range.unlimited === true ? " (Infinity: no limit)" : ""}`)
}

const checker: Checker = {
  timeout: (option, value, fallback) => {
    if (value === undefined) return fallback
    const duration = decodeOrReject(option, value, "a duration >= 0 (0 or Infinity: off)")
    return Duration.isFinite(duration) ? duration : Duration.zero
  },
  grace: (option, value, fallback) =>
    value === undefined ? fallback : decodeOrReject(option, value, "a duration >= 0 (Infinity: no limit)"),
  interval: (option, value, fallback) => {
    if (value === undefined) return fallback
    const expected = "a finite duration > 0"
    const duration = decodeOrReject(option, value, expected)
    return Duration.isFinite(duration) && !Duration.isZero(duration) ? duration : reject(option, value, expected)
  },
  count: (option, value, fallback, range) => {
    if (value === undefined) return fallback
    return inRange(option, value, typeof value === "number" ? value : Number.NaN, range, "an integer")
  },
  size: (option, value, fallback, range) => {
    if (value === undefined) return fallback
    const n = typeof value === "number"
      ? value
      : typeof value === "string"
      ? Option.getOrElse(parseSize(value), () => Number.NaN)
      : Number.NaN
    return inRange(option, value, n, range, "a size in bytes")
  },
  frameSize: (option, value, fallback) => checker.size(option, value, fallback, { min: 1, max: maxFrameSizeLimit }),
  reject
}

/**
 * Runs a resolver with the shared checks: its result, or the first option a
 * check rejected. `Server.resolveOptions` and `Client.resolveOptions` are
 * built on it, so a value means the same on both sides.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { Options } from "quasizero"
 * const resolved = Options.validate((check) => ({
 *   timeout: check.timeout("timeout", "5s", Duration.zero),
 *   maxFrameSize: check.frameSize("maxFrameSize", "1MiB", 1 << 24)
 * }))
 * // Result.succeed({ timeout: Duration.seconds(5), maxFrameSize: 1048576 })
 * ```
 *
 * @since 0.2.0
 * @category validation
 */
export const validate = <A>(resolve: (check: Checker) => A): Result.Result<A, Invalid> => {
  try {
    return Result.succeed(resolve(checker))
  } catch (e) {
    if (e instanceof Rejected) return Result.fail(e.invalid)
    throw e
  }
}
