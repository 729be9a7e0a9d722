// CPU time of a live process from /proc, to the nanosecond: the sum of its
// threads' schedstat run times (/proc/PID/stat counts in 10 ms ticks, too
// coarse for a one-second window).
import * as Fs from "node:fs"

/** User + system CPU time of a live process's threads in µs (`undefined` when unreadable). */
export const cpuUs = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    let ns = 0
    for (const tid of Fs.readdirSync(`/proc/${pid}/task`)) {
      ns += Number(Fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0])
    }
    return ns / 1000
  } catch {
    return undefined
  }
}
