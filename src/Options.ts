/**
 * The one grammar for durations and sizes, shared by the `Server` and
 * `Client` options, their `QUASIZERO_*` environment variables and the
 * `quasizero` command line, and the one validator both sides resolve their
 * options with.
 *
 * - **Durations**: Go's `time.ParseDuration` forms (`5s`, `1m30s`, `250ms`,
 *   `1.5h`, `500us`/`500µs`, `10ns`), a bare number of milliseconds (`5000`),
 *   Effect's strings (`"5 seconds"`, `"Infinity"`) and, in options, any
 *   `Duration.Input` (a `Duration`, a number of milliseconds, ...). No sign:
 *   a negative duration is never valid.
 * - **Sizes**: a whole number of bytes (`65536`), or a number with a unit
 *   (`16MiB`, `64KB`, `1.5 GiB`; case-insensitive, optional space). `KB`,
 *   `MB`, `GB`, `TB` are powers of 1000 and `KiB`, `MiB`, `GiB`, `TiB` powers
 *   of 1024, as in Effect's `Config.ByteSize`; `B` is one byte. The result
 *   must be a whole number of bytes.
 * - **Counts** (connections, entries, concurrency): a whole number.
 * - **Off and unlimited**: for a timeout, `0` and `Infinity` both mean off (no
 *   deadline). A limit that may be lifted takes `Infinity` (no limit); `0`
 *   there is a real limit of zero. `shutdownTimeout` is a grace period, not a
 *   deadline: `0` waits for nothing, `Infinity` waits for every request.
 *
 * Durations in error messages are printed in the same grammar
 * (`formatDuration`: `1m30s`, `250ms`), so a message can be pasted back into
 * an option, a variable or a flag.
 *
 * @since 0.2.0
 */
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as SchemaTransformation from "effect/SchemaTransformation"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * The units of a Go-style duration (`time.ParseDuration`).
 *
 * @example
 * ```ts
 * import { Options } from "quasizero"
 * const unit: Options.GoDurationUnit = "ms"
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type GoDurationUnit = "ns" | "us" | "µs" | "ms" | "s" | "m" | "h"

/**
 * A duration option: any `Duration.Input`, a Go-style string (`"5s"`,
 * `"1m30s"`) or a string of milliseconds (`"5000"`).
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { Options } from "quasizero"
 * const all: ReadonlyArray<Options.DurationInput> = ["5s", "1m30s", "5000", 5000, "5 seconds", Duration.seconds(5)]
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type DurationInput = Duration.Input | `${number}` | `${number}${GoDurationUnit}${string}`

/**
 * The units of a size: decimal (`KB` = 1000) and binary (`KiB` = 1024).
 *
 * @example
 * ```ts
 * import { Options } from "quasizero"
 * const unit: Options.SizeUnit = "MiB"
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type SizeUnit = "B" | "KB" | "KiB" | "MB" | "MiB" | "GB" | "GiB" | "TB" | "TiB"

/**
 * A size option: a number of bytes, or a string such as `"16MiB"`,
 * `"64 KB"` or `"65536"` (units are case-insensitive at run time).
 *
 * @example
 * ```ts
 * import { Options } from "quasizero"
 * const all: ReadonlyArray<Options.SizeInput> = [65536, "65536", "16MiB", "64 KB"]
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type SizeInput = number | `${number}` | `${number}${SizeUnit}` | `${number} ${SizeUnit}`

/**
 * The largest `maxFrameSize` either side accepts: 2^31 − 1 bytes, just under
 * 2 GiB, protobuf's own limit on a message (its lengths are signed 32-bit).
 *
 * @example
 * ```ts
 * import { Options } from "quasizero"
 * Options.maxFrameSizeLimit // 2147483647
 * ```
 *
 * @since 0.2.0
 * @category constants
 */
export const maxFrameSizeLimit: number = 2 ** 31 - 1

// -----------------------------------------------------------------------------
// parsing
// -----------------------------------------------------------------------------

const goUnits: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000
}
const goDuration =
  /^(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h)(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))*$/
const goPiece = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g
const bareMillis = /^\d+(?:\.\d+)?$/

/**
 * Parses a duration written in the grammar: Go-style (`5s`, `1m30s`,
 * `250ms`), bare milliseconds (`5000`), or Effect's (`5 seconds`,
 * `Infinity`). `None` for anything else, negative durations included.
 *
 * @example
 * ```ts
 * import { Duration, Option } from "effect"
 * import { Options } from "quasizero"
 * Options.parseDuration("1m30s").pipe(Option.map(Duration.toMillis)) // Some(90000)
 * Options.parseDuration("5000").pipe(Option.map(Duration.toMillis)) // Some(5000)
 * Options.parseDuration("soon") // None
 * ```
 *
 * @since 0.2.0
 * @category parsing
 */
export const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const trimmed = text.trim()
  if (bareMillis.test(trimmed)) return Option.some(Duration.millis(Number(trimmed)))
  if (goDuration.test(trimmed)) {
    let millis = 0
    for (const [, value, unit] of trimmed.matchAll(goPiece)) millis += Number(value) * goUnits[unit!]!
    return Option.some(Duration.millis(millis))
  }
  return Option.filter(
    Duration.fromInput(trimmed as Duration.Input),
    (duration) => !Duration.isNegative(duration)
  )
}

/**
 * Decodes any `DurationInput`: strings with `parseDuration`, everything else
 * with `Duration.fromInput`. `None` when it is not a duration; a negative
 * number or `Duration` decodes (the validator rejects it).
 *
 * @example
 * ```ts
 * import { Duration, Option } from "effect"
 * import { Options } from "quasizero"
 * Options.decodeDuration("250ms").pipe(Option.map(Duration.toMillis)) // Some(250)
 * Options.decodeDuration(1500).pipe(Option.map(Duration.toMillis)) // Some(1500)
 * ```
 *
 * @since 0.2.0
 * @category parsing
 */
export const decodeDuration = (input: DurationInput): Option.Option<Duration.Duration> => {
  if (typeof input === "string") return parseDuration(input)
  if (typeof input === "number" && Number.isNaN(input)) return Option.none()
  return Duration.fromInput(input)
}

const sizeUnits: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  kib: 1024,
  mb: 1e6,
  mib: 1024 ** 2,
  gb: 1e9,
  gib: 1024 ** 3,
  tb: 1e12,
  tib: 1024 ** 4
}
const sizePattern = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i

/**
 * Parses a size: whole bytes (`65536`), or a number with a unit (`16MiB`,
 * `64KB`, `1.5 GiB`; `KB` = 1000, `KiB` = 1024; case-insensitive), or
 * `Infinity`. `None` when it is not one, or not a whole number of bytes.
 *
 * @example
 * ```ts
 * import { Options } from "quasizero"
 * Options.parseSize("16MiB") // Some(16777216)
 * Options.parseSize("64KB") // Some(64000)
 * Options.parseSize("1.5B") // None
 * ```
 *
 * @since 0.2.0
 * @category parsing
 */
export const parseSize = (text: string): Option.Option<number> => {
  const trimmed = text.trim()
  if (trimmed === "Infinity") return Option.some(Infinity)
  const match = sizePattern.exec(trimmed)
  if (match === null) return Option.none()
  const factor = sizeUnits[match[2]!.toLowerCase()]
  if (factor === undefined) return Option.none()
  const bytes = Number(match[1]) * factor
  return Number.isSafeInteger(bytes) ? Option.some(bytes) : Option.none()
}

/**
 * Parses a count: a whole number, or `Infinity`.
 *
 * @example
 * ```ts
 * import { Options } from "quasizero"
 * Options.parseCount("1024") // Some(1024)
 * Options.parseCount("1.5") // None
 * ```
 *
 * @since 0.2.0
 * @category parsing
 */
export const parseCount = (text: string): Option.Option<number> => {
  const trimmed = text.trim()
  if (trimmed === "Infinity") return Option.some(Infinity)
  if (!/^\d+$/.test(trimmed)) return Option.none()
  const n = Number(trimmed)
  return Number.isSafeInteger(n) ? Option.some(n) : Option.none()
}

/**
 * Prints a duration in the grammar, Go's way: `1m30s`, `250ms`, `1h0m5s`
 * becomes `1h5s`, `1ms500µs`, `0`, `Infinity`. `parseDuration` reads it back.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { Options } from "quasizero"
 * Options.formatDuration(Duration.seconds(90)) // "1m30s"
 * Options.formatDuration(250) // "250ms"
 * ```
 *
 * @since 0.2.0
 * @category formatting
 */
export const formatDuration = (input: Duration.Input): string => {
  const duration = Duration.fromInputUnsafe(input)
  if (duration.value._tag === "Infinity") return "Infinity"
  if (duration.value._tag === "NegativeInfinity") return "-Infinity"
  let nanos = Duration.toNanosUnsafe(duration)
  if (nanos === 0n) return "0"
  const sign = nanos < 0n ? "-" : ""
  if (nanos < 0n) nanos = -nanos
  let out = ""
  for (const [unit, size] of formatUnits) {
    if (nanos >= size) {
      out += `${nanos / size}${unit}`
      nanos %= size
    }
  }
  return sign + out
}
const formatUnits: ReadonlyArray<readonly [string, bigint]> = [
  ["h", 3_600_000_000_000n],
  ["m", 60_000_000_000n],
  ["s", 1_000_000_000n],
  ["ms", 1_000_000n],
  ["µs", 1_000n],
  ["ns", 1n]
]

// -----------------------------------------------------------------------------
// config
// -----------------------------------------------------------------------------

const durationHelp = 'a duration such as 5s, 1m30s, 250ms, 5000 (milliseconds) or "5 seconds"'
const sizeHelp = "a size such as 65536, 64KB (1000s) or 16MiB (1024s)"
const countHelp = "a whole number"

const fromText = <A>(
  target: Schema.Codec<A, A>,
  parse: (text: string) => Option.Option<A>,
  help: string,
  print: (a: A) => string
) =>
  Schema.String.pipe(Schema.decodeTo(
    target,
    SchemaTransformation.transformEffect<A, string>({
      decode: (text, options) =>
        Option.match(parse(text), {
          onNone: () =>
            Effect.fail(
              new SchemaIssue.InvalidValue({ message: `expected ${help}, got ${JSON.stringify(text)}` }, text, options)
            ),
          onSome: Effect.succeed
        }),
      encode: (a) => Effect.succeed(print(a))
    })
  ))

const DurationFromText = fromText(Schema.Duration, parseDuration, durationHelp, formatDuration)
const SizeFromText = fromText(Schema.Number, parseSize, sizeHelp, String)
const CountFromText = fromText(Schema.Number, parseCount, countHelp, String)

/**
 * A `Config` for a duration in the grammar (`5s`, `1m30s`, `5000`,
 * `"5 seconds"`); Effect's `Config.Duration` takes only the last form.
 *
 * @example
 * ```ts
 * import { Config, ConfigProvider, Duration, Effect } from "effect"
 * import { Client, Options } from "quasizero"
 * const timeout = Options.duration("QUASIZERO_TIMEOUT")
 * const provider = ConfigProvider.fromEnv({ env: { QUASIZERO_TIMEOUT: "1m30s" } })
 * Effect.runSync(timeout.parse(provider)).pipe(Duration.toMillis) // 90000
 * const ClientLive = Client.layerConfig({ ...Client.config, requestTimeout: Options.duration("MY_TIMEOUT") })
 * ```
 *
 * @since 0.2.0
 * @category config
 */
export const duration = (name?: string): Config.Config<Duration.Duration> => Config.schema(DurationFromText, name)

/**
 * A `Config` for a size in bytes (`65536`, `64KB`, `16MiB`, `Infinity`).
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import { Options } from "quasizero"
 * const provider = ConfigProvider.fromEnv({ env: { QUASIZERO_MAX_FRAME_SIZE: "16MiB" } })
 * Effect.runSync(Options.size("QUASIZERO_MAX_FRAME_SIZE").parse(provider)) // 16777216
 * ```
 *
 * @since 0.2.0
 * @category config
 */
export const size = (name?: string): Config.Config<number> => Config.schema(SizeFromText, name)

/**
 * A `Config` for a count: a whole number, or `Infinity` (no limit, where the
 * option allows it).
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import { Options } from "quasizero"
 * const provider = ConfigProvider.fromEnv({ env: { QUASIZERO_MAX_CONNECTIONS: "1000" } })
 * Effect.runSync(Options.count("QUASIZERO_MAX_CONNECTIONS").parse(provider)) // 1000
 * ```
 *
 * @since 0.2.0
 * @category config
 */
export const count = (name?: string): Config.Config<number> => Config.schema(CountFromText, name)

/**
 * An optional config: `undefined` when the variable is not set, for the
 * `Config.Wrap<Options>` records of `Server.config` and `Client.config`.
 *
 * @example
 * ```ts
 * import { Options } from "quasizero"
 * const timeout = Options.optional(Options.duration("QUASIZERO_TIMEOUT"))
 * ```
 *
 * @since 0.2.0
 * @category config
 */
export const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.withDefault(config, undefined)

export * from "./OptionsValidate.ts"
