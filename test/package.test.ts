// The published package as users get it: `npm pack`, installed into an empty
// project, run with plain Node (no TypeScript tooling): the binary and the
// public entry points.
import { describe, expect, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const root = new URL("..", import.meta.url).pathname
const npm = (args: ReadonlyArray<string>, cwd: string) =>
  ChildProcess.execFileSync("npm", [...args], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })

describe("npm package", () => {
  it("installs from its tarball and runs without TypeScript tooling", () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "quasizero-pack-"))
    try {
      const packed = JSON.parse(npm(["pack", "--json", "--pack-destination", dir], root)) as Array<{
        filename: string
        files: Array<{ path: string }>
      }>
      const files = packed[0]!.files.map((f) => f.path)
      expect(files).toContain("dist/index.js")
      expect(files).toContain("dist/bin/quasizero.js")
      expect(files.some((f) => f.startsWith("src/") || f.startsWith("test/"))).toBe(false)
      const app = Path.join(dir, "app")
      Fs.mkdirSync(app)
      Fs.writeFileSync(Path.join(app, "package.json"), JSON.stringify({ name: "app", type: "module", private: true }))
      // Dependencies come from npm's cache, filled by the project's own install.
      npm(["install", "--prefer-offline", "--no-audit", "--no-fund", Path.join(dir, packed[0]!.filename)], app)
      const help = ChildProcess.execFileSync(process.execPath, [
        Path.join(app, "node_modules/.bin/quasizero"),
        "--help"
      ], {
        encoding: "utf8"
      })
      expect(help).toMatch(/serve/)
      Fs.writeFileSync(
        Path.join(app, "smoke.js"),
        `import { Server, Client, Request, Wire, Command } from "quasizero"
import { NodeServer, NodeClient } from "quasizero/node"
const frame = Wire.encodeRequest(Request.makeUnsafe(1, { payload: "hi" }))
console.log(typeof Server.layer, typeof Client.make, typeof Command.make, typeof NodeServer.layer, typeof NodeClient.layer, frame.length)
`
      )
      const out = ChildProcess.execFileSync(process.execPath, [Path.join(app, "smoke.js")], {
        cwd: app,
        encoding: "utf8"
      })
      expect(out.trim()).toBe("function function function function function 7")
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 180_000)
})
