/**
 * A pooled quasizero client, byte-compatible with Go's bsm/quasizero server.
 * Replies come in request order on each connection and order is the only
 * correlation, so a connection that saw an I/O error, a protocol error or a
 * request timeout is closed and never reused (unlike Go, which puts a broken
 * connection back into its pool). Requests that may have reached the server
 * are never replayed; those that provably did not (`maybeProcessed: false`)
 * may be retried with the `retry` schedule.
 *
 * A `Client` is a `Pool` of connections (`Pool.makeWithStrategy`, with
 * `concurrency` = `maxInFlight`): several concurrent callers share one
 * connection (multiplexing; their requests are written coalesced and answered
 * in order), and a new connection opens only when every open one is full.
 * The transport is a `Dialer` service (`NodeClient.layer` on Node); the
 * client itself imports only `effect`.
 *
 * Gotchas:
 * - interrupting a call does not cancel it on the server: a written request
 *   keeps its place in its connection's FIFO and its reply is dropped (so
 *   the connection stays usable); a request still queued is sent anyway;
 * - with multiplexing, replies on a connection come in request order, so a
 *   slow request delays the calls queued behind it on the same connection
 *   (set `maxInFlight: 1` for one request per connection, like Go).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Pool from "effect/Pool"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type * as Socket from "effect/socket/Socket"
import * as ClientConnection from "./ClientConnection.ts"
import { AcquireTimeout, ClientError, ConnectFailed, ConnectTimeout, InvalidOption, PoolClosed } from "./ClientError.ts"
import * as Command from "./Command.ts"
import type * as Message from "./Message.ts"
import type * as Request from "./Request.ts"
import type * as Response from "./Response.ts"
import * as Wire from "./Wire.ts"

export {
  /**
   * @since 0.1.0
   * @category errors
   */
  AcquireTimeout,
  /**
   * @since 0.1.0
   * @category errors
   */
  ClientError,
  /**
   * @since 0.1.0
   * @category errors
   */
  ConnectFailed,
  /**
   * @since 0.1.0
   * @category errors
   */
  ConnectTimeout,
  /**
   * @since 0.1.0
   * @category errors
   */
  InvalidOption,
  /**
   * @since 0.1.0
   * @category errors
   */
  PoolClosed
}
export {
  /**
   * @since 0.1.0
   * @category errors
   */
  type ClientErrorReason,
  /**
   * @since 0.1.0
   * @category errors
   */
  ConnectionClosed,
  /**
   * @since 0.1.0
   * @category guards
   */
  isClientError,
  /**
   * @since 0.1.0
   * @category errors
   */
  ProtocolError,
  /**
   * @since 0.1.0
   * @category errors
   */
  RequestTimeout,
  /**
   * @since 0.1.0
   * @category errors
   */
  RequestTooLarge
} from "./ClientError.ts"

// -----------------------------------------------------------------------------
// remote errors
// -----------------------------------------------------------------------------

/**
 * A reply whose `errorMessage` is set, as a failure. Like Go, `call` returns
 * such a reply as data; `ensureOk` turns it into this error for those who
 * want one. The whole reply (payload and metadata too) is kept.
 *
 * @example
 * ```ts
 * import { Client, Response } from "quasizero"
 * const error = new Client.RemoteError({ response: Response.error("boom") })
 * error.message // "boom"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class RemoteError extends Data.TaggedError("RemoteError")<{ readonly response: Response.Response }> {
  override get message(): string {
    return this.response.errorMessage
  }
}

/**
 * Succeeds with the reply when its `errorMessage` is empty, fails with
 * `RemoteError` otherwise.
 *
 * @example
 * ```ts
 * import { Client, Request } from "quasizero"
 * import { Effect } from "effect"
 * const pong = Client.call(Request.make(1)).pipe(Effect.flatMap(Client.ensureOk))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const ensureOk = (response: Response.Response): Effect.Effect<Response.Response, RemoteError> =>
  response.errorMessage.length === 0 ? Effect.succeed(response) : Effect.fail(new RemoteError({ response }))

// -----------------------------------------------------------------------------
// dialer
// -----------------------------------------------------------------------------

/**
 * The transport: how to open one connection. `dial` runs in the
 * connection's scope and yields a `Socket`; the client then acquires the
 * socket's `reader` (a Node socket connects at that moment) and `writer`.
 * `address` names the server in errors. Go's `NewClientDialer` is a custom
 * `Dialer`.
 *
 * **Details**
 *
 * `NodeClient.layer({ host, port })` / `{ path }` dial TCP / Unix sockets and
 * `NodeClient.layerTls` dials TLS. For anything else (a proxy, a tunnel, a
 * test transport) provide a `Dialer` whose `dial` builds the socket: e.g. open
 * a `Duplex` through an HTTP `CONNECT` proxy and wrap it with
 * `NodeSocket.fromDuplex`, or use `NodeSocket.makeTls({ socket, ... })` over
 * an already-connected stream. `connectTimeout` covers `dial` and the
 * connect.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { NodeSocket } from "@effect/platform-node"
 * import { Layer } from "effect"
 *
 * // TLS by hand (NodeClient.layerTls does the same):
 * const TlsDialer = Layer.succeed(Client.Dialer)({
 *   address: "db.internal:7475",
 *   dial: NodeSocket.makeTls({ host: "db.internal", port: 7475, servername: "db.internal" })
 * })
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class Dialer extends Context.Service<Dialer, {
  readonly address: string
  readonly dial: Effect.Effect<Socket.Socket, Socket.SocketError, Scope.Scope>
}>()("quasizero/Client/Dialer") {}

// -----------------------------------------------------------------------------
// options
// -----------------------------------------------------------------------------

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
 * - `connectTimeout`: dialing and connecting one connection.
 * - `acquireTimeout`: waiting for a connection with a free slot when all
 *   `maxCap` are full (`AcquireTimeout`: the pool is exhausted).
 * - `requestTimeout`: from the moment a call is queued on its connection to
 *   its reply (`RequestTimeout`: slow handler or stuck server). The
 *   connection is then closed, so the other calls on it fail too
 *   (`ConnectionClosed`, `maybeProcessed: true`): with multiplexing, one
 *   slow call takes its connection-mates down with it.
 * - `maxInFlight`: calls one connection carries at once (multiplexing
 *   depth; a pipeline counts once; 1 behaves like Go: one request per
 *   connection at a time).
 * - `maxFrameSize`: largest reply body accepted and request body sent.
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
  } | undefined
  readonly connectTimeout?: Duration.Input | undefined
  readonly acquireTimeout?: Duration.Input | undefined
  readonly requestTimeout?: Duration.Input | undefined
  readonly maxInFlight?: number | undefined
  readonly maxFrameSize?: number | undefined
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
  }
  readonly connectTimeout: Duration.Duration
  readonly acquireTimeout: Duration.Duration
  readonly requestTimeout: Duration.Duration
  readonly maxInFlight: number
  readonly maxFrameSize: number
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
 * | `connectTimeout` | 10 seconds |
 * | `acquireTimeout` | 0 (wait) |
 * | `requestTimeout` | 0 (wait) |
 * | `maxInFlight` | 64 |
 * | `maxFrameSize` | 16 MiB |
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
    reapInterval: Duration.minutes(1)
  },
  connectTimeout: Duration.seconds(10),
  acquireTimeout: Duration.zero,
  requestTimeout: Duration.zero,
  maxInFlight: 64,
  maxFrameSize: Wire.defaultMaxFrameSize,
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
      return Effect.succeed<ResolvedOptions>({
        pool: {
          initialSize,
          maxCap,
          idleTimeout: timeout("pool.idleTimeout", pool.idleTimeout, defaults.pool.idleTimeout),
          reapInterval: positiveDuration("pool.reapInterval", pool.reapInterval, defaults.pool.reapInterval)
        },
        connectTimeout: timeout("connectTimeout", options.connectTimeout, defaults.connectTimeout),
        acquireTimeout: timeout("acquireTimeout", options.acquireTimeout, defaults.acquireTimeout),
        requestTimeout: timeout("requestTimeout", options.requestTimeout, defaults.requestTimeout),
        maxInFlight: integer("maxInFlight", options.maxInFlight, defaults.maxInFlight, 1, 1 << 20),
        maxFrameSize: integer("maxFrameSize", options.maxFrameSize, defaults.maxFrameSize, 1, 2 ** 32),
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
 * `QUASIZERO_MAX_FRAME_SIZE`. Durations read as `"5 seconds"`.
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
  maxFrameSize: Config.Int("QUASIZERO_MAX_FRAME_SIZE").pipe(Config.withDefault(undefined))
}

// -----------------------------------------------------------------------------
// service
// -----------------------------------------------------------------------------

/**
 * Replies of a pipeline, in request order (Go's `ResponseBatch`).
 *
 * @example
 * ```ts
 * import { Client, Response } from "quasizero"
 * const texts = (batch: Client.ResponseBatch) => batch.map(Response.text)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type ResponseBatch = ReadonlyArray<Response.Response>

/**
 * A snapshot of the pool.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { Effect } from "effect"
 * const open = Client.Client.use((client) => client.stats).pipe(
 *   Effect.map((stats) => stats.open)
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** Connections open. */
  readonly open: number
  /** Connections with no request in flight. */
  readonly idle: number
  /** Requests written or queued on the connections and not yet answered. */
  readonly inflight: number
  /** Callers waiting for a connection. */
  readonly waiting: number
}

/**
 * The client service. `call` and `pipeline` are the hot path: plain
 * functions, no span per call.
 *
 * @example
 * ```ts
 * import { Client, Request, Response } from "quasizero"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const client = yield* Client.Client
 *   const res = yield* client.call(Request.make(2, { payload: "hi" }))
 *   return Response.text(res) // "hi"
 * })
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class Client extends Context.Service<Client, {
  /** The server address (from the `Dialer`). */
  readonly address: string
  /** Sends one request on a pooled connection; the reply's `errorMessage` is data. */
  readonly call: (request: Request.Request) => Effect.Effect<Response.Response, ClientError>
  /** Sends the requests in one write on one connection; replies in order. */
  readonly pipeline: (requests: ReadonlyArray<Request.Request>) => Effect.Effect<ResponseBatch, ClientError>
  /**
   * Runs a typed command: encodes the input, calls, and decodes the reply;
   * fails with the command's own typed error when the server sent one.
   */
  readonly run: <I, A, E>(
    command: Command.Command<I, A, E>,
    input: I,
    metadata?: Message.MetadataInput | undefined
  ) => Effect.Effect<A, E | Command.CommandError | ClientError>
  /** Pool statistics. */
  readonly stats: Effect.Effect<Stats>
}>()("quasizero/Client") {}

type Connection = ClientConnection.Connection

// Go's reaper: every `reapInterval` (a `Schedule`), close the connections
// idle for at least `idleTimeout`. Those of the `initialSize` floor too: the
// pool replaces them with fresh ones, so that no connection, floor or not,
// stays idle long enough for the server's own idle timeout to close it under
// a call. `Pool.makeWithTTL` cannot express the pair: its usage strategy
// checks every `timeToLive`, so a connection idle for `ttl` closes anywhere
// between `ttl` and `2 * ttl`, with no separate period. Idle time is `Pool`'s
// own `idleSince`, read on the pool's Clock.
const reaper = (
  idleTimeout: Duration.Duration,
  reapInterval: Duration.Duration,
  clock: Clock.Clock
): Pool.Strategy<Connection, ClientError> => {
  const idleMillis = Duration.toMillis(idleTimeout)
  const reap = (pool: Pool.Pool<Connection, ClientError>): Effect.Effect<void> =>
    Effect.suspend(() => {
      const state = pool.state
      const expired = clock.currentTimeMillisUnsafe() - idleMillis
      const victims: Array<Connection> = []
      for (const item of state.items) {
        if (item.exit._tag !== "Success" || item.refCount > 0 || state.invalidated.has(item)) continue
        if (item.idleSince > expired) continue
        victims.push(item.exit.value)
      }
      return Effect.forEach(victims, (connection) => Pool.invalidate(pool, connection), { discard: true })
    })
  return {
    run: (pool) =>
      idleMillis === 0 ? Effect.void : Effect.asVoid(Effect.schedule(reap(pool), Schedule.spaced(reapInterval))),
    onAcquire: () => Effect.void,
    reclaim: () => Effect.undefined
  }
}

/**
 * Builds a client in the current scope: opens `pool.initialSize` connections
 * (failing with their `ConnectFailed` / `ConnectTimeout` when the server is
 * down), then serves calls. Closing the scope fails every pending call with
 * `PoolClosed` and closes every connection.
 *
 * @example
 * ```ts
 * import { Client, Request } from "quasizero"
 * import { NodeClient } from "quasizero/node"
 * import { Effect } from "effect"
 * const program = Effect.gen(function*() {
 *   const client = yield* Client.make({ pool: { maxCap: 4 } })
 *   return yield* client.call(Request.make(1))
 * }).pipe(Effect.scoped, Effect.provide(NodeClient.layer({ host: "127.0.0.1", port: 7475 })))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: Options | undefined
) => Effect.Effect<Client["Service"], ClientError, Scope.Scope | Dialer> = Effect.fn("Quasizero.Client.make")(
  function*(options?: Options | undefined) {
    const dialer = yield* Dialer
    const address = dialer.address
    const resolved = yield* resolveOptions(options, address)
    // The client's own scope, closed at once if `make` fails.
    const scope = yield* Scope.fork(yield* Effect.scope)
    const clock = yield* Clock.Clock
    const { initialSize, maxCap, idleTimeout, reapInterval } = resolved.pool

    let closed = false
    let pool: Pool.Pool<Connection, ClientError> | undefined
    const connections = new Set<Connection>()

    const onClose = (connection: Connection): Effect.Effect<void> =>
      closed || pool === undefined
        ? Effect.void
        // Forked: invalidating an idle connection closes its scope, which
        // waits for the fiber that is running this.
        : Effect.asVoid(Effect.forkIn(Pool.invalidate(pool, connection), scope, { startImmediately: true }))
    const connectionConfig: ClientConnection.Config = {
      address,
      maxFrameSize: resolved.maxFrameSize,
      requestTimeout: resolved.requestTimeout,
      onClose
    }

    const connectFailed = (cause: unknown) =>
      new ClientError({ reason: new ConnectFailed({ address, cause, maybeProcessed: false }) })
    const connectTimedOut = Effect.fail(
      new ClientError({
        reason: new ConnectTimeout({ address, timeout: resolved.connectTimeout, maybeProcessed: false })
      })
    )
    const connect = Effect.mapError(
      Effect.flatMap(dialer.dial, (socket) => ClientConnection.make(socket, connectionConfig)),
      connectFailed
    )
    const open = Duration.isZero(resolved.connectTimeout)
      ? connect
      : Effect.timeoutOrElse(connect, { duration: resolved.connectTimeout, orElse: () => connectTimedOut })

    // The first `initialSize` connections settle `ready`: `make` fails fast
    // with the first one's error.
    const ready = Deferred.makeUnsafe<void, ClientError>()
    let initialPending = initialSize
    const settle = (exit: Exit.Exit<Connection, ClientError>) =>
      Effect.sync(() => {
        if (initialPending === 0) return
        if (Exit.isFailure(exit)) {
          initialPending = 0
          Deferred.doneUnsafe(ready, Exit.failCause(exit.cause))
        } else if (--initialPending === 0) Deferred.doneUnsafe(ready, Exit.void)
      })
    const acquire = Effect.onExit(
      Effect.tap(open, (connection) => {
        connections.add(connection)
        return Effect.addFinalizer(() => Effect.sync(() => connections.delete(connection)))
      }),
      settle
    )

    const created = yield* Scope.provide(
      Pool.makeWithStrategy({
        acquire,
        min: initialSize,
        max: maxCap,
        concurrency: resolved.maxInFlight,
        strategy: reaper(idleTimeout, reapInterval, clock)
      }),
      scope
    )
    pool = created
    // Added after the pool's own finalizer, so it runs first: pending calls
    // fail with PoolClosed and release their connections, then the pool
    // shuts down.
    yield* Scope.addFinalizer(
      scope,
      Effect.suspend(() => {
        closed = true
        return Effect.forEach(Array.from(connections), (c) => c.shutdown(), { discard: true })
      })
    )
    if (initialSize > 0) yield* Effect.onError(Deferred.await(ready), () => Scope.close(scope, Exit.void))

    const poolClosed = Effect.fail(new ClientError({ reason: new PoolClosed({ address, maybeProcessed: false }) }))
    const acquireTimedOut = Effect.fail(
      new ClientError({
        reason: new AcquireTimeout({ address, timeout: resolved.acquireTimeout, maybeProcessed: false })
      })
    )
    const get = Duration.isZero(resolved.acquireTimeout)
      ? Pool.get(created)
      : Effect.timeoutOrElse(Pool.get(created), { duration: resolved.acquireTimeout, orElse: () => acquireTimedOut })
    // Pool interrupts its waiters when it shuts down: report that as PoolClosed.
    const onWaitFailure = (cause: Cause.Cause<ClientError>) =>
      closed && Cause.hasInterruptsOnly(cause) ? poolClosed : Effect.failCause(cause)

    // Runs `f` on a connection with a free slot. A connection is leased for
    // as long as `f` runs, so the pool's `concurrency` bounds its requests.
    const use = <A>(f: (connection: Connection) => Effect.Effect<A, ClientError>): Effect.Effect<A, ClientError> =>
      Effect.suspend(() => {
        if (closed) return poolClosed
        const state = created.state
        if (state.waiters.size === 0 && state.availableHead?.exit._tag === "Success") return Pool.use(created, f)
        return Effect.catchCause(Effect.scoped(Effect.flatMap(get, f)), onWaitFailure)
      })

    // A connection found closed before anything was written on it has not
    // been invalidated yet: drop it and try another one.
    const callOnce = (request: Request.Request): Effect.Effect<Response.Response, ClientError> =>
      use((connection) =>
        connection.state === "open"
          ? connection.call(request)
          : Effect.andThen(Pool.invalidate(created, connection), callOnce(request))
      )
    const pipelineOnce = (requests: ReadonlyArray<Request.Request>): Effect.Effect<ResponseBatch, ClientError> =>
      use((connection) =>
        connection.state === "open"
          ? connection.pipeline(requests)
          : Effect.andThen(Pool.invalidate(created, connection), pipelineOnce(requests))
      )
    const pipelineAny = (requests: ReadonlyArray<Request.Request>): Effect.Effect<ResponseBatch, ClientError> =>
      requests.length === 0 ? Effect.succeed([]) : pipelineOnce(requests)

    const retry = resolved.retry
    const retryOptions = retry === undefined ? undefined : {
      schedule: retry,
      while: (error: ClientError) => !error.maybeProcessed
    }

    const call = retryOptions === undefined
      ? callOnce
      : (request: Request.Request) => Effect.retry(callOnce(request), retryOptions)

    return Client.of({
      address,
      call,
      pipeline: retryOptions === undefined
        ? pipelineAny
        : (requests) => Effect.retry(pipelineAny(requests), retryOptions),
      run: (command, input, metadata) =>
        Effect.flatMap(
          Command.request(command, input, metadata),
          (request) => Effect.flatMap(call(request), (response) => Command.decodeResponse(command, response))
        ),
      stats: Effect.map(Pool.stats(created), (stats) => {
        let inflight = 0
        for (const connection of connections) inflight += connection.inflightCount + connection.queuedCount
        return { open: connections.size, idle: stats.idle, inflight, waiting: stats.pending }
      })
    })
  }
)

/**
 * The client as a layer; needs a `Dialer` (`NodeClient.layer`).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { NodeClient } from "quasizero/node"
 * import { Layer } from "effect"
 * const ClientLive = Client.layer({ requestTimeout: "5 seconds" }).pipe(
 *   Layer.provide(NodeClient.layer({ host: "127.0.0.1", port: 7475 }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options | undefined): Layer.Layer<Client, ClientError, Dialer> =>
  Layer.effect(Client)(make(options))

/**
 * The client as a layer reading its options from `Config` (default:
 * `Client.config`, the `QUASIZERO_*` environment variables).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { Config } from "effect"
 * const ClientLive = Client.layerConfig({
 *   ...Client.config,
 *   requestTimeout: Config.succeed("2 seconds")
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Wrap<Options> = config
): Layer.Layer<Client, ClientError | Config.ConfigError, Dialer> =>
  Layer.effect(Client)(Effect.flatMap(Config.unwrap(options), make))

// -----------------------------------------------------------------------------
// accessors
// -----------------------------------------------------------------------------

/**
 * Sends one request with the `Client` in context.
 *
 * @example
 * ```ts
 * import { Client, Request } from "quasizero"
 * const pong = Client.call(Request.make(1))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const call = (request: Request.Request): Effect.Effect<Response.Response, ClientError, Client> =>
  Client.use((client) => client.call(request))

/**
 * Sends requests in one write on one connection with the `Client` in
 * context; replies in order.
 *
 * @example
 * ```ts
 * import { Client, Request } from "quasizero"
 * const both = Client.pipeline([Request.make(1), Request.make(2, { payload: "x" })])
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const pipeline = (
  requests: ReadonlyArray<Request.Request>
): Effect.Effect<ResponseBatch, ClientError, Client> => Client.use((client) => client.pipeline(requests))

/**
 * Runs a typed command with the `Client` in context: the decoded success, the
 * command's own typed error, a `CommandError` (schema mismatch, or an error
 * reply that is not the command's), or a `ClientError` (transport).
 *
 * @example
 * ```ts
 * import { Client, Command } from "quasizero"
 * import { Schema } from "effect"
 * const Echo = Command.make("Echo", { code: 2, payload: Schema.String, success: Schema.String })
 * const hello = Client.run(Echo, "hello") // Effect<string, CommandError | ClientError, Client>
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const run = <I, A, E>(
  command: Command.Command<I, A, E>,
  input: I,
  metadata?: Message.MetadataInput | undefined
): Effect.Effect<A, E | Command.CommandError | ClientError, Client> =>
  Client.use((client) => client.run(command, input, metadata))
