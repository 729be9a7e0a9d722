/**
 * Parsers for command-line values, on the grammar of `Options` (the one the
 * library's options and the `QUASIZERO_*` variables take): Go-style durations
 * (`5s`, `150ms`, `1m30s`), bare milliseconds (`5000`) and Effect's
 * (`5 seconds`); sizes (`16MiB`, `64KB`, `65536`); counts.
 *
 * @since 0.1.0
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Options from "../Options.ts"

/**
 * Parses a duration into milliseconds; `undefined` when it is not one.
 *
 * @since 0.1.0
 */
export const duration = (input: string): number | undefined =>
  Option.getOrUndefined(Option.map(Options.parseDuration(input), Duration.toMillis))

/**
 * Parses a byte size (`1048576`, `16MiB`, `64kb`, `Infinity`); `undefined`
 * when invalid.
 *
 * @since 0.1.0
 */
export const byteSize = (input: string): number | undefined => Option.getOrUndefined(Options.parseSize(input))

/**
 * Parses a count (`1024`, `Infinity`); `undefined` when invalid.
 *
 * @since 0.2.0
 */
export const count = (input: string): number | undefined => Option.getOrUndefined(Options.parseCount(input))

/**
 * Splits `HOST:PORT` (IPv6 as `[::1]:7701`).
 *
 * @since 0.1.0
 */
export const address = (input: string): { readonly host: string; readonly port: number } | undefined => {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(input.trim())
  if (!match) return undefined
  const port = Number(match[2])
  return port <= 65535 ? { host: match[1] || "127.0.0.1", port } : undefined
}
