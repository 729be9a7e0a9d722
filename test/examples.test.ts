// Every example runs as users run it (a child process) and prints what its
// header promises.
import { describe, expect, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"

const run = (name: string) =>
  ChildProcess.spawnSync(process.execPath, [new URL(`../examples/${name}.ts`, import.meta.url).pathname], {
    encoding: "utf8",
    timeout: 20_000
  })

describe("examples", () => {
  it("echo.ts prints Go's example output and exits 0 after a graceful shutdown", () => {
    const { stdout, stderr, status } = run("echo")
    expect(stderr).toBe("")
    expect(stdout).toBe('server responded to ECHO with "hello"\nserver responded to SHUTDOWN with "OK"\n')
    expect(status).toBe(0)
  }, 30_000)

  it("typed.ts round-trips typed commands and rebuilds the typed error", () => {
    const { stdout, status } = run("typed")
    expect(stdout).toBe(
      'Get language -> TypeScript\nGet weather -> NotFound { key: "weather" } (no such key: weather)\n'
    )
    expect(status).toBe(0)
  }, 30_000)

  it("testclock.ts times a handler out under TestClock without waiting", () => {
    const { stdout, status } = run("testclock")
    expect(stdout).toMatch(
      /^after 1\.999 s: still waiting\nafter 2 s: error_message = "backend timed out after 2 seconds"\n/
    )
    const wall = Number(/wall time: (\d+) ms/.exec(stdout)?.[1])
    expect(wall).toBeLessThan(1900) // the 2 simulated seconds did not pass in real time
    expect(status).toBe(0)
  }, 30_000)

  it("cluster.ts: three replicas behind one key-affinity client, each key on one replica", () => {
    const { stdout, stderr, status } = run("cluster")
    expect(stderr).toBe("")
    expect(stdout).toBe(
      "3 replicas, one key-affinity client\n"
        + "30 users x 3 calls: each user always reached the same replica\n"
        + "every replica serves some users\n"
    )
    expect(status).toBe(0)
  }, 30_000)

  it("the README's Testing block is examples/testing.test.ts, verbatim (which npm test runs)", () => {
    const readme = Fs.readFileSync(new URL("../README.md", import.meta.url), "utf8")
    const example = Fs.readFileSync(new URL("../examples/testing.test.ts", import.meta.url), "utf8")
    expect(readme).toContain("```ts\n" + example + "```\n")
  })
})
