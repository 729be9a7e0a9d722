// The suite's table: per contender the median of its rounds, and the ratios
// against the baseline and go + go taken round by round (each round's
// contenders ran minutes, not a whole run, apart), as the median and the
// spread (min–max) of those per-round ratios.
import type { Result } from "./stats.ts"

export type Row = Result & { readonly serverCpuUs: number | undefined; readonly clientCpuUs?: number | undefined }

/** Every round of every contender of one workload, in round order (`undefined`: it failed that round). */
export type Rounds = ReadonlyMap<string, ReadonlyArray<Row | undefined>>

export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const medianOf = (rows: ReadonlyArray<Row>, f: (r: Row) => number | undefined, digits: number) => {
  const xs = rows.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x))
  return xs.length === 0 ? undefined : Math.round(median(xs) * 10 ** digits) / 10 ** digits
}

export interface Ratio {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly rounds: number
}

/** `f(a) / f(b)` in each round both ran, summarised. */
export const ratio = (
  a: ReadonlyArray<Row | undefined>,
  b: ReadonlyArray<Row | undefined> | undefined,
  f: (r: Row) => number
): Ratio | undefined => {
  if (b === undefined) return undefined
  const xs: Array<number> = []
  for (let i = 0; i < a.length; i++) {
    const x = a[i]
    const y = b[i]
    if (x !== undefined && y !== undefined && f(y) > 0) xs.push(f(x) / f(y))
  }
  if (xs.length === 0) return undefined
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), rounds: xs.length }
}

const showRatio = (r: Ratio | undefined) =>
  r === undefined
    ? "–"
    : r.rounds === 1
    ? `${r.median.toFixed(2)}×`
    : `${r.median.toFixed(2)}× (${r.min.toFixed(2)}–${r.max.toFixed(2)})`

export interface Summary {
  readonly workload: string
  readonly contender: string
  readonly rounds: number
  readonly rps: number | undefined
  readonly p50us: number | undefined
  readonly p99us: number | undefined
  readonly serverCpuUs: number | undefined
  readonly clientCpuUs: number | undefined
  readonly errors: number
  readonly rpsVsBaseline: Ratio | undefined
  readonly p50VsBaseline: Ratio | undefined
  readonly rpsVsGoGo: Ratio | undefined
}

export const summarise = (workload: string, rounds: Rounds): Array<Summary> =>
  [...rounds].map(([contender, all]) => {
    const rows = all.filter((r): r is Row => r !== undefined)
    return {
      workload,
      contender,
      rounds: rows.length,
      rps: medianOf(rows, (r) => r.rps, 0),
      p50us: medianOf(rows, (r) => r.p50us, 1),
      p99us: medianOf(rows, (r) => r.p99us, 1),
      serverCpuUs: medianOf(rows, (r) => r.serverCpuUs, 2),
      clientCpuUs: medianOf(rows, (r) => r.clientCpuUs, 2),
      errors: rows.reduce((n, r) => n + r.errors, 0),
      rpsVsBaseline: ratio(all, rounds.get("baseline"), (r) => r.rps),
      p50VsBaseline: ratio(all, rounds.get("baseline"), (r) => r.p50us),
      rpsVsGoGo: ratio(all, rounds.get("go + go"), (r) => r.rps)
    }
  })

export const table = (rows: ReadonlyArray<Summary>): string =>
  [
    "| workload | contender | rounds | req/s | p50 µs | p99 µs | CPU µs/req server / client | req/s vs baseline "
    + "| p50 vs baseline | req/s vs go + go |",
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ...rows.map((r) =>
      `| ${r.workload} | ${r.contender} | ${r.rounds} | ${r.rps ?? "–"} | ${r.p50us ?? "–"} | ${r.p99us ?? "–"} | `
      + `${r.serverCpuUs ?? "–"} / ${r.clientCpuUs ?? "–"} | ${showRatio(r.rpsVsBaseline)} | `
      + `${showRatio(r.p50VsBaseline)} | ${showRatio(r.rpsVsGoGo)} |`
    )
  ].join("\n")
