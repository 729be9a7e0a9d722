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
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import * as ChildProcess from "node:child_process"
import * as Demo from "../Demo.ts"
import * as NodeMetrics from "../node/NodeMetrics.ts"
import * as NodeServer from "../node/NodeServer.ts"
import * as Server from "../Server.ts"
import { CommandFailed } from "./call.ts"
import * as Parse from "./parse.ts"

const durationFlag = (name: string, description: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(`${description} (e.g. 5s, 250ms, "1 minute"; 0 = off)`),
    Flag.mapTryCatch((s) => {
      const ms = Parse.duration(s)
      if (ms === undefined) throw new Error(`--${name}: not a duration: ${s}`)
      return ms
    }, (e) => String((e as Error).message)),
    Flag.optional
  )

const byteSizeFlag = (name: string, description: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(`${description}; e.g. 16MiB, 65536`),
    Flag.mapTryCatch((s) => {
      const n = Parse.byteSize(s)
      if (n === undefined) throw new Error(`--${name}: not a byte size: ${s}`)
      return n
    }, (e) => String((e as Error).message)),
    Flag.optional
  )

const some = <A>(o: { readonly _tag: "Some"; readonly value: A } | { readonly _tag: "None" }): A | undefined =>
  o._tag === "Some" ? o.value : undefined

/** @since 0.1.0 */
export const serve = Command.make("serve", {
  host: Flag.String("host").pipe(Flag.withDescription("address to listen on"), Flag.withDefault("127.0.0.1")),
  port: Flag.Int("port").pipe(Flag.withDescription("TCP port; 0 picks a free one"), Flag.withDefault(7701)),
  timeout: durationFlag("timeout", "a started frame must complete, and a write drain, within this"),
  idleTimeout: durationFlag("idle-timeout", "close connections idle for this long"),
  maxFrameSize: byteSizeFlag("max-frame-size", "largest request frame"),
  maxMetadataEntries: Flag.Int("max-metadata-entries").pipe(
    Flag.withDescription("metadata entries per request (default 1024)"),
    Flag.optional
  ),
  maxMetadataBytes: byteSizeFlag("max-metadata-bytes", "metadata keys + values per request, default 1MiB"),
  maxBufferedBytes: byteSizeFlag(
    "max-buffered-bytes",
    "server-wide bytes in frames being received or handled and unsent replies, default 256MiB"
  ),
  maxConnections: Flag.Int("max-connections").pipe(
    Flag.withDescription("connections open at once (default 16384)"),
    Flag.optional
  ),
  concurrency: Flag.Int("concurrency").pipe(Flag.withDescription("handlers run at once per connection"), Flag.optional),
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
      reusePort: isWorker || flags.workers > 1
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
