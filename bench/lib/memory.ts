// What the client memory scripts (clientMemory.ts, clientDialAlloc.ts) share:
// re-running themselves with gc() exposed, and the raw server they dial.
import * as ChildProcess from "node:child_process"

const here = new URL("..", import.meta.url).pathname

/**
 * `gc`, re-running this script with `--expose-gc` (and `flags`) first when it
 * is not exposed: the child's exit ends this process.
 */
export const exposeGc = (flags: ReadonlyArray<string> = []): () => void => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc !== undefined) return gc
  const child = ChildProcess.spawnSync(process.execPath, ["--expose-gc", ...flags, ...process.argv.slice(1)], {
    stdio: "inherit"
  })
  process.exit(child.status ?? 1)
}

/** The raw node:net server (bench/servers/baseline.ts) in its own process. */
export const startBaselineServer = () =>
  new Promise<{ readonly host: string; readonly port: number; readonly stop: () => void }>((resolve, reject) => {
    const child = ChildProcess.spawn(process.execPath, [`${here}servers/baseline.ts`], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.on("data", (d) => {
      out += d
      const match = /listening on ([\d.]+):(\d+)/.exec(out)
      if (match) resolve({ host: match[1]!, port: Number(match[2]), stop: () => child.kill("SIGTERM") })
    })
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)))
  })
