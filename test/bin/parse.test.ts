import { describe, expect, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Parse from "../../src/bin/parse.ts"

describe("CLI value parsers", () => {
  it("reads Go-style and Effect-style durations as milliseconds", () => {
    expect(Parse.duration("2s")).toBe(2000)
    expect(Parse.duration("250ms")).toBe(250)
    expect(Parse.duration("1m30s")).toBe(90_000)
    expect(Parse.duration("1h")).toBe(3_600_000)
    expect(Parse.duration("1.5s")).toBe(1500)
    expect(Parse.duration("500us")).toBe(0.5)
    expect(Parse.duration("5 seconds")).toBe(5000)
    expect(Parse.duration("100")).toBe(100)
    expect(Parse.duration("0")).toBe(0)
    expect(Parse.duration("Infinity")).toBe(Infinity)
    for (const bad of ["soon", "-1s", "5 parsecs", "", "s", "1d"]) expect(Parse.duration(bad), bad).toBeUndefined()
  })

  it("reads byte sizes: KB = 1000, KiB = 1024", () => {
    expect(Parse.byteSize("1048576")).toBe(1 << 20)
    expect(Parse.byteSize("16MiB")).toBe(1 << 24)
    expect(Parse.byteSize("64kb")).toBe(64_000)
    expect(Parse.byteSize("1 KiB")).toBe(1024)
    expect(Parse.byteSize("Infinity")).toBe(Infinity)
    for (const bad of ["big", "-1", "1.5 parsec", "16m", "1.5"]) expect(Parse.byteSize(bad), bad).toBeUndefined()
  })

  it("reads counts", () => {
    expect(Parse.count("1024")).toBe(1024)
    expect(Parse.count("Infinity")).toBe(Infinity)
    for (const bad of ["1.5", "-1", "1KiB", ""]) expect(Parse.count(bad), bad).toBeUndefined()
  })

  it("splits HOST:PORT, with brackets for IPv6", () => {
    expect(Parse.address("127.0.0.1:7701")).toEqual({ host: "127.0.0.1", port: 7701 })
    expect(Parse.address("[::1]:80")).toEqual({ host: "::1", port: 80 })
    expect(Parse.address(":9")).toEqual({ host: "127.0.0.1", port: 9 })
    for (const bad of ["nope", "host:99999", "host:"]) expect(Parse.address(bad), bad).toBeUndefined()
  })
})

const cli = new URL("../../src/bin/quasizero.ts", import.meta.url).pathname

/** `quasizero serve ...args` with `env`: its `listening on` line (then killed, unless `keep`), or its exit and stderr. */
const serve = (
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  keep?: (child: ChildProcess.ChildProcess) => void
) =>
  new Promise<{ readonly line?: string; readonly status?: number | null; readonly stderr: string }>((resolve) => {
    const child = ChildProcess.spawn(process.execPath, [cli, "serve", ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    child.stdout.on("data", (d) => {
      out += d
      const line = /^listening on .*$/m.exec(out)
      if (line === null) return
      if (keep === undefined) child.kill("SIGKILL")
      else keep(child)
      resolve({ line: line[0], stderr })
    })
    child.on("close", (status) => resolve({ status, stderr: stderr + out }))
  })

describe("quasizero serve reads the library's variables when a flag is absent", () => {
  it("QUASIZERO_PORT, QUASIZERO_TIMEOUT=5s and QUASIZERO_MAX_FRAME_SIZE=16MiB", async () => {
    const started = await serve([], { QUASIZERO_PORT: "0", QUASIZERO_TIMEOUT: "5s", QUASIZERO_MAX_FRAME_SIZE: "16MiB" })
    expect(started.line, started.stderr).toMatch(/^listening on 127\.0\.0\.1:\d+$/)
  }, 20_000)

  it("a bad variable fails with its name and the grammar; a flag wins over its variable", async () => {
    const bad = await serve(["--port", "0"], { QUASIZERO_TIMEOUT: "soon" })
    expect(bad.status).not.toBe(0)
    expect(bad.stderr).toContain("QUASIZERO_TIMEOUT")
    expect(bad.stderr).toContain("expected a duration such as 5s")
    const flag = await serve(["--port", "0", "--timeout", "1m30s"], { QUASIZERO_TIMEOUT: "soon" })
    expect(flag.line, flag.stderr).toMatch(/^listening on /)
  }, 20_000)
})

describe("quasizero call reads QUASIZERO_ADDRESS when --address is absent", () => {
  it("reaches the server it names; a bad one fails naming the variable", async () => {
    let server: ChildProcess.ChildProcess | undefined
    try {
      const started = await serve(["--port", "0"], {}, (child) => (server = child))
      const address = /listening on (.*)$/.exec(started.line ?? "")?.[1]
      expect(address, started.stderr).toBeDefined()
      const call = (env: Record<string, string>) =>
        ChildProcess.spawnSync(process.execPath, [cli, "call", "--code", "1"], {
          encoding: "utf8",
          timeout: 15_000,
          env: { ...process.env, ...env }
        })
      const ok = call({ QUASIZERO_ADDRESS: address! })
      expect(ok.stdout, ok.stderr).toContain(`"payload":"PONG"`)
      const bad = call({ QUASIZERO_ADDRESS: "nowhere" })
      expect(bad.status).not.toBe(0)
      expect(bad.stdout + bad.stderr).toContain("QUASIZERO_ADDRESS: expected HOST:PORT, got nowhere")
    } finally {
      server?.kill("SIGKILL")
    }
  }, 30_000)
})
