/**
 * One pool's client: the connection factory (dial, connect timeout), the
 * pool and its fibers (reaper, acquire watchdog, request timeout sweeper,
 * refill), the `initialSize` floor, and `call` / `pipeline` as callbacks
 * into the pool. Internal to `Client` (`Client.make` and `Endpoints` build
 * with it).
 *
 * @since 0.1.0
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as ClientConnection from "./ClientConnection.ts"
import { ConnectTimer } from "./ClientConnectTimer.ts"
import { ClientError, ConnectFailed, ConnectTimeout } from "./ClientError.ts"
import { fill } from "./ClientFill.ts"
import type { ResolvedOptions } from "./ClientOptions.ts"
import * as ClientPool from "./ClientPool.ts"
import { Client, type ResponseBatch } from "./ClientService.ts"
import * as ClientTransport from "./ClientTransport.ts"
import * as Command from "./Command.ts"
import type { Dialer } from "./Dialer.ts"
import type * as Request from "./Request.ts"
import type * as Response from "./Response.ts"
import type * as Wire from "./Wire.ts"

/** Dials under way at once while `make` opens the `pool.initialSize` floor. */
const dialConcurrency = 64

/** @internal */
export const build = Effect.fnUntraced(
  function*(dialer: Dialer["Service"], resolved: ResolvedOptions) {
    const address = dialer.address
    // The client's own scope, closed at once if `make` fails.
    const scope = yield* Scope.fork(yield* Effect.scope)
    const clock = yield* Clock.Clock
    const services = yield* Effect.context<never>()

    const connectFailed = (cause: unknown) =>
      new ClientError({ reason: new ConnectFailed({ address, cause, maybeProcessed: false }) })
    // One fiber for every dial's connect timeout (see `ClientConnectTimer`).
    const connectTimer = Duration.isZero(resolved.connectTimeout) ? undefined : new ConnectTimer(
      clock,
      Duration.toMillis(resolved.connectTimeout),
      Exit.fail(
        new ClientError({
          reason: new ConnectTimeout({ address, timeout: resolved.connectTimeout, maybeProcessed: false })
        })
      )
    )
    const decodeLimits: Wire.DecodeLimits = {
      maxMetadataEntries: resolved.maxMetadataEntries,
      maxMetadataBytes: resolved.maxMetadataBytes
    }
    // Built once per pool (its hooks never change), not once per dial.
    const dialWith = (hooks: ClientPool.Hooks) => {
      const config: ClientConnection.Config = {
        address,
        maxFrameSize: resolved.maxFrameSize,
        requestTimeout: resolved.requestTimeout,
        decodeLimits,
        ...hooks
      }
      const open = Effect.mapError(
        Effect.flatMap(dialer.dial, (socket) => ClientConnection.make(ClientTransport.open(socket), config)),
        connectFailed
      )
      return open
    }
    let dial: { readonly hooks: ClientPool.Hooks; readonly effect: ReturnType<typeof dialWith> } | undefined
    const connect = (hooks: ClientPool.Hooks) => {
      if (dial?.hooks !== hooks) dial = { hooks, effect: dialWith(hooks) }
      return dial.effect
    }

    const pool = new ClientPool.Pool(
      {
        address,
        ...resolved.pool,
        maxInFlight: resolved.maxInFlight,
        acquireTimeout: resolved.acquireTimeout,
        connect,
        connectTimer
      },
      clock,
      services,
      scope
    )
    yield* Effect.forkIn(pool.reaper, scope)
    if (connectTimer !== undefined) yield* Effect.forkIn(connectTimer.run, scope)
    yield* Effect.forkIn(pool.watchdog.run, scope)
    if (!Duration.isZero(resolved.requestTimeout)) yield* Effect.forkIn(pool.sweeper.run, scope)
    // Added after the fibers, so it runs before they are interrupted.
    yield* Scope.addFinalizer(scope, pool.shutdown)
    // The floor, opened up front: `make` fails fast with the first error. At
    // most `dialConcurrency` dials at once: a large floor neither floods the
    // server's accept backlog nor piles up every dial's transient state at
    // once (10,000 at once left ~10 KiB more RSS per connection after GC).
    yield* Effect.onError(fill(pool, resolved.pool.initialSize, dialConcurrency), () => Scope.close(scope, Exit.void))
    // From now on the refill fiber keeps the floor (interrupted first when
    // the scope closes; a dial it has under way closes with it).
    yield* Effect.forkIn(pool.refill, scope)

    const callOnce = (request: Request.Request): Effect.Effect<Response.Response, ClientError> =>
      Effect.callback<Response.Response, ClientError>((resume) => pool.submit(request, undefined, resume))
    const pipelineOnce = (requests: ReadonlyArray<Request.Request>): Effect.Effect<ResponseBatch, ClientError> =>
      requests.length === 0
        ? Effect.succeed([])
        : Effect.callback<ResponseBatch, ClientError>((resume) => pool.submit(undefined, requests, resume))

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
        ? pipelineOnce
        : (requests) => Effect.retry(pipelineOnce(requests), retryOptions),
      run: (command, ...[input, metadata]) =>
        Effect.flatMap(
          Command.request(command, input as Command.Input<typeof command>, metadata),
          (request) => Effect.flatMap(call(request), (response) => Command.decodeResponse(command, response))
        ),
      stats: Effect.sync(() => {
        let idle = 0
        let inflight = 0
        for (const connection of pool.connections) {
          const outstanding = connection.outstanding
          if (outstanding === 0) idle++
          inflight += outstanding
        }
        return { open: pool.connections.length, idle, inflight, waiting: pool.waiting }
      })
    })
  }
)
