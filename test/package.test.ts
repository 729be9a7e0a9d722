// The published package as users get it: `npm pack`, installed into an empty
// app next to the app's own effect and @effect/platform-node (peer
// dependencies: one copy of effect, the app's), then type-checked and run.
//
// The app's effect is a different 4.x patch than the one we develop against:
// no 4.1.x but 4.1.0 is released yet (4.0.x lacks APIs we use, e.g.
// Pool.stats), so the test repacks our effect 4.1.0 as 4.1.99 — a version no
// lockfile of ours names — which is exactly the situation that used to give
// the app a second copy of effect and broke `Handlers.layer`'s types.
import { describe, expect, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const root = new URL("..", import.meta.url).pathname
const npm = (args: ReadonlyArray<string>, cwd: string) =>
  ChildProcess.execFileSync("npm", [...args], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
const node = (args: ReadonlyArray<string>, cwd: string) =>
  ChildProcess.execFileSync(process.execPath, [...args], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
const readJson = (path: string) => JSON.parse(Fs.readFileSync(path, "utf8"))

const otherEffect = "4.1.99"

// A copy of the installed effect package under another version number.
const repackEffect = (dir: string): string => {
  const copy = Path.join(dir, "effect-copy")
  Fs.cpSync(Path.join(root, "node_modules/effect"), copy, { recursive: true })
  const manifest = readJson(Path.join(copy, "package.json"))
  manifest.version = otherEffect
  delete manifest.scripts
  Fs.writeFileSync(Path.join(copy, "package.json"), JSON.stringify(manifest, null, 2))
  const packed = JSON.parse(npm(["pack", "--json", "--pack-destination", dir], copy)) as Array<{ filename: string }>
  return Path.join(dir, packed[0]!.filename)
}

const app = `import { Context, Effect, Layer, Schema } from "effect"
import { Client, ClientError, Command, CommandGroup, Handlers, Request, Response, ServerError } from "quasizero"
import { NodeClient, NodeServer } from "quasizero/node"
import { TestServer } from "quasizero/testing"

class Greeting extends Context.Service<Greeting, { readonly hello: string }>()("app/Greeting") {}
class Clock2 extends Context.Service<Clock2, { readonly now: number }>()("app/Clock2") {}
const Hello = Command.make("Hello", { code: 10, payload: Schema.String, success: Schema.String })
const Count = Command.make("Count", { code: 11, success: Schema.Number })
const Group = CommandGroup.make(Hello, Count)

// Handlers needing two services, in one table: their union is inferred.
const HandlersLive = Handlers.layer([
  ...Group.toHandlers({
    Hello: (name) => Effect.map(Effect.service(Greeting), (g) => g.hello + " " + name),
    Count: () => Effect.map(Effect.service(Clock2), (c) => c.now)
  }),
  [1, () => Effect.succeed("PONG")]
]).pipe(
  Layer.provide(Layer.succeed(Greeting)({ hello: "hello" })),
  Layer.provide(Layer.succeed(Clock2)({ now: 7 }))
)

const program = Effect.gen(function*() {
  const pong = yield* Client.call(Request.makeUnsafe(1))
  const group = yield* CommandGroup.client(Group)
  const hello = yield* group.Hello("app")
  const count = yield* group.Count()
  const layers = [typeof NodeServer.layer, typeof NodeClient.layer, typeof ClientError, typeof ServerError].join(",")
  console.log([Response.text(pong), hello, count, layers].join(" "))
}).pipe(Effect.provide(TestServer.layer().pipe(Layer.provide(HandlersLive))))

Effect.runPromise(program)
`

describe("npm package", () => {
  it("installs from its tarball beside another effect patch: one copy, type-checks and runs", () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "quasizero-pack-"))
    try {
      const packed = JSON.parse(npm(["pack", "--json", "--pack-destination", dir], root)) as Array<{
        filename: string
        files: Array<{ path: string }>
      }>
      const files = packed[0]!.files.map((f) => f.path)
      expect(files).toContain("dist/index.js")
      expect(files).toContain("dist/testing/index.js")
      expect(files).toContain("dist/bin/quasizero.js")
      expect(files.some((f) => f.startsWith("src/") || f.startsWith("test/"))).toBe(false)
      // No source maps pointing at sources that are not shipped.
      expect(files.filter((f) => f.endsWith(".map"))).toEqual([])

      const manifest = readJson(Path.join(root, "package.json"))
      expect(Object.keys(manifest.peerDependencies).sort()).toEqual(["@effect/platform-node", "effect"])
      expect(manifest.dependencies?.effect).toBeUndefined()

      const effectTarball = repackEffect(dir)
      const appDir = Path.join(dir, "app")
      Fs.mkdirSync(appDir)
      Fs.writeFileSync(
        Path.join(appDir, "package.json"),
        JSON.stringify({ name: "app", type: "module", private: true })
      )
      // Other dependencies come from npm's cache, filled by the project's own install.
      npm([
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        effectTarball,
        `@effect/platform-node@${readJson(Path.join(root, "node_modules/@effect/platform-node/package.json")).version}`,
        `@types/node@${readJson(Path.join(root, "node_modules/@types/node/package.json")).version}`,
        `vitest@${readJson(Path.join(root, "node_modules/vitest/package.json")).version}`,
        `@effect/vitest@${readJson(Path.join(root, "node_modules/@effect/vitest/package.json")).version}`,
        Path.join(dir, packed[0]!.filename)
      ], appDir)

      // One effect, the app's.
      expect(readJson(Path.join(appDir, "node_modules/effect/package.json")).version).toBe(otherEffect)
      expect(Fs.existsSync(Path.join(appDir, "node_modules/quasizero/node_modules/effect"))).toBe(false)
      expect(Fs.existsSync(Path.join(appDir, "node_modules/@effect/platform-node/node_modules/effect"))).toBe(false)

      const help = node([Path.join(appDir, "node_modules/.bin/quasizero"), "--help"], appDir)
      expect(help).toMatch(/serve/)

      Fs.writeFileSync(Path.join(appDir, "main.ts"), app)
      // The README's Testing block, as a user copies it into their own suite.
      const readme = Fs.readFileSync(Path.join(root, "README.md"), "utf8")
      const testing = readme.slice(readme.indexOf("## Testing"))
      const block = /```ts\n([\s\S]*?)```/.exec(testing)![1]!
      expect(block).toContain("TestServer.layer")
      Fs.writeFileSync(Path.join(appDir, "timeouts.test.ts"), block)
      Fs.writeFileSync(
        Path.join(appDir, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2023",
            module: "NodeNext",
            moduleResolution: "NodeNext",
            strict: true,
            exactOptionalPropertyTypes: true,
            noEmit: true,
            types: ["node"],
            allowImportingTsExtensions: true
          },
          include: ["main.ts", "timeouts.test.ts"]
        })
      )
      // Type-checked against the installed .d.ts files (the project's own tsc, nothing mapped to src).
      node([Path.join(root, "node_modules/typescript/bin/tsc"), "-p", appDir], appDir)
      expect(node([Path.join(appDir, "main.ts")], appDir).trim()).toBe(
        "PONG hello app 7 function,function,function,function"
      )
      // ... and passes on the first try, with the app's vitest and effect.
      const vitest = ChildProcess.spawnSync(
        process.execPath,
        [Path.join(appDir, "node_modules/vitest/vitest.mjs"), "run", "--root", appDir],
        { cwd: appDir, encoding: "utf8" }
      )
      // oxlint-disable-next-line no-control-regex
      expect(vitest.stdout.replace(/\x1b\[\d+m/g, "")).toMatch(/Tests\s+2 passed/)
      expect(vitest.status).toBe(0)
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 240_000)
})
