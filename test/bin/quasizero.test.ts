// The CLI as users run it: a real child process on an ephemeral port.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as Request from "../../src/Request.ts"
import * as Wire from "../../src/Wire.ts"
import * as Raw from "../support/rawClient.ts"

const cli = new URL("../../src/bin/quasizero.ts", import.meta.url).pathname

/** Starts `quasizero ...args`, resolves with the process and its first stdout line. */
export const spawnCli = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly child: ChildProcess.ChildProcess; readonly firstLine: string }, Error>((resume) => {
      const child = ChildProcess.spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] })
      let out = ""
      let err = ""
      child.stdout.on("data", (d) => {
        out += d
        const nl = out.indexOf("\n")
        if (nl >= 0) resume(Effect.succeed({ child, firstLine: out.slice(0, nl) }))
      })
      child.stderr.on("data", (d) => (err += d))
      child.on("exit", (code) => resume(Effect.fail(new Error(`exited ${code}: ${err}`))))
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

const exitCode = (child: ChildProcess.ChildProcess) =>
  Effect.callback<number | null>((resume) => {
    if (child.exitCode !== null) return resume(Effect.succeed(child.exitCode))
    child.on("exit", (code) => resume(Effect.succeed(code)))
  })

describe("quasizero serve", () => {
  it.live("prints the bound address, serves the demo commands, exits 0 on SIGTERM", () =>
    Effect.gen(function*() {
      const { child, firstLine } = yield* spawnCli(["serve", "--port", "0", "--timeout", "5s", "--concurrency", "2"])
      const match = /^listening on 127\.0\.0\.1:(\d+)$/.exec(firstLine)
      expect(match, firstLine).not.toBeNull()
      const client = yield* Raw.connect(Number(match![1]))
      yield* client.write(Wire.encodeRequests([Request.make(1), Request.make(2, { payload: "hi" }), Request.make(3)]))
      const replies = yield* client.read(3)
      expect(replies.map((r) => [r.errorMessage, Raw.text(r.payload)])).toEqual([
        ["", "PONG"],
        ["", "hi"],
        ["something went wrong", ""]
      ])
      child.kill("SIGTERM")
      expect(yield* exitCode(child)).toBe(0)
    }), 20_000)

  it.live("rejects a malformed flag with a clear message", () =>
    Effect.gen(function*() {
      const result = ChildProcess.spawnSync(process.execPath, [cli, "serve", "--idle-timeout", "soon"], { encoding: "utf8" })
      expect(result.status).not.toBe(0)
      expect(result.stdout + result.stderr).toMatch(/--idle-timeout: not a duration: soon/)
    }), 20_000)
})
