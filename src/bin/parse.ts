/**
 * Parsers for command-line values: Go-style durations (`5s`, `150ms`,
 * `1m30s`) as well as Effect's (`5 seconds`), and byte sizes (`16MiB`).
 *
 * @since 0.1.0
 * @internal
 */
import * as Duration from "effect/Duration"

const units: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * Parses a duration into milliseconds; `undefined` when it is not one.
 *
 * @since 0.1.0
 */
export const duration = (input: string): number | undefined => {
  const text = input.trim()
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) // bare number: milliseconds
  const go = /^((\d+(\.\d+)?)(ns|us|µs|ms|s|m|h))+$/.test(text)
  if (go) {
    let total = 0
    for (const [, value, , unit] of text.matchAll(/(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
      total += Number(value) * units[unit!]!
    }
    return total
  }
  const decoded = Duration.fromInput(text as Duration.Input)
  return decoded._tag === "Some" && !Duration.isNegative(decoded.value) ? Duration.toMillis(decoded.value) : undefined
}

const sizes: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1 << 20,
  g: 1e9,
  gb: 1e9,
  gib: 1 << 30
}

/**
 * Parses a byte size (`1048576`, `16MiB`, `64kb`); `undefined` when invalid.
 *
 * @since 0.1.0
 */
export const byteSize = (input: string): number | undefined => {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(input.trim())
  if (!match) return undefined
  const factor = sizes[match[2]!.toLowerCase()]
  if (factor === undefined) return undefined
  const value = Number(match[1]) * factor
  return Number.isSafeInteger(value) ? value : undefined
}

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
