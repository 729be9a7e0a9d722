// Every ```ts block of the README and every JSDoc @example in src/ is
// type-checked as its own module against the package's entry points
// ("quasizero", "quasizero/node", "quasizero/testing" map to src/), so the
// documentation cannot drift from the API.
import { describe, expect, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

const root = new URL("..", import.meta.url).pathname
const out = Path.join(root, "node_modules/.snippets")

interface Snippet {
  readonly origin: string // file:line of the block's first line
  readonly code: string
}

const fromMarkdown = (file: string): Array<Snippet> => {
  const lines = Fs.readFileSync(Path.join(root, file), "utf8").split("\n")
  const snippets: Array<Snippet> = []
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```ts") continue
    const start = i + 1
    while (++i < lines.length && lines[i] !== "```");
    snippets.push({ origin: `${file}:${start + 1}`, code: lines.slice(start, i).join("\n") })
  }
  return snippets
}

const fromJsDoc = (file: string): Array<Snippet> => {
  const lines = Fs.readFileSync(Path.join(root, file), "utf8").split("\n")
  const snippets: Array<Snippet> = []
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\* ```ts\b/.test(lines[i]!)) continue
    const start = i + 1
    while (++i < lines.length && !/^\s*\* ```\s*$/.test(lines[i]!));
    const code = lines.slice(start, i).map((line) => line.replace(/^\s*\*( |$)/, "")).join("\n")
    snippets.push({ origin: `${file}:${start + 1}`, code })
  }
  return snippets
}

const sources = (dir: string): Array<string> =>
  Fs.readdirSync(Path.join(root, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sources(Path.join(dir, entry.name))
      : entry.name.endsWith(".ts")
      ? [Path.join(dir, entry.name)]
      : []
  )

describe("documentation snippets", () => {
  it("every README ```ts block and every @example in src/ type-checks", () => {
    const snippets = [...fromMarkdown("README.md"), ...sources("src").flatMap(fromJsDoc)]
    expect(snippets.length).toBeGreaterThan(50)
    Fs.rmSync(out, { recursive: true, force: true })
    Fs.mkdirSync(out, { recursive: true })
    const files = snippets.map((snippet, i) => {
      const name = `snippet${i}.ts`
      // `export {}`: each snippet is its own module, even without imports.
      Fs.writeFileSync(Path.join(out, name), `${snippet.code}\nexport {}\n`)
      return name
    })
    const src = (path: string) => [Path.join(root, "src", path)]
    Fs.writeFileSync(
      Path.join(out, "tsconfig.json"),
      JSON.stringify({
        extends: Path.join(root, "tsconfig.json"),
        compilerOptions: {
          noUnusedLocals: false,
          noUnusedParameters: false,
          paths: {
            quasizero: src("index.ts"),
            "quasizero/node": src("node/index.ts"),
            "quasizero/testing": src("testing/index.ts")
          }
        },
        include: [],
        files
      })
    )
    const result = ChildProcess.spawnSync(
      process.execPath,
      [Path.join(root, "node_modules/typescript/bin/tsc"), "-p", Path.join(out, "tsconfig.json")],
      { encoding: "utf8" }
    )
    // Name each error by the README line or source line of its snippet.
    const errors = result.stdout.split("\n").filter((line) => line.length > 0).map((line) =>
      line.replace(/^(?:.*\/)?snippet(\d+)\.ts\((\d+),(\d+)\)/, (_m, index: string, row: string) => {
        const snippet = snippets[Number(index)]!
        const [file, first] = snippet.origin.split(":")
        return `${file}:${Number(first) + Number(row) - 1}`
      })
    )
    expect(errors).toEqual([])
    expect(result.status).toBe(0)
  }, 120_000)
})
