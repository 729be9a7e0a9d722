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
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import { ClientError, InvalidOption } from "./ClientError.ts"
import * as OptionsGrammar from "./Options.ts"
import * as Wire from "./Wire.ts"

/**
 * Client options; every one is optional (see `defaults`). Durations and
 * sizes take the grammar of `Options` (`"5s"`, `"1m30s"`, `5000`,
 * `"5 seconds"`; `"16MiB"`, `65536`), as the server's options, the
 * `QUASIZERO_*` variables and the command line do; `0` or `Infinity`
 * disables a timeout.
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
 * - `maxFrameSize`: largest reply body accepted and request body sent; at
 *   most `Options.maxFrameSizeLimit` (2^31 − 1), as on the server.
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
    readonly idleTimeout?: OptionsGrammar.DurationInput | undefined
    readonly reapInterval?: OptionsGrammar.DurationInput | undefined
    readonly refill?: Schedule.Schedule<unknown, ClientError> | undefined
  } | undefined
  readonly connectTimeout?: OptionsGrammar.DurationInput | undefined
  readonly acquireTimeout?: OptionsGrammar.DurationInput | undefined
  readonly requestTimeout?: OptionsGrammar.DurationInput | undefined
  readonly maxInFlight?: number | undefined
  readonly maxFrameSize?: OptionsGrammar.SizeInput | undefined
  readonly maxMetadataEntries?: number | undefined
  readonly maxMetadataBytes?: OptionsGrammar.SizeInput | undefined
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
    const result = OptionsGrammar.validate((check): ResolvedOptions => {
      const pool = options.pool ?? {}
      const initialSize = check.count("pool.initialSize", pool.initialSize, defaults.pool.initialSize, {
        min: 0,
        max: 1 << 16
      })
      const maxCap = Math.max(
        check.count("pool.maxCap", pool.maxCap, defaults.pool.maxCap, { min: 1, max: 1 << 16 }),
        initialSize
      )
      const retry = options.retry
      if (retry !== undefined && !Schedule.isSchedule(retry)) check.reject("retry", retry, "a Schedule")
      const refill = pool.refill ?? defaults.pool.refill
      if (!Schedule.isSchedule(refill)) check.reject("pool.refill", refill, "a Schedule")
      const unlimited = { min: 0, unlimited: true }
      return {
        pool: {
          initialSize,
          maxCap,
          idleTimeout: check.timeout("pool.idleTimeout", pool.idleTimeout, defaults.pool.idleTimeout),
          reapInterval: check.interval("pool.reapInterval", pool.reapInterval, defaults.pool.reapInterval),
          refill
        },
        connectTimeout: check.timeout("connectTimeout", options.connectTimeout, defaults.connectTimeout),
        acquireTimeout: check.timeout("acquireTimeout", options.acquireTimeout, defaults.acquireTimeout),
        requestTimeout: check.timeout("requestTimeout", options.requestTimeout, defaults.requestTimeout),
        maxInFlight: check.count("maxInFlight", options.maxInFlight, defaults.maxInFlight, { min: 1, max: 1 << 20 }),
        maxFrameSize: check.frameSize("maxFrameSize", options.maxFrameSize, defaults.maxFrameSize),
        maxMetadataEntries: check.count(
          "maxMetadataEntries",
          options.maxMetadataEntries,
          defaults.maxMetadataEntries,
          unlimited
        ),
        maxMetadataBytes: check.size(
          "maxMetadataBytes",
          options.maxMetadataBytes,
          defaults.maxMetadataBytes,
          unlimited
        ),
        retry
      }
    })
    return Result.isSuccess(result)
      ? Effect.succeed(result.success)
      : Effect.fail(
        new ClientError({ reason: new InvalidOption({ address, ...result.failure, maybeProcessed: false }) })
      )
  })

/**
 * `Options` read from the environment (all optional):
 * `QUASIZERO_POOL_INITIAL_SIZE`, `QUASIZERO_POOL_MAX_CAP`,
 * `QUASIZERO_POOL_IDLE_TIMEOUT`, `QUASIZERO_POOL_REAP_INTERVAL`,
 * `QUASIZERO_CONNECT_TIMEOUT`, `QUASIZERO_ACQUIRE_TIMEOUT`,
 * `QUASIZERO_REQUEST_TIMEOUT`, `QUASIZERO_MAX_IN_FLIGHT`,
 * `QUASIZERO_MAX_FRAME_SIZE`, `QUASIZERO_MAX_METADATA_ENTRIES`,
 * `QUASIZERO_MAX_METADATA_BYTES`, in the grammar of `Options`
 * (`QUASIZERO_REQUEST_TIMEOUT=2s`, `=2000` or `="2 seconds"`;
 * `QUASIZERO_MAX_FRAME_SIZE=16MiB`).
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
    initialSize: OptionsGrammar.optional(OptionsGrammar.count("QUASIZERO_POOL_INITIAL_SIZE")),
    maxCap: OptionsGrammar.optional(OptionsGrammar.count("QUASIZERO_POOL_MAX_CAP")),
    idleTimeout: OptionsGrammar.optional(OptionsGrammar.duration("QUASIZERO_POOL_IDLE_TIMEOUT")),
    reapInterval: OptionsGrammar.optional(OptionsGrammar.duration("QUASIZERO_POOL_REAP_INTERVAL"))
  },
  connectTimeout: OptionsGrammar.optional(OptionsGrammar.duration("QUASIZERO_CONNECT_TIMEOUT")),
  acquireTimeout: OptionsGrammar.optional(OptionsGrammar.duration("QUASIZERO_ACQUIRE_TIMEOUT")),
  requestTimeout: OptionsGrammar.optional(OptionsGrammar.duration("QUASIZERO_REQUEST_TIMEOUT")),
  maxInFlight: OptionsGrammar.optional(OptionsGrammar.count("QUASIZERO_MAX_IN_FLIGHT")),
  maxFrameSize: OptionsGrammar.optional(OptionsGrammar.size("QUASIZERO_MAX_FRAME_SIZE")),
  maxMetadataEntries: OptionsGrammar.optional(OptionsGrammar.count("QUASIZERO_MAX_METADATA_ENTRIES")),
  maxMetadataBytes: OptionsGrammar.optional(OptionsGrammar.size("QUASIZERO_MAX_METADATA_BYTES"))
}
