/**
 * `quasizero serve`: the demo command set on a TCP port.
 *
 * With `--workers N` (N > 1) this process binds the port with SO_REUSEPORT
 * (Linux, Node >= 22.12), resolving port 0 to a real port first, then forks
 * N - 1 copies of itself that bind the same port; the kernel spreads new
 * connections across the N listeners. `listening on HOST:PORT` is printed
 * once, when every worker listens. SIGTERM/SIGINT stop the workers
 * gracefully, then this process; a worker that dies on its own stops them
 * all, with exit code 1.
 *
 * @since 0.1.0
 * @internal
 */
import { Command, Flag } from "effect/cli"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as ChildProcess from "node:child_process"
import * as Demo from "../Demo.ts"
import * as NodeMetrics from "../node/NodeMetrics.ts"
import * as NodeServer from "../node/NodeServer.ts"
import * as Options from "../Options.ts"
import * as Server from "../Server.ts"
import { CommandFailed } from "./call.ts"
import * as Parse from "./parse.ts"

// Every flag falls back to the variable `Server.config` / `NodeServer.config`
// read (`--timeout` to QUASIZERO_TIMEOUT, ...), in the same grammar (Options).
const parsed = <A>(
  name: string,
  parse: (s: string) => A | undefined,
  what: string,
  fallback: Config.Config<A>
) =>
  Flag.String(name).pipe(
    Flag.mapTryCatch((s) => {
      const value = parse(s)
      if (value === undefined) throw new Error(`--${name}: not ${what}: ${s}`)
      return value
    }, (e) => String((e as Error).message)),
    Flag.withFallbackConfig(fallback)
  )

const durationFlag = (name: string, env: string, description: string) =>
  parsed(name, Parse.duration, "a duration", Config.map(Options.duration(env), Duration.toMillis)).pipe(
    Flag.withDescription(`${description} (e.g. 5s, 1m30s, 250ms, 5000 = ms; 0 = off; env ${env})`),
    Flag.optional
  )

const byteSizeFlag = (name: string, env: string, description: string) =>
  parsed(name, Parse.byteSize, "a byte size", Options.size(env)).pipe(
    Flag.withDescription(`${description}; e.g. 16MiB, 64KB (1000s), 65536 (env ${env})`),
    Flag.optional
  )

const countFlag = (name: string, env: string, description: string) =>
  parsed(name, Parse.count, "a whole number", Options.count(env)).pipe(
    Flag.withDescription(`${description} (env ${env})`),
    Flag.optional
  )

const some = <A>(o: { readonly _tag: "Some"; readonly value: A } | { readonly _tag: "None" }): A | undefined =>
  o._tag === "Some" ? o.value : undefined

/** @since 0.1.0 */
export const serve = Command.make("serve", {
  host: Flag.String("host").pipe(
    Flag.withFallbackConfig(Config.String("QUASIZERO_HOST")),
    Flag.withDescription("address to listen on (env QUASIZERO_HOST)"),
    Flag.withDefault("127.0.0.1")
  ),
  port: Flag.Int("port").pipe(
    Flag.withFallbackConfig(NodeServer.portConfig),
    Flag.withDescription("TCP port; 0 picks a free one (env QUASIZERO_PORT)"),
    Flag.withDefault(7701)
  ),
  timeout: durationFlag(
    "timeout",
    "QUASIZERO_TIMEOUT",
    "a started frame must complete, and a write drain, within this"
  ),
  idleTimeout: durationFlag("idle-timeout", "QUASIZERO_IDLE_TIMEOUT", "close connections idle for this long"),
  maxFrameSize: byteSizeFlag("max-frame-size", "QUASIZERO_MAX_FRAME_SIZE", "largest request frame, default 16MiB"),
  maxMetadataEntries: countFlag(
    "max-metadata-entries",
    "QUASIZERO_MAX_METADATA_ENTRIES",
    "metadata entries per request (default 1024)"
  ),
  maxMetadataBytes: byteSizeFlag(
    "max-metadata-bytes",
    "QUASIZERO_MAX_METADATA_BYTES",
    "metadata keys + values per request, default 1MiB"
  ),
  maxBufferedBytes: byteSizeFlag(
    "max-buffered-bytes",
    "QUASIZERO_MAX_BUFFERED_BYTES",
    "server-wide bytes in frames being received or handled and unsent replies, default 256MiB"
  ),
  maxConnections: countFlag("max-connections", "QUASIZERO_MAX_CONNECTIONS", "connections open at once (default 16384)"),
  concurrency: countFlag("concurrency", "QUASIZERO_CONCURRENCY", "handlers run at once per connection"),
  // As written (`50us`), so a rejected value reads back as given; NodeServer validates it.
  spin: parsed(
    "spin",
    (s) => (Parse.duration(s) === undefined ? undefined : s),
    "a duration",
    Config.String("QUASIZERO_SPIN")
  ).pipe(
    Flag.withDescription(
      "keep polling this long after each reply, at most 1ms (e.g. 50us; 0 = off; CPU for latency, see README; env QUASIZERO_SPIN)"
    ),
    Flag.optional
  ),
  metrics: Flag.String("metrics").pipe(
    Flag.withDescription("serve this process's metrics in the Prometheus text format on HOST:PORT, at /metrics"),
    Flag.mapTryCatch((s) => {
      // HOST:PORT or [IPv6]:PORT; port 0 picks a free one.
      const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s)
      if (match === null || Number(match[3]) > 65535) throw new Error(`--metrics: expected HOST:PORT, got ${s}`)
      const host = match[1] ?? match[2]!
      return { host: host.length === 0 ? undefined : host, port: Number(match[3]) }
    }, (e) => String((e as Error).message)),
    Flag.optional
  ),
  workers: Flag.Int("workers").pipe(
    Flag.withDescription("processes serving the port, with SO_REUSEPORT (Linux); default 1"),
    Flag.filter((n) => n >= 1 && n <= 1024, (n) => `--workers: expected 1 to 1024, got ${n}`),
    Flag.withDefault(1)
  )
}, (flags) => {
  const options: Server.Options = {
    timeout: some(flags.timeout),
    idleTimeout: some(flags.idleTimeout),
    maxFrameSize: some(flags.maxFrameSize),
    maxMetadataEntries: some(flags.maxMetadataEntries),
    maxMetadataBytes: some(flags.maxMetadataBytes),
    maxBufferedBytes: some(flags.maxBufferedBytes),
    maxConnections: some(flags.maxConnections),
    concurrency: some(flags.concurrency),
    // Counted per code and timed only when they are exported.
    requestMetrics: flags.metrics._tag === "Some" ? true : undefined
  }
  const workerPort = process.env[workerPortEnv]
  const isWorker = workerPort !== undefined && process.send !== undefined
  const ServerLive = Server.layer(options).pipe(
    Layer.provide(Demo.layer),
    Layer.provide(NodeServer.layer({
      host: flags.host,
      port: isWorker ? Number(workerPort) : flags.port,
      reusePort: isWorker || flags.workers > 1,
      spin: some(flags.spin) as Options.DurationInput | undefined
    }))
  )
  return Effect.gen(function*() {
    const { address } = yield* Server.Server
    if (isWorker) {
      // A primary that goes away without stopping us (SIGKILL) is a SIGTERM:
      // the same graceful shutdown, and the runtime exits at once after it.
      process.once("disconnect", () => process.kill(process.pid, "SIGTERM"))
      process.send!(ready)
      return yield* Effect.never
    }
    // The primary alone serves metrics (each worker is a process of its own).
    const metrics = some(flags.metrics)
    if (metrics !== undefined) {
      const http = yield* Layer.build(NodeMetrics.layerPrometheus(metrics)).pipe(
        Effect.map((context) => Context.get(context, HttpServer.HttpServer)),
        Effect.catch((e) => failed(`--metrics: ${e.message}`))
      )
      if (NetAddress.isInetAddress(http.address)) {
        yield* Console.log(
          `metrics on http://${NetAddress.formatUrlHost(http.address.address)}:${http.address.port}/metrics`
        )
      }
    }
    if (flags.workers > 1 && NetAddress.isInetAddress(address)) {
      const died = yield* forkWorkers(flags.workers - 1, address.port)
      yield* printListening(address)
      return yield* Effect.catch(died, failed)
    }
    yield* printListening(address)
    return yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(ServerLive))
}).pipe(Command.withDescription("Serve the demo commands: 1 PING, 2 ECHO, 3 FAIL, 4 META, 5 SLEEP"))

const printListening = (address: NetAddress.SocketAddress) =>
  Console.log(
    `listening on ${
      NetAddress.isInetAddress(address)
        ? `${NetAddress.formatUrlHost(address.address)}:${address.port}`
        : NetAddress.formatSocketAddress(address)
    }`
  )

// A forked worker learns the port it shares from this variable, and reports
// `ready` over the IPC channel once it listens.
const workerPortEnv = "QUASIZERO_WORKER_PORT"
const ready = "quasizero:ready"

/**
 * Forks `count` workers of this same command line on `port` and waits until
 * each listens. Closing the scope sends them SIGTERM and waits for their
 * graceful exit. The returned effect fails when one exits on its own.
 */
const forkWorkers = (count: number, port: number) =>
  Effect.gen(function*() {
    const children: Array<ChildProcess.ChildProcess> = []
    // Watched from the fork on, so an exit is never missed between "ready" and the wait.
    const died = Deferred.makeUnsafe<never, string>()
    let stopping = false
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        stopping = true
        return Effect.forEach(children, (child) =>
          Effect.callback<void>((resume) => {
            if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
            child.once("exit", () => resume(Effect.void))
            child.kill("SIGTERM")
          }), { concurrency: "unbounded", discard: true })
      })
    )
    for (let i = 0; i < count; i++) {
      const child = ChildProcess.fork(process.argv[1]!, process.argv.slice(2), {
        env: { ...process.env, [workerPortEnv]: String(port) },
        execArgv: process.execArgv
      })
      children.push(child)
      child.once("exit", (code, signal) => {
        if (!stopping) Deferred.doneUnsafe(died, Exit.fail(`worker ${child.pid} exited (${signal ?? code})`))
      })
    }
    const listening = Effect.forEach(children, (child) =>
      Effect.callback<void>((resume) => {
        const onMessage = (message: unknown) => {
          if (message !== ready) return
          child.off("message", onMessage)
          resume(Effect.void)
        }
        child.on("message", onMessage)
      }), { concurrency: "unbounded", discard: true })
    // A worker that cannot listen (port taken, no SO_REUSEPORT) exits: fail, don't wait.
    yield* Effect.raceFirst(listening, Deferred.await(died))
    return Deferred.await(died)
  }).pipe(Effect.catch(failed))

// The reason on stderr, then exit code 1 without a stack trace.
const failed = (reason: string) =>
  Effect.andThen(Console.error(`quasizero serve: ${reason}`), Effect.fail(new CommandFailed()))
