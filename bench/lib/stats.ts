// Latency samples and the one result shape every bench client prints.
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
    const at = (q: number) => (this.count === 0 ? 0 : sorted[Math.min(this.count - 1, Math.floor(q * this.count))]! / 1000)
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

export interface Workload {
  readonly name: string
  /** Concurrent callers (connections for the baseline client). */
  readonly callers: number
  /** Requests written at once by one caller. */
  readonly depth: number
  /** Request code and payload size. */
  readonly code: number
  readonly payloadSize: number
}

export const workloads: Record<string, Workload> = {
  seq: { name: "seq", callers: 1, depth: 1, code: 1, payloadSize: 0 },
  pipe10: { name: "pipe10", callers: 1, depth: 10, code: 1, payloadSize: 0 },
  pipe100: { name: "pipe100", callers: 1, depth: 100, code: 1, payloadSize: 0 },
  conc64: { name: "conc64", callers: 64, depth: 1, code: 1, payloadSize: 0 },
  echo1k: { name: "echo1k", callers: 1, depth: 1, code: 2, payloadSize: 1024 }
}

/** Reads `--name value` pairs from argv. */
export const args = (argv: ReadonlyArray<string>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a.startsWith("--")) out[a.slice(2)] = argv[i + 1] ?? ""
  }
  return out
}

/**
 * Makes a server process report its CPU time on SIGTERM, as a line
 * `cpu <microseconds>`, so the runner can compute CPU per request — a figure
 * far steadier than throughput on a noisy machine.
 */
export const reportCpuOnExit = (): void => {
  const start = process.cpuUsage()
  process.once("SIGTERM", () => {
    const used = process.cpuUsage(start)
    process.stdout.write(`cpu ${used.user + used.system}\n`, () => process.exit(0))
  })
}
