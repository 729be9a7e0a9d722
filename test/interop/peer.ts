// The live Go peer (../shared/peers/go-quasizero/bin: qz-server, qz-call,
// qz-bench) as child processes, and our own CLI server as one, each started
// on port 0 (its `listening on` line gives the address), bounded in time and
// killed by its scope.
//
// Inside this repository the binaries are required: a missing one fails the
// suite with the path it looked at (a silently skipped interop suite would
// let the wire drift). Outside it (the tests copied elsewhere, no `.git` at
// the root) the suite may be skipped, with the reason printed.
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

const root = new URL("../../", import.meta.url).pathname

/** Where the Go binaries are: `QUASIZERO_GO_PEER_BIN`, else `../shared/peers/go-quasizero/bin`. */
export const binDir = process.env.QUASIZERO_GO_PEER_BIN ?? Path.resolve(root, "../shared/peers/go-quasizero/bin")
export const bin = (name: "qz-server" | "qz-call" | "qz-bench") => Path.join(binDir, name)
const cli = Path.join(root, "src/bin/quasizero.ts")

const missing = (["qz-server", "qz-call", "qz-bench"] as const).filter((name) => {
  try {
    Fs.accessSync(bin(name), Fs.constants.X_OK)
    return false
  } catch {
    return true
  }
})
const inRepository = Fs.existsSync(Path.join(root, ".git"))

/**
 * `true` when the suite can run. Throws inside the repository when a binary
 * is missing; prints why it skips outside it.
 */
export const available = ((): boolean => {
  if (missing.length === 0) return true
  const reason = `Go peer binaries missing or not executable: ${missing.map(bin).join(", ")} `
    + `(set QUASIZERO_GO_PEER_BIN to their directory)`
  if (inRepository) throw new Error(`interop suite cannot run: ${reason}`)
  console.warn(`[interop] skipped outside the repository: ${reason}`)
  return false
})()

/** Every child is killed after this, whatever happens to the test (no orphan outlives a hung run). */
const hardLimitMs = 90_000

export interface Spawned {
  readonly child: ChildProcess.ChildProcess
  /** `HOST:PORT` from the `listening on` line. */
  readonly address: string
  readonly port: number
  /** Everything written to stderr so far. */
  readonly stderr: () => string
}

/** Starts a server process and waits for its `listening on HOST:PORT` line; killed when the scope closes. */
export const spawnServer = (command: string, args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.callback<Spawned, Error>((resume) => {
      const child = ChildProcess.spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })
      const limit = setTimeout(() => child.kill("SIGKILL"), hardLimitMs)
      limit.unref()
      child.once("exit", () => clearTimeout(limit))
      let out = ""
      let err = ""
      let started = false
      child.stdout.on("data", (d) => {
        out += d
        const match = /listening on (\S+):(\d+)/.exec(out)
        if (match && !started) {
          started = true
          resume(
            Effect.succeed({ child, address: `${match[1]}:${match[2]}`, port: Number(match[2]), stderr: () => err })
          )
        }
      })
      child.stderr.on("data", (d) => (err += d))
      child.once("error", (e) => resume(Effect.fail(e)))
      child.once("exit", (code) => {
        if (!started) resume(Effect.fail(new Error(`${command} exited with ${code} before listening: ${err}`)))
      })
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

/** Go's `qz-server` on 127.0.0.1, port 0; `extra` flags as in the peer's README. */
export const goServer = (extra: ReadonlyArray<string> = []) =>
  spawnServer(bin("qz-server"), ["-addr", "127.0.0.1:0", "-quiet", ...extra])

/** `quasizero serve` from the sources, as users run it. */
export const ourServerProcess = (extra: ReadonlyArray<string> = []) =>
  spawnServer(process.execPath, [cli, "serve", "--host", "127.0.0.1", "--port", "0", ...extra])

export interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs a program to completion, asynchronously (an in-process server must
 * keep running meanwhile), killed after `timeoutMs`.
 */
export const run = (command: string, args: ReadonlyArray<string>, timeoutMs = 20_000) =>
  Effect.callback<Finished, Error>((resume) => {
    const child = ChildProcess.spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })
    const limit = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d))
    child.once("error", (e) => {
      clearTimeout(limit)
      resume(Effect.fail(e))
    })
    child.once("close", (code, signal) => {
      clearTimeout(limit)
      if (signal === "SIGKILL") resume(Effect.fail(new Error(`${command} killed after ${timeoutMs} ms: ${stderr}`)))
      else resume(Effect.succeed({ code, stdout, stderr }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** The JSON line qz-call prints per response (with `-b64`). */
export interface CallLine {
  readonly error_message: string
  readonly metadata: Record<string, string>
  readonly payload: string
  readonly payload_b64: string
}

/** Octal escapes for `printf`: passes any bytes but NUL through a shell into argv. */
const printfEscape = (bytes: Uint8Array) => Array.from(bytes, (b) => `\\${b.toString(8).padStart(3, "0")}`).join("")

/**
 * Go's client: `qz-call -addr address -b64 ...`, one parsed line per reply.
 * A binary payload (not valid UTF-8, so not expressible as a JS argv string)
 * goes through `sh -c` and `printf`.
 */
export const qzCall = (
  address: string,
  args: ReadonlyArray<string>,
  binaryPayload?: Uint8Array
): Effect.Effect<ReadonlyArray<CallLine>, Error> => {
  const argv = ["-addr", address, "-b64", ...args]
  const finished = binaryPayload === undefined
    ? run(bin("qz-call"), argv)
    : run("sh", ["-c", `exec "$0" "$@" -payload "$(printf '${printfEscape(binaryPayload)}')"`, bin("qz-call"), ...argv])
  return Effect.flatMap(finished, ({ code, stdout, stderr }) =>
    code === 0
      ? Effect.succeed(stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as CallLine))
      : Effect.fail(new Error(`qz-call ${args.join(" ")} exited ${code}: ${stderr.trim()}`)))
}

/** qz-bench's result line. */
export interface BenchLine {
  readonly mode: string
  readonly batch: number
  readonly conc: number
  readonly requests: number
  readonly errors: number
  readonly seconds: number
}

/** Go's load client: `qz-bench -addr address ...`, its one JSON line. */
export const qzBench = (address: string, args: ReadonlyArray<string>, timeoutMs = 30_000) =>
  Effect.flatMap(run(bin("qz-bench"), ["-addr", address, ...args], timeoutMs), ({ code, stdout, stderr }) =>
    code === 0
      ? Effect.succeed(JSON.parse(stdout.trim()) as BenchLine)
      : Effect.fail(new Error(`qz-bench ${args.join(" ")} exited ${code}: ${stderr.trim()}`)))

/** Our CLI, run to completion (e.g. `quasizero bench`). */
export const ourCli = (args: ReadonlyArray<string>, timeoutMs = 30_000) =>
  run(process.execPath, [cli, ...args], timeoutMs)

/**
 * A scope for the servers a whole file shares: `start` builds into it (from
 * `beforeAll`), `close` (from `afterAll`) kills every process and server.
 */
export const suiteScope = () => {
  const scope = Effect.runSync(Scope.make())
  return {
    start: <A, E>(effect: Effect.Effect<A, E, Scope.Scope>): Promise<A> =>
      Effect.runPromise(Scope.provide(effect, scope)),
    close: (): Promise<void> => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
