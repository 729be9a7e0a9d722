/**
 * Server options: the `Options` users pass, the one `defaults` table, their
 * validation into `ResolvedOptions`, and the `QUASIZERO_*` `Config`.
 * Re-exported by `Server`.
 *
 * The defaults are chosen for a server reachable by strangers: every limit
 * that bounds memory or CPU a peer can make the server spend is on, at a value
 * no well-behaved client reaches (see `defaults` for what each protects
 * against). Timeouts stay off by default, as in Go: a slow network is not an
 * attack, and deadlines depend on the application.
 *
 * @since 0.2.0
 */
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as OptionsGrammar from "./Options.ts"
import { InvalidOption, ServerError } from "./ServerError.ts"
import * as Wire from "./Wire.ts"

/**
 * Server options, every one optional (see `defaults`). Durations and sizes
 * take the grammar of `Options` (`"5s"`, `"1m30s"`, `5000`, `"5 seconds"`;
 * `"16MiB"`, `65536`), the same as the `QUASIZERO_*` variables and the
 * command line. A timeout is off when `0` or `Infinity`; a limit that takes
 * `Infinity` is then lifted; `shutdownTimeout: Infinity` waits for every
 * request.
 *
 * @example
 * ```ts
 * import { Server } from "quasizero"
 * const options: Server.Options = { timeout: "30 seconds", maxConnections: 1000 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** A frame that has started must complete, and a pending write must drain, within it. Default: disabled. */
  readonly timeout?: OptionsGrammar.DurationInput | undefined
  /** Close a connection that sent no request for this long (Go ignores its IdleTimeout). Default: disabled. */
  readonly idleTimeout?: OptionsGrammar.DurationInput | undefined
  /** SO_KEEPALIVE period, applied by the platform layer (`NodeServer`). Default: disabled. */
  readonly tcpKeepAlive?: OptionsGrammar.DurationInput | undefined
  /** Largest accepted frame body, in bytes. Default: 16 MiB (Go's limit). */
  readonly maxFrameSize?: OptionsGrammar.SizeInput | undefined
  /** Metadata entries per request (duplicates count). Default: 1024. */
  readonly maxMetadataEntries?: number | undefined
  /** Bytes of metadata keys and values per request. Default: 1 MiB. */
  readonly maxMetadataBytes?: OptionsGrammar.SizeInput | undefined
  /**
   * Server-wide bytes held in frames being received or handled and in replies
   * not yet taken by the socket. Past it, a new frame over 64 KiB is refused
   * (an error reply, then the connection closes); smaller ones are served.
   * Default: 256 MiB.
   */
  readonly maxBufferedBytes?: OptionsGrammar.SizeInput | undefined
  /** Connections beyond this are closed on accept. Default: 16384. */
  readonly maxConnections?: number | undefined
  /** Handlers run at once per connection; replies stay in request order. Default: 1 (Go). */
  readonly concurrency?: number | undefined
  /** How long a closing server waits for requests already read. Default: 10 seconds. */
  readonly shutdownTimeout?: OptionsGrammar.DurationInput | undefined
  /** Called with every connection error (they are also logged at debug level). */
  readonly onError?: ((error: ServerError) => Effect.Effect<void>) | undefined
  /** Per-request tracing spans (`quasizero.request`). Default: false, they cost. */
  readonly spans?: boolean | undefined
  /**
   * Per-request metrics: requests by code and the handler duration histogram.
   * Default: false; connection, request and error counts are always kept.
   */
  readonly requestMetrics?: boolean | undefined
}

/**
 * Options with every default applied, sizes in bytes and durations in
 * milliseconds (a timeout of 0 is off: `timeout: Infinity` resolves to 0 too).
 *
 * @example
 * ```ts
 * import { Server } from "quasizero"
 * const resolved: Server.ResolvedOptions = Server.defaults
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedOptions {
  readonly timeout: number
  readonly idleTimeout: number
  readonly tcpKeepAlive: number
  readonly maxFrameSize: number
  /** `maxMetadataEntries` and `maxMetadataBytes`, as the decoder takes them. */
  readonly decodeLimits: Wire.DecodeLimits
  readonly maxBufferedBytes: number
  readonly maxConnections: number
  readonly concurrency: number
  readonly shutdownTimeout: number
  readonly onError: ((error: ServerError) => Effect.Effect<void>) | undefined
  readonly spans: boolean
  readonly requestMetrics: boolean
}

/**
 * The defaults table, the one place defaults live, and what each protects
 * against.
 *
 * | option | default | protects against |
 * | --- | --- | --- |
 * | `timeout` | off | (set it for strangers) a peer that starts a frame and stalls, or never reads |
 * | `idleTimeout` | off | (set it for strangers) idle connections holding slots |
 * | `maxFrameSize` | 16 MiB | one frame's memory (Go's limit) |
 * | `maxMetadataEntries` | 1024 | a frame of tiny keys: ~100 MB of heap and seconds of CPU |
 * | `maxMetadataBytes` | 1 MiB | metadata copied onto the heap per request |
 * | `maxBufferedBytes` | 256 MiB | many peers each pinning a large partial frame or unread reply |
 * | `maxConnections` | 16384 | descriptor exhaustion; the per-connection floor (~20 KB idle, ~0.3 MB flooding) |
 * | `concurrency` | 1 | handlers one connection can run at once |
 * | `shutdownTimeout` | 10 s | a stuck handler holding up shutdown |
 *
 * @example
 * ```ts
 * import { Server } from "quasizero"
 * Server.defaults.maxBufferedBytes // 268435456
 * ```
 *
 * @since 0.2.0
 * @category constants
 */
export const defaults: ResolvedOptions = {
  timeout: 0,
  idleTimeout: 0,
  tcpKeepAlive: 0,
  maxFrameSize: Wire.defaultMaxFrameSize,
  decodeLimits: Wire.defaultDecodeLimits,
  maxBufferedBytes: 256 * 1024 * 1024,
  maxConnections: 16_384,
  concurrency: 1,
  shutdownTimeout: 10_000,
  onError: undefined,
  spans: false,
  requestMetrics: false
}

/**
 * Validates options and applies defaults, once, when the server is built,
 * with the validator `Client.resolveOptions` also uses (`Options.validate`):
 * `maxFrameSize` is at most `Options.maxFrameSizeLimit` (2^31 − 1) on both
 * sides.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "quasizero"
 * const resolved = Effect.runSync(Server.resolveOptions({ timeout: "5s", maxFrameSize: "1MiB" }))
 * resolved.timeout // 5000
 * resolved.maxFrameSize // 1048576
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveOptions = (options: Options = {}): Effect.Effect<ResolvedOptions, ServerError> =>
  Effect.suspend(() => {
    const result = OptionsGrammar.validate((check): ResolvedOptions => {
      const millis = (option: string, value: OptionsGrammar.DurationInput | undefined, fallback: number) =>
        Duration.toMillis(check.timeout(option, value, Duration.millis(fallback)))
      const positiveOrNone = { min: 1, unlimited: true }
      const maxMetadataEntries = check.count(
        "maxMetadataEntries",
        options.maxMetadataEntries,
        defaults.decodeLimits.maxMetadataEntries,
        { min: 0, unlimited: true }
      )
      const maxMetadataBytes = check.size(
        "maxMetadataBytes",
        options.maxMetadataBytes,
        defaults.decodeLimits.maxMetadataBytes,
        { min: 0, unlimited: true }
      )
      return {
        timeout: millis("timeout", options.timeout, defaults.timeout),
        idleTimeout: millis("idleTimeout", options.idleTimeout, defaults.idleTimeout),
        tcpKeepAlive: millis("tcpKeepAlive", options.tcpKeepAlive, defaults.tcpKeepAlive),
        maxFrameSize: check.frameSize("maxFrameSize", options.maxFrameSize, defaults.maxFrameSize),
        decodeLimits: options.maxMetadataEntries === undefined && options.maxMetadataBytes === undefined
          ? defaults.decodeLimits
          : { maxMetadataEntries, maxMetadataBytes },
        maxBufferedBytes: check.size(
          "maxBufferedBytes",
          options.maxBufferedBytes,
          defaults.maxBufferedBytes,
          positiveOrNone
        ),
        maxConnections: check.count("maxConnections", options.maxConnections, defaults.maxConnections, positiveOrNone),
        concurrency: check.count("concurrency", options.concurrency, defaults.concurrency, positiveOrNone),
        shutdownTimeout: Duration.toMillis(
          check.grace("shutdownTimeout", options.shutdownTimeout, Duration.millis(defaults.shutdownTimeout))
        ),
        onError: options.onError,
        spans: options.spans === true,
        requestMetrics: options.requestMetrics === true
      }
    })
    return Result.isSuccess(result)
      ? Effect.succeed(result.success)
      : Effect.fail(new ServerError({ reason: new InvalidOption(result.failure) }))
  })

/**
 * Server options read from the environment: `QUASIZERO_TIMEOUT`,
 * `QUASIZERO_IDLE_TIMEOUT`, `QUASIZERO_TCP_KEEP_ALIVE`,
 * `QUASIZERO_MAX_FRAME_SIZE`, `QUASIZERO_MAX_METADATA_ENTRIES`,
 * `QUASIZERO_MAX_METADATA_BYTES`, `QUASIZERO_MAX_BUFFERED_BYTES`,
 * `QUASIZERO_MAX_CONNECTIONS`, `QUASIZERO_CONCURRENCY`,
 * `QUASIZERO_SHUTDOWN_TIMEOUT` (all optional), in the grammar of `Options`:
 * `QUASIZERO_TIMEOUT=5s`, `QUASIZERO_TIMEOUT=5000` (milliseconds),
 * `QUASIZERO_MAX_FRAME_SIZE=16MiB`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "quasizero"
 * const options = Effect.runSync(Effect.orDie(Server.config))
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  timeout: OptionsGrammar.optional(OptionsGrammar.duration("QUASIZERO_TIMEOUT")),
  idleTimeout: OptionsGrammar.optional(OptionsGrammar.duration("QUASIZERO_IDLE_TIMEOUT")),
  tcpKeepAlive: OptionsGrammar.optional(OptionsGrammar.duration("QUASIZERO_TCP_KEEP_ALIVE")),
  maxFrameSize: OptionsGrammar.optional(OptionsGrammar.size("QUASIZERO_MAX_FRAME_SIZE")),
  maxMetadataEntries: OptionsGrammar.optional(OptionsGrammar.count("QUASIZERO_MAX_METADATA_ENTRIES")),
  maxMetadataBytes: OptionsGrammar.optional(OptionsGrammar.size("QUASIZERO_MAX_METADATA_BYTES")),
  maxBufferedBytes: OptionsGrammar.optional(OptionsGrammar.size("QUASIZERO_MAX_BUFFERED_BYTES")),
  maxConnections: OptionsGrammar.optional(OptionsGrammar.count("QUASIZERO_MAX_CONNECTIONS")),
  concurrency: OptionsGrammar.optional(OptionsGrammar.count("QUASIZERO_CONCURRENCY")),
  shutdownTimeout: OptionsGrammar.optional(OptionsGrammar.duration("QUASIZERO_SHUTDOWN_TIMEOUT"))
}).pipe(
  Config.map((o): Options => {
    const out: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(o)) if (value !== undefined) out[key] = value
    return out as Options
  })
)
