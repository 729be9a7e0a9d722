/**
 * The client's connections: which one takes a call, when one opens, when one
 * closes. Internal to `Client`.
 *
 * Invariants:
 * - a connection's load is its `outstanding` count: calls queued or written
 *   whose replies are not consumed yet, including calls whose callers gave
 *   up (interrupted). A slot frees only when its reply has been read or the
 *   connection closed, so abandoned calls keep counting against
 *   `maxInFlight` and cannot pile up on one connection;
 * - a call goes to the first open connection with nothing outstanding, else
 *   to the least loaded one with a free slot; with none, it waits in a FIFO
 *   (`waiters`), and a connection opens for it when fewer than `maxCap` are
 *   open or opening and the dials under way cannot serve every waiter;
 * - waiters non-empty implies no open connection has a free slot: a slot that
 *   frees (the connection's `onSlotFree`, called from its reader) and a
 *   connection that opens both go to the oldest waiter first, directly;
 * - `initialSize` is a floor: one background fiber reopens connections below
 *   it, one dial at a time, retrying failed dials on the `pool.refill`
 *   schedule (exponential backoff with jitter by default), so an outage does
 *   not leave the pool short and a server coming back is not stormed; a
 *   connection closed within `youngMillis` of opening counts as a failed
 *   dial, so a server that accepts and closes is not redialed in a loop;
 * - every timer is a fiber sleeping on `Clock` (reaper, refill backoff,
 *   `acquireTimeout` watchdog, `requestTimeout` sweeper), one per pool, never
 *   one per call or per connection.
 *
 * Why not effect's `Pool` (checked against effect 4.1's Pool.ts): a lease is
 * an Effect step tied to a Scope (`Pool.get`) or a fiber (`Pool.use`), so
 * taking a connection when it goes from idle to busy, as "leased while in
 * service" would need, costs a fiber step and a finalizer on the per-call
 * path (`seq` goes idle -> busy on every call), and cannot run from the
 * socket's read handler that completes callers; leasing each connection for
 * its whole life instead leaves the Pool nothing to do (its TTL reaps only
 * unleased items). And it would give up behaviour the tests pin: its `get`
 * picks its own item (no "idle first, else least loaded"), a failed acquire
 * keeps its slot and is retried by the next borrower at once (no `refill`
 * backoff: a dial storm in an outage), and its waiters are not ours
 * (`acquireTimeout`, cancellation without sending).
 *
 * @since 0.1.0
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type * as ClientConnection from "./ClientConnection.ts"
import type { ConnectTimer } from "./ClientConnectTimer.ts"
import { closedFailure, poolClosedFailure, type Resume } from "./ClientEntry.ts"
import { ClientError, PoolClosed } from "./ClientError.ts"
import { Park } from "./ClientPark.ts"
import { Sweeper } from "./ClientSweeper.ts"
import { Waiter, Waiters } from "./ClientWaiters.ts"
import { Watchdog } from "./ClientWatchdog.ts"
import type * as Request from "./Request.ts"

type Connection = ClientConnection.Connection

/** A connection closed this soon after opening counts as a failed dial for the refill. */
const youngMillis = 1000

/** What the pool gives each connection. @internal */
export type Hooks = Pick<ClientConnection.Config, "onClose" | "onSlotFree" | "trackIdle" | "onBusy">

/** What the pool needs from its client. @internal */
export interface Config {
  readonly address: string
  readonly initialSize: number
  readonly maxCap: number
  readonly maxInFlight: number
  readonly idleTimeout: Duration.Duration
  readonly reapInterval: Duration.Duration
  readonly acquireTimeout: Duration.Duration
  readonly refill: Schedule.Schedule<unknown, ClientError>
  /** Dials and opens one connection in the current scope. */
  readonly connect: (hooks: Hooks) => Effect.Effect<Connection, ClientError, Scope.Scope>
  /** The `connectTimeout`, when on (its fiber is the client's). */
  readonly connectTimer: ConnectTimer<ClientError> | undefined
}

/** The pool (see the module notes). @internal */
export class Pool {
  /** Set when the client's scope starts closing: final. */
  closed = false
  /** Open connections, oldest first. */
  readonly connections: Array<Connection> = []
  /** Dials under way. */
  opening = 0
  /** Connections opened, ever (for tests and stats). */
  opened = 0

  private readonly config: Config
  private readonly clock: Clock.Clock
  private readonly services: Context.Context<never>
  private readonly scope: Scope.Scope
  // The last connection that died young, for the refill's backoff.
  private youngDeath: ClientError | undefined
  private readonly hooks: Hooks
  /** The `requestTimeout` fiber's logic (forked by the client when the timeout is on). */
  readonly sweeper: Sweeper
  private readonly acquireMillis: number
  private readonly poolClosed: Exit.Exit<never, ClientError>

  private readonly waiters = new Waiters()
  /** The `acquireTimeout` fiber's logic (forked by the client). */
  readonly watchdog: Watchdog

  constructor(config: Config, clock: Clock.Clock, services: Context.Context<never>, scope: Scope.Scope) {
    this.config = config
    this.clock = clock
    this.services = services
    this.scope = scope
    this.acquireMillis = Duration.toMillis(config.acquireTimeout)
    this.poolClosed = Exit.fail(
      new ClientError({ reason: new PoolClosed({ address: config.address, maybeProcessed: false }) })
    )
    this.watchdog = new Watchdog(this.waiters, clock, config.address, config.acquireTimeout, () => this.closed)
    const sweeper = new Sweeper(this.connections, clock, () => this.closed)
    this.sweeper = sweeper
    this.hooks = {
      onBusy: () => sweeper.wake(),
      onClose: (connection) => this.remove(connection),
      onSlotFree: (connection) => {
        if (this.waiters.live > 0) this.serve(connection)
      },
      trackIdle: Duration.toMillis(config.idleTimeout) > 0
    }
  }

  private wakeRefill(): void {
    this.refillPark.wake()
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.waiters.live
  }

  // ---------------------------------------------------------------------------
  // calls
  // ---------------------------------------------------------------------------

  /**
   * Sends a call (`request`, or the pipeline `requests`) on a connection with
   * a free slot, or queues the caller; returns the cancellation of a queued
   * caller (an interrupted caller that has not been given a slot leaves the
   * queue, unsent). Once on a connection, a call stays there until its reply
   * is read, whether its caller waits or not.
   */
  submit(
    request: Request.Request | undefined,
    requests: ReadonlyArray<Request.Request> | undefined,
    resume: Resume
  ): Effect.Effect<void> | undefined {
    if (this.closed) {
      resume(this.poolClosed)
      return undefined
    }
    if (this.waiters.live === 0) {
      const connection = this.pick()
      if (connection !== undefined) {
        connection.submit(request, requests, resume)
        return undefined
      }
    }
    const deadline = this.acquireMillis > 0 ? this.clock.currentTimeMillisUnsafe() + this.acquireMillis : Infinity
    const cancel = this.waiters.push(new Waiter(request, requests, resume, deadline))
    this.watchdog.wake()
    this.grow()
    return cancel
  }

  // The first connection with nothing outstanding, else the least loaded one
  // with a free slot.
  private pick(): Connection | undefined {
    const connections = this.connections
    let best: Connection | undefined
    let load = this.config.maxInFlight
    for (let i = 0; i < connections.length; i++) {
      const connection = connections[i]!
      if (connection.state !== "open") continue
      const outstanding = connection.outstanding
      if (outstanding === 0) return connection
      if (outstanding < load) {
        best = connection
        load = outstanding
      }
    }
    return best
  }

  // Hands `connection`'s free slots to the oldest waiters.
  private serve(connection: Connection): void {
    const max = this.config.maxInFlight
    while (this.waiters.live > 0 && connection.state === "open" && connection.outstanding < max) {
      const waiter = this.waiters.take()
      connection.submit(waiter.request, waiter.requests, waiter.resume!)
    }
  }

  // ---------------------------------------------------------------------------
  // opening and closing connections
  // ---------------------------------------------------------------------------

  // Opens connections for waiters the open and opening ones cannot serve.
  private grow(): void {
    const { maxCap, maxInFlight } = this.config
    while (this.connections.length + this.opening < maxCap && this.waiters.live > this.opening * maxInFlight) {
      // Its failure reaches the waiters it was for (see `start`).
      const fiber = this.start(undefined)
      if (fiber === undefined) return
      Fiber.runIn(fiber, this.scope)
    }
  }

  /**
   * Starts one dial, in a fiber of its own (the only one it has: the connect
   * timeout interrupts that fiber), into a scope of its own, and adds the
   * connection to the pool; `done` gets the dial's outcome. A failed dial
   * fails the waiters the remaining dials cannot serve, when no connection
   * is open to serve them later. Returns the dial's fiber while it runs.
   * (`ClientFill` opens the floor with it.)
   */
  start(
    done: ((exit: Exit.Exit<Connection, ClientError>) => void) | undefined
  ): Fiber.Fiber<Connection, ClientError> | undefined {
    if (this.closed) {
      done?.(this.poolClosed)
      return undefined
    }
    this.opening++
    const scope = Scope.makeUnsafe()
    // The scope in the fiber's own context: no `Scope.provide` step per dial.
    const fiber = Effect.runForkWith(Context.add(this.services, Scope.Scope, scope))(this.config.connect(this.hooks))
    const timer = fiber.pollUnsafe() === undefined ? this.config.connectTimer : undefined
    const dial = timer?.track(fiber)
    fiber.addObserver((result) => {
      const exit = dial === undefined ? result : timer!.settle(dial, result)
      this.opening--
      if (exit._tag === "Success" && !this.closed) {
        this.add(exit.value, scope)
      } else {
        if (exit._tag === "Failure" && !this.closed && this.connections.length === 0) {
          const error = Cause.findErrorOption(exit.cause)
          if (error._tag === "Some") {
            this.waiters.fail(this.waiters.live - this.opening * this.config.maxInFlight, Exit.fail(error.value))
          }
        }
        Effect.runForkWith(this.services)(Scope.close(scope, exit))
      }
      done?.(exit)
    })
    return fiber.pollUnsafe() === undefined ? fiber : undefined
  }

  /** Dials one connection and adds it to the pool (see `start`); interrupting it interrupts the dial. */
  readonly open: Effect.Effect<Connection, ClientError> = Effect.callback((resume) => {
    const fiber = this.start(resume)
    return fiber === undefined ? undefined : Fiber.interrupt(fiber)
  })

  private add(connection: Connection, scope: Scope.Closeable): void {
    this.opened++
    if (connection.state !== "open") {
      // Closed between its connect and now (its `onClose` found nothing to
      // remove): never pooled, and as good as a failed dial.
      Effect.runForkWith(this.services)(Scope.close(scope, Exit.void))
      const error = connection.closedError!
      if (this.connections.length === 0) {
        this.waiters.fail(this.waiters.live - this.opening * this.config.maxInFlight, Exit.fail(error))
      }
      this.youngDeath = error
      this.wakeRefill()
      return
    }
    this.connections.push(connection)
    connection.scope = scope
    connection.openedAt = this.clock.currentTimeMillisUnsafe()
    if (this.waiters.live > 0) this.serve(connection)
  }

  // Called once by a connection that closed: drop it, close its scope (forked:
  // the fiber running this belongs to that scope), refill the floor. One that
  // lived less than `youngMillis` (a server that accepts and closes: at its
  // connection limit, crash-looping) makes the refill back off as after a
  // failed dial, so such a server is not redialed in a loop.
  private remove(connection: Connection): void {
    const index = this.connections.indexOf(connection)
    if (index >= 0) this.connections.splice(index, 1)
    if (this.closed) return
    const scope = connection.scope
    if (scope !== undefined) {
      connection.scope = undefined
      if (this.clock.currentTimeMillisUnsafe() - connection.openedAt < youngMillis) {
        this.youngDeath = connection.closedError
      }
      Effect.runForkWith(this.services)(Scope.close(scope, Exit.void))
    }
    this.gaveUp = false
    this.wakeRefill()
    if (this.waiters.live > 0) this.grow()
  }

  private get short(): boolean {
    return !this.closed && this.connections.length + this.opening < this.config.initialSize
  }

  // Set when a refill round ended on a failure (a finite `refill` schedule
  // ran out): wait for the next close before trying again.
  private gaveUp = false

  private readonly refillPark = new Park(() => this.closed || (this.short && !this.gaveUp))

  /**
   * The refill fiber: parks while the pool is at its floor; below it, opens
   * connections one at a time, sleeping the `refill` schedule's next delay
   * after each failed dial. A connection that died young (see `remove`)
   * counts as a failed dial; any other close starts a fresh backoff. When the
   * schedule ends, it gives up until the next close.
   */
  readonly refill: Effect.Effect<void> = Effect.gen({ self: this }, function*(this: Pool) {
    const fresh = Schedule.toStepWithSleep(this.config.refill)
    let step = yield* fresh
    while (!this.closed) {
      yield* this.refillPark.park
      let failure = this.youngDeath
      this.youngDeath = undefined
      if (failure === undefined) step = yield* fresh
      while (!this.closed) {
        // The connection just opened may already have died young.
        if (failure === undefined && this.youngDeath !== undefined) {
          failure = this.youngDeath
          this.youngDeath = undefined
        }
        if (failure !== undefined) {
          // Sleeps the next delay; fails once the schedule is done.
          if ((yield* Effect.exit(step(failure)))._tag === "Failure") {
            this.gaveUp = true
            step = yield* fresh
            break
          }
          failure = undefined
        }
        if (!this.short) break
        const exit = yield* Effect.exit(this.open)
        if (exit._tag === "Failure") {
          const error = Cause.findErrorOption(exit.cause)
          if (error._tag === "None") return
          failure = error.value
        }
      }
    }
  })

  /**
   * The reaper: every `reapInterval`, closes the connections with nothing
   * outstanding for at least `idleTimeout` (floor ones too: the refill opens
   * fresh ones, so no connection stays idle long enough for the server's own
   * idle timeout to close it under a call).
   */
  readonly reaper: Effect.Effect<void> = Effect.suspend(() => {
    const idleMillis = Duration.toMillis(this.config.idleTimeout)
    if (idleMillis === 0) return Effect.void
    const failure = closedFailure(this.config.address, "closed by the client (idle)")
    const reap = Effect.suspend(() => {
      const expired = this.clock.currentTimeMillisUnsafe() - idleMillis
      const victims = this.connections.filter((c) => c.outstanding === 0 && c.idleSince <= expired)
      for (let i = 0; i < victims.length; i++) victims[i]!.close(failure)
      return Effect.void
    })
    return Effect.asVoid(Effect.schedule(reap, Schedule.spaced(this.config.reapInterval)))
  })

  /**
   * Closes the pool: fails every waiter with `PoolClosed`, then every
   * connection's calls with `PoolClosed` (`maybeProcessed` once written), and
   * closes the connections.
   */
  readonly shutdown: Effect.Effect<void> = Effect.suspend(() => {
    if (this.closed) return Effect.void
    this.closed = true
    this.waiters.fail(this.waiters.live, this.poolClosed)
    this.wakeRefill()
    this.watchdog.wake()
    this.sweeper.wake()
    const connections = Array.from(this.connections)
    const scopes: Array<Scope.Closeable> = []
    // One set of errors for all: four errors per connection, with their stacks, cost ~3 KiB.
    const failure = poolClosedFailure(this.config.address)
    for (let i = 0; i < connections.length; i++) {
      const connection = connections[i]!
      if (connection.scope !== undefined) scopes.push(connection.scope)
      connection.scope = undefined
      connection.shutdown(failure)
    }
    return Effect.forEach(scopes, (scope) => Scope.close(scope, Exit.void), { discard: true })
  })
}
