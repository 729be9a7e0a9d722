// The suite's guard: inside the repository missing Go binaries fail the run
// with the path looked at; outside it (no .git at the root) the suite skips
// with the reason printed. Checked by loading peer.ts in a child Node process
// with the binaries pointed elsewhere, from the repository and from a copy.
import { describe, expect, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const root = new URL("../../", import.meta.url).pathname
const peer = Path.join(root, "test/interop/peer.ts")

const load = (file: string, binDir: string) =>
  ChildProcess.spawnSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `const p = await import(${JSON.stringify(file)}); console.log("available", p.available)`
    ],
    { encoding: "utf8", timeout: 20_000, env: { ...process.env, QUASIZERO_GO_PEER_BIN: binDir } }
  )

describe("interop suite guard", () => {
  it("inside the repository, missing binaries fail with a clear message", () => {
    const result = load(peer, "/nonexistent/go-peer")
    expect(result.status).not.toBe(0)
    expect(result.stderr).toContain(
      "interop suite cannot run: Go peer binaries missing or not executable: /nonexistent/go-peer/qz-server"
    )
  })

  it("outside the repository, missing binaries skip the suite and say why", () => {
    const copy = Fs.mkdtempSync(Path.join(Os.tmpdir(), "qz-interop-"))
    try {
      Fs.mkdirSync(Path.join(copy, "test/interop"), { recursive: true })
      Fs.copyFileSync(peer, Path.join(copy, "test/interop/peer.ts"))
      Fs.symlinkSync(Path.join(root, "node_modules"), Path.join(copy, "node_modules"))
      const result = load(Path.join(copy, "test/interop/peer.ts"), "/nonexistent/go-peer")
      expect(result.status, result.stderr).toBe(0)
      expect(result.stdout).toContain("available false")
      expect(result.stderr).toContain(
        "[interop] skipped outside the repository: Go peer binaries missing or not executable"
      )
    } finally {
      Fs.rmSync(copy, { recursive: true, force: true })
    }
  })

  it("here, the binaries are present", () => {
    const result = load(
      peer,
      process.env.QUASIZERO_GO_PEER_BIN ?? Path.resolve(root, "../shared/peers/go-quasizero/bin")
    )
    expect([result.status, result.stdout.trim()]).toEqual([0, "available true"])
  })
})
