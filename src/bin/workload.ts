/**
 * Benchmark workloads and latency recording, shared by `quasizero bench` and
 * the suite in `bench/`: one definition of what `seq`, `pipe10`, `pipe100`,
 * `conc64` and `echo1k` mean, and one result shape.
 *
 * @since 0.1.0
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Client from "../Client.ts"
import * as Request from "../Request.ts"

/** @since 0.1.0 */
export interface Result {
  readonly workload: string
  readonly client: string
  readonly requests: number
  readonly seconds: number
  readonly rps: number
  /** Latency of one call (seq, conc64, echo1k) or one whole pipeline (pipe10, pipe100), in microseconds. */
  readonly p50us: number
  readonly p99us: number
  readonly errors: number
  /** Every request completed, warm-up included (for CPU per request). */
  readonly total: number
}

/** @since 0.1.0 */
export interface Workload {
  readonly name: string
  /** Concurrent callers. */
  readonly callers: number
  /** Requests written at once by one caller. */
  readonly depth: number
  readonly code: number
  readonly payloadSize: number
}

/** @since 0.1.0 */
export const workloads: Readonly<Record<string, Workload>> = {
  seq: { name: "seq", callers: 1, depth: 1, code: 1, payloadSize: 0 },
  pipe10: { name: "pipe10", callers: 1, depth: 10, code: 1, payloadSize: 0 },
  pipe100: { name: "pipe100", callers: 1, depth: 100, code: 1, payloadSize: 0 },
  conc64: { name: "conc64", callers: 64, depth: 1, code: 1, payloadSize: 0 },
  echo1k: { name: "echo1k", callers: 1, depth: 1, code: 2, payloadSize: 1024 }
}

/** Latency samples; benchmarks measure real time, so `performance.now()` is right here. @since 0.1.0 */
export class Recorder {
  private samples = new Float64Array(1 << 16)
  private count = 0
  requests = 0
  errors = 0
  total = 0
  /** Adds one latency sample (nanoseconds) covering `requests` requests. */
  record(nanos: number, requests: number): void {
    if (this.count === this.samples.length) {
      const grown = new Float64Array(this.samples.length * 2)
      grown.set(this.samples)
      this.samples = grown
    }
    this.samples[this.count++] = nanos
    this.requests += requests
  }
  result(workload: string, client: string, seconds: number): Result {
    const sorted = this.samples.subarray(0, this.count).sort()
    const at = (
      q: number
    ) => (this.count === 0 ? 0 : sorted[Math.min(this.count - 1, Math.floor(q * this.count))]! / 1000)
    return {
      workload,
      client,
      requests: this.requests,
      seconds,
      rps: Math.round(this.requests / seconds),
      p50us: Math.round(at(0.5) * 10) / 10,
      p99us: Math.round(at(0.99) * 10) / 10,
      errors: this.errors,
      total: this.total
    }
  }
}

/**
 * Drives a workload through a `Client`: `callers` fibers in a closed loop,
 * warm-up first, then a measured window. `onProgress` is called about once a
 * second with the requests done so far.
 *
 * @since 0.1.0
 */
export const run = (
  client: Client.Client["Service"],
  workload: Workload,
  options: { readonly warmupMs: number; readonly durationMs: number; readonly onProgress?: (done: number) => void }
): Effect.Effect<Result, Client.ClientError> =>
  Effect.suspend(() => {
    const request = Request.makeUnsafe(workload.code, { payload: new Uint8Array(workload.payloadSize).fill(97) })
    const batch = Array.from({ length: workload.depth }, () => request)
    const recorder = new Recorder()
    const start = performance.now()
    const measureFrom = start + options.warmupMs
    const stopAt = measureFrom + options.durationMs
    let nextProgress = start + 1000
    const once: Effect.Effect<number, Client.ClientError> = workload.depth === 1
      ? Effect.map(client.call(request), (res) => (res.errorMessage === "" ? 0 : 1))
      : Effect.map(client.pipeline(batch), (replies) => replies.filter((r) => r.errorMessage !== "").length)
    const caller = Effect.fnUntraced(function*() {
      while (true) {
        const sent = performance.now()
        if (sent >= stopAt) return
        const errors = yield* once
        const now = performance.now()
        recorder.total += workload.depth
        if (now >= measureFrom) {
          recorder.errors += errors
          recorder.record((now - sent) * 1e6, workload.depth)
        }
        if (options.onProgress && now >= nextProgress) {
          nextProgress = now + 1000
          options.onProgress(recorder.total)
        }
      }
    })
    return Effect.map(
      Effect.all(Array.from({ length: workload.callers }, () => caller()), { concurrency: "unbounded", discard: true }),
      () => recorder.result(workload.name, "quasizero", (performance.now() - measureFrom) / 1000)
    )
  })
