// `quasizero serve --metrics HOST:PORT`: the server's metrics in the
// Prometheus text format, scraped over HTTP from a real child process.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as Request from "../../src/Request.ts"
import * as Wire from "../../src/Wire.ts"
import * as Raw from "../support/rawClient.ts"

const cli = new URL("../../src/bin/quasizero.ts", import.meta.url).pathname

/** `serve` with `--metrics`: resolves once both lines (metrics, listening) are out. */
const spawnServe = Effect.acquireRelease(
  Effect.callback<{ readonly child: ChildProcess.ChildProcess; readonly lines: Array<string> }, Error>((resume) => {
    const child = ChildProcess.spawn(process.execPath, [cli, "serve", "--port", "0", "--metrics", "127.0.0.1:0"], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    let err = ""
    child.stdout.on("data", (d) => {
      out += d
      const lines = out.split("\n").filter((l) => l.length > 0)
      if (lines.length >= 2) resume(Effect.succeed({ child, lines }))
    })
    child.stderr.on("data", (d) => (err += d))
    child.on("exit", (code) => resume(Effect.fail(new Error(`exited ${code}: ${err}`))))
  }),
  ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
)

describe("quasizero serve --metrics", () => {
  it.live("serves the server's counters at /metrics in the Prometheus text format", () =>
    Effect.gen(function*() {
      const { lines } = yield* spawnServe
      const url = /^metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)$/.exec(lines[0]!)?.[1]
      const port = Number(/^listening on 127\.0\.0\.1:(\d+)$/.exec(lines[1]!)?.[1])
      expect(url, lines[0]).toBeDefined()
      const client = yield* Raw.connect(port)
      yield* client.write(Wire.encodeRequests([Request.makeUnsafe(1), Request.makeUnsafe(1), Request.makeUnsafe(2)]))
      yield* client.read(3)
      const response = yield* Effect.promise(() => fetch(url!))
      expect(response.headers.get("content-type")).toContain("text/plain")
      const text = yield* Effect.promise(() => response.text())
      expect(text).toContain("# TYPE quasizero_server_requests_total counter")
      expect(text).toContain("quasizero_server_requests_total 3")
      expect(text).toContain('quasizero_server_requests_by_code{key="1"} 2')
      expect(text).toContain("quasizero_server_connections_open 1")
    }).pipe(Effect.scoped), 20_000)
})
