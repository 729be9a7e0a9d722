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
import { InvalidOption, ServerError } from "./ServerError.ts"
import * as Wire from "./Wire.ts"

/**
 * Server options. Durations are `Duration.Input`; 0 or undefined disables a
 * timeout. Every option is optional (see `defaults`).
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
  readonly timeout?: Duration.Input | undefined
  /** Close a connection that sent no request for this long (Go ignores its IdleTimeout). Default: disabled. */
  readonly idleTimeout?: Duration.Input | undefined
  /** SO_KEEPALIVE period, applied by the platform layer (`NodeServer`). Default: disabled. */
  readonly tcpKeepAlive?: Duration.Input | undefined
  /** Largest accepted frame body, in bytes. Default: 16 MiB (Go's limit). */
  readonly maxFrameSize?: number | undefined
  /** Metadata entries per request (duplicates count). Default: 1024. */
  readonly maxMetadataEntries?: number | undefined
  /** Bytes of metadata keys and values per request. Default: 1 MiB. */
  readonly maxMetadataBytes?: number | undefined
  /**
   * Server-wide bytes held in frames being received or handled and in replies
   * not yet taken by the socket. Past it, a new frame over 64 KiB is refused
   * (an error reply, then the connection closes); smaller ones are served.
   * Default: 256 MiB.
   */
  readonly maxBufferedBytes?: number | undefined
  /** Connections beyond this are closed on accept. Default: 16384. */
  readonly maxConnections?: number | undefined
  /** Handlers run at once per connection; replies stay in request order. Default: 1 (Go). */
  readonly concurrency?: number | undefined
  /** How long a closing server waits for requests already read. Default: 10 seconds. */
  readonly shutdownTimeout?: Duration.Input | undefined
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
 * Options with every default applied and durations in milliseconds (0 = off).
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

const invalid = (option: string, value: unknown, expected: string): ServerError =>
  new ServerError({ reason: new InvalidOption({ option, value, expected }) })

const millis = (
  option: string,
  value: Duration.Input | undefined,
  fallback: number
): Effect.Effect<number, ServerError> => {
  if (value === undefined) return Effect.succeed(fallback)
  const decoded = Duration.fromInput(value)
  if (decoded._tag === "None" || Duration.isNegative(decoded.value)) {
    return Effect.fail(invalid(option, value, "a non-negative duration"))
  }
  return Effect.succeed(Duration.toMillis(decoded.value))
}

const count = (
  option: string,
  value: number | undefined,
  fallback: number,
  min: number
): Effect.Effect<number, ServerError> => {
  if (value === undefined) return Effect.succeed(fallback)
  if (value === Infinity || (Number.isSafeInteger(value) && value >= min)) return Effect.succeed(value)
  return Effect.fail(invalid(option, value, `an integer >= ${min}`))
}

/**
 * Validates options and applies defaults, once, when the server is built.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "quasizero"
 * const resolved = Effect.runSync(Server.resolveOptions({ timeout: "5 seconds" }))
 * resolved.timeout // 5000
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveOptions = Effect.fnUntraced(function*(options: Options = {}) {
  const maxFrameSize = yield* count("maxFrameSize", options.maxFrameSize, defaults.maxFrameSize, 1)
  if (maxFrameSize > 2 ** 31 - 1) return yield* invalid("maxFrameSize", maxFrameSize, "at most 2^31 - 1 bytes")
  const maxMetadataEntries = yield* count(
    "maxMetadataEntries",
    options.maxMetadataEntries,
    defaults.decodeLimits.maxMetadataEntries,
    0
  )
  const maxMetadataBytes = yield* count(
    "maxMetadataBytes",
    options.maxMetadataBytes,
    defaults.decodeLimits.maxMetadataBytes,
    0
  )
  return {
    timeout: yield* millis("timeout", options.timeout, defaults.timeout),
    idleTimeout: yield* millis("idleTimeout", options.idleTimeout, defaults.idleTimeout),
    tcpKeepAlive: yield* millis("tcpKeepAlive", options.tcpKeepAlive, defaults.tcpKeepAlive),
    maxFrameSize,
    decodeLimits: options.maxMetadataEntries === undefined && options.maxMetadataBytes === undefined
      ? defaults.decodeLimits
      : { maxMetadataEntries, maxMetadataBytes },
    maxBufferedBytes: yield* count("maxBufferedBytes", options.maxBufferedBytes, defaults.maxBufferedBytes, 1),
    maxConnections: yield* count("maxConnections", options.maxConnections, defaults.maxConnections, 1),
    concurrency: yield* count("concurrency", options.concurrency, defaults.concurrency, 1),
    shutdownTimeout: yield* millis("shutdownTimeout", options.shutdownTimeout, defaults.shutdownTimeout),
    onError: options.onError,
    spans: options.spans === true,
    requestMetrics: options.requestMetrics === true
  } satisfies ResolvedOptions
})

/**
 * Server options read from the environment: `QUASIZERO_TIMEOUT`,
 * `QUASIZERO_IDLE_TIMEOUT`, `QUASIZERO_TCP_KEEP_ALIVE`,
 * `QUASIZERO_MAX_FRAME_SIZE`, `QUASIZERO_MAX_METADATA_ENTRIES`,
 * `QUASIZERO_MAX_METADATA_BYTES`, `QUASIZERO_MAX_BUFFERED_BYTES`,
 * `QUASIZERO_MAX_CONNECTIONS`, `QUASIZERO_CONCURRENCY`,
 * `QUASIZERO_SHUTDOWN_TIMEOUT` (all optional; sizes in bytes).
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
  timeout: Config.option(Config.Duration("QUASIZERO_TIMEOUT")),
  idleTimeout: Config.option(Config.Duration("QUASIZERO_IDLE_TIMEOUT")),
  tcpKeepAlive: Config.option(Config.Duration("QUASIZERO_TCP_KEEP_ALIVE")),
  maxFrameSize: Config.option(Config.Int("QUASIZERO_MAX_FRAME_SIZE")),
  maxMetadataEntries: Config.option(Config.Int("QUASIZERO_MAX_METADATA_ENTRIES")),
  maxMetadataBytes: Config.option(Config.Int("QUASIZERO_MAX_METADATA_BYTES")),
  maxBufferedBytes: Config.option(Config.Int("QUASIZERO_MAX_BUFFERED_BYTES")),
  maxConnections: Config.option(Config.Int("QUASIZERO_MAX_CONNECTIONS")),
  concurrency: Config.option(Config.Int("QUASIZERO_CONCURRENCY")),
  shutdownTimeout: Config.option(Config.Duration("QUASIZERO_SHUTDOWN_TIMEOUT"))
}).pipe(
  Config.map((o): Options => {
    const out: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(o)) if (value._tag === "Some") out[key] = value.value
    return out as Options
  })
)
