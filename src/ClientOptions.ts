/**
 * Client options: the `Options` users pass, the one `defaults` table, their
 * validation into `ResolvedOptions`, and the `QUASIZERO_*` `Config`.
 * Re-exported by `Client`.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { ClientError, InvalidOption } from "./ClientError.ts"
import * as Wire from "./Wire.ts"

/**
 * Client options; every one is optional (see `defaults`). Durations are
 * `Duration.Input` (`"5 seconds"`, milliseconds as a number); `0` or
 * `Infinity` disables a timeout.
 *
 * - `pool.initialSize`: connections opened up front; `make` fails with the
 *   connect error when one cannot open (Go's `NewClient`). The pool keeps
 *   that many open: one that is closed (reaped, timed out, or closed by the
 *   server) is replaced by a fresh one.
 * - `pool.maxCap`: most connections open at once (raised to `initialSize`,
 *   as bsm/pool does).
 * - `pool.idleTimeout`: close a connection idle that long (0: never). Set
 *   it below the server's idle timeout: the client then always closes an
 *   idle connection before the server does, so no call is ever written on a
 *   connection the server is closing (with no request ids, such a call can
 *   only fail as `ConnectionClosed`, "may have been processed").
 * - `pool.reapInterval`: how often idle connections are looked for; a
 *   connection is closed at the first reap at which it has been idle for
 *   `idleTimeout`.
 * - `pool.refill`: when fewer than `initialSize` connections are open (the
 *   server closed them, an outage, a reap), one background fiber reopens
 *   them one at a time, retrying a failed dial on this schedule (input: the
 *   connect error). Default: 100 ms doubling up to 5 s, ±20 % jitter. A
 *   connection the server closes within 1 s of opening counts as a failed
 *   dial (the backoff goes on); any other close starts a fresh backoff. A
 *   schedule that ends gives up until the next connection closes.
 * - `connectTimeout`: dialing and connecting one connection.
 * - `acquireTimeout`: waiting for a connection with a free slot when all
 *   `maxCap` are full (`AcquireTimeout`: the pool is exhausted).
 * - `requestTimeout`: from the moment a call is queued on its connection to
 *   its reply (`RequestTimeout`: slow handler or stuck server); 60 seconds
 *   by default, so that a silent server (stopped, or a half-open connection
 *   after a partition: no FIN ever comes) fails calls instead of holding
 *   them forever. The connection is then closed, so the other calls on it
 *   fail too (`ConnectionClosed`, `maybeProcessed: true`): with
 *   multiplexing, one slow call takes its connection-mates down with it.
 *   Set it per service to a bit above your slowest handler; `0` waits
 *   forever.
 * - `maxInFlight`: calls one connection carries at once (multiplexing
 *   depth; a pipeline counts once; a call whose caller was interrupted
 *   counts until its reply is read; 1 behaves like Go: one request per
 *   connection at a time).
 * - `maxFrameSize`: largest reply body accepted and request body sent.
 * - `maxMetadataEntries`, `maxMetadataBytes`: most metadata entries, and
 *   most key + value bytes, in one reply (`Wire.defaultDecodeLimits`: 1024
 *   and 1 MiB). Counted while decoding, which stops at the first entry past
 *   a limit: that call fails with `ProtocolError` naming the limit, the
 *   connection stays. A hostile or buggy server then costs the client at
 *   most ~1 MB and a fraction of a millisecond per reply, instead of ~100 MB
 *   and seconds of a frozen event loop. `Infinity` disables a limit.
 * - `retry`: schedule for retrying failures with `maybeProcessed: false`
 *   (connect errors, calls never written); none by default.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const options: Client.Options = {
 *   pool: { maxCap: 4, idleTimeout: "30 seconds" },
 *   requestTimeout: "2 seconds"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly pool?: {
    readonly initialSize?: number | undefined
    readonly maxCap?: number | undefined
    readonly idleTimeout?: Duration.Input | undefined
    readonly reapInterval?: Duration.Input | undefined
    readonly refill?: Schedule.Schedule<unknown, ClientError> | undefined
  } | undefined
  readonly connectTimeout?: Duration.Input | undefined
  readonly acquireTimeout?: Duration.Input | undefined
  readonly requestTimeout?: Duration.Input | undefined
  readonly maxInFlight?: number | undefined
  readonly maxFrameSize?: number | undefined
  readonly maxMetadataEntries?: number | undefined
  readonly maxMetadataBytes?: number | undefined
  readonly retry?: Schedule.Schedule<unknown, ClientError> | undefined
}

/**
 * `Options` with every default applied and every value checked; disabled
 * timeouts are `Duration.zero`.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const resolved: Client.ResolvedOptions = Client.defaults
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedOptions {
  readonly pool: {
    readonly initialSize: number
    readonly maxCap: number
    readonly idleTimeout: Duration.Duration
    readonly reapInterval: Duration.Duration
    readonly refill: Schedule.Schedule<unknown, ClientError>
  }
  readonly connectTimeout: Duration.Duration
  readonly acquireTimeout: Duration.Duration
  readonly requestTimeout: Duration.Duration
  readonly maxInFlight: number
  readonly maxFrameSize: number
  readonly maxMetadataEntries: number
  readonly maxMetadataBytes: number
  readonly retry: Schedule.Schedule<unknown, ClientError> | undefined
}

/**
 * The defaults table, the one place defaults live.
 *
 * | option | default |
 * | --- | --- |
 * | `pool.initialSize` | 1 |
 * | `pool.maxCap` | 10 |
 * | `pool.idleTimeout` | 0 (never) |
 * | `pool.reapInterval` | 1 minute |
 * | `pool.refill` | 100 ms doubling up to 5 s, jittered |
 * | `connectTimeout` | 10 seconds |
 * | `acquireTimeout` | 0 (wait) |
 * | `requestTimeout` | 60 seconds |
 * | `maxInFlight` | 64 |
 * | `maxFrameSize` | 16 MiB |
 * | `maxMetadataEntries` | 1024 |
 * | `maxMetadataBytes` | 1 MiB |
 * | `retry` | none |
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * Client.defaults.pool.maxCap // 10
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: ResolvedOptions = {
  pool: {
    initialSize: 1,
    maxCap: 10,
    idleTimeout: Duration.zero,
    reapInterval: Duration.minutes(1),
    refill: Schedule.exponential("100 millis", 2).pipe(
      Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(5)))),
      Schedule.jittered
    )
  },
  connectTimeout: Duration.seconds(10),
  acquireTimeout: Duration.zero,
  requestTimeout: Duration.seconds(60),
  maxInFlight: 64,
  maxFrameSize: Wire.defaultMaxFrameSize,
  maxMetadataEntries: Wire.defaultDecodeLimits.maxMetadataEntries,
  maxMetadataBytes: Wire.defaultDecodeLimits.maxMetadataBytes,
  retry: undefined
}

class Invalid {
  readonly option: string
  readonly value: unknown
  readonly expected: string
  constructor(option: string, value: unknown, expected: string) {
    this.option = option
    this.value = value
    this.expected = expected
  }
}

const integer = (option: string, value: unknown, fallback: number, min: number, max: number): number => {
  if (value === undefined) return fallback
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new Invalid(
      option,
      value,
      max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`
    )
  }
  return value
}

// A limit: an integer >= 0, or Infinity (no limit).
const limit = (option: string, value: unknown, fallback: number): number =>
  value === Infinity ? Infinity : integer(option, value, fallback, 0, Number.MAX_SAFE_INTEGER)

// A timeout: finite and >= 0; 0 and Infinity mean "disabled" (Duration.zero).
const timeout = (option: string, value: Duration.Input | undefined, fallback: Duration.Duration): Duration.Duration => {
  if (value === undefined) return fallback
  const expected = "a duration >= 0 (0 or Infinity: disabled)"
  if (typeof value === "number" && !(value >= 0)) throw new Invalid(option, value, expected)
  const duration = Duration.fromInput(value)
  if (Option.isNone(duration) || Duration.toMillis(duration.value) < 0) throw new Invalid(option, value, expected)
  return Duration.isFinite(duration.value) ? duration.value : Duration.zero
}

const positiveDuration = (option: string, value: Duration.Input | undefined, fallback: Duration.Duration) => {
  if (value === undefined) return fallback
  const duration = typeof value === "number" && !(value > 0) ? Option.none() : Duration.fromInput(value)
  if (Option.isNone(duration) || !Duration.isFinite(duration.value) || !(Duration.toMillis(duration.value) > 0)) {
    throw new Invalid(option, value, "a finite duration > 0")
  }
  return duration.value
}

/**
 * Applies the defaults and checks every value; fails with `ClientError`
 * (`InvalidOption`, naming the option) on the first bad one.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { Effect } from "effect"
 * const resolved = Effect.runSync(Client.resolveOptions({ pool: { maxCap: 2 } }))
 * resolved.pool.maxCap // 2
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveOptions = (
  options: Options = {},
  address = "(unknown address)"
): Effect.Effect<ResolvedOptions, ClientError> =>
  Effect.suspend(() => {
    try {
      const pool = options.pool ?? {}
      const initialSize = integer("pool.initialSize", pool.initialSize, defaults.pool.initialSize, 0, 1 << 16)
      const maxCap = Math.max(integer("pool.maxCap", pool.maxCap, defaults.pool.maxCap, 1, 1 << 16), initialSize)
      const retry = options.retry
      if (retry !== undefined && !Schedule.isSchedule(retry)) throw new Invalid("retry", retry, "a Schedule")
      const refill = pool.refill ?? defaults.pool.refill
      if (!Schedule.isSchedule(refill)) throw new Invalid("pool.refill", refill, "a Schedule")
      return Effect.succeed<ResolvedOptions>({
        pool: {
          initialSize,
          maxCap,
          idleTimeout: timeout("pool.idleTimeout", pool.idleTimeout, defaults.pool.idleTimeout),
          reapInterval: positiveDuration("pool.reapInterval", pool.reapInterval, defaults.pool.reapInterval),
          refill
        },
        connectTimeout: timeout("connectTimeout", options.connectTimeout, defaults.connectTimeout),
        acquireTimeout: timeout("acquireTimeout", options.acquireTimeout, defaults.acquireTimeout),
        requestTimeout: timeout("requestTimeout", options.requestTimeout, defaults.requestTimeout),
        maxInFlight: integer("maxInFlight", options.maxInFlight, defaults.maxInFlight, 1, 1 << 20),
        maxFrameSize: integer("maxFrameSize", options.maxFrameSize, defaults.maxFrameSize, 1, 2 ** 32),
        maxMetadataEntries: limit("maxMetadataEntries", options.maxMetadataEntries, defaults.maxMetadataEntries),
        maxMetadataBytes: limit("maxMetadataBytes", options.maxMetadataBytes, defaults.maxMetadataBytes),
        retry
      })
    } catch (e) {
      if (!(e instanceof Invalid)) throw e
      return Effect.fail(
        new ClientError({
          reason: new InvalidOption({
            address,
            option: e.option,
            value: e.value,
            expected: e.expected,
            maybeProcessed: false
          })
        })
      )
    }
  })

/**
 * `Options` read from the environment (all optional):
 * `QUASIZERO_POOL_INITIAL_SIZE`, `QUASIZERO_POOL_MAX_CAP`,
 * `QUASIZERO_POOL_IDLE_TIMEOUT`, `QUASIZERO_POOL_REAP_INTERVAL`,
 * `QUASIZERO_CONNECT_TIMEOUT`, `QUASIZERO_ACQUIRE_TIMEOUT`,
 * `QUASIZERO_REQUEST_TIMEOUT`, `QUASIZERO_MAX_IN_FLIGHT`,
 * `QUASIZERO_MAX_FRAME_SIZE`, `QUASIZERO_MAX_METADATA_ENTRIES`,
 * `QUASIZERO_MAX_METADATA_BYTES`. Durations read as `"5 seconds"`.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const ClientLive = Client.layerConfig(Client.config)
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Wrap<Options> = {
  pool: {
    initialSize: Config.Int("QUASIZERO_POOL_INITIAL_SIZE").pipe(Config.withDefault(undefined)),
    maxCap: Config.Int("QUASIZERO_POOL_MAX_CAP").pipe(Config.withDefault(undefined)),
    idleTimeout: Config.Duration("QUASIZERO_POOL_IDLE_TIMEOUT").pipe(Config.withDefault(undefined)),
    reapInterval: Config.Duration("QUASIZERO_POOL_REAP_INTERVAL").pipe(Config.withDefault(undefined))
  },
  connectTimeout: Config.Duration("QUASIZERO_CONNECT_TIMEOUT").pipe(Config.withDefault(undefined)),
  acquireTimeout: Config.Duration("QUASIZERO_ACQUIRE_TIMEOUT").pipe(Config.withDefault(undefined)),
  requestTimeout: Config.Duration("QUASIZERO_REQUEST_TIMEOUT").pipe(Config.withDefault(undefined)),
  maxInFlight: Config.Int("QUASIZERO_MAX_IN_FLIGHT").pipe(Config.withDefault(undefined)),
  maxFrameSize: Config.Int("QUASIZERO_MAX_FRAME_SIZE").pipe(Config.withDefault(undefined)),
  maxMetadataEntries: Config.Int("QUASIZERO_MAX_METADATA_ENTRIES").pipe(Config.withDefault(undefined)),
  maxMetadataBytes: Config.Int("QUASIZERO_MAX_METADATA_BYTES").pipe(Config.withDefault(undefined))
}
