/**
 * Spin before park: after a socket write that expects an answer, keep the
 * event loop polling for a bounded window, so the thread (and, on a VM, its
 * vCPU) is awake when the reply or the next request lands, instead of
 * sleeping in `epoll_wait` and paying the wake-up. On a 2-vCPU Firecracker VM
 * that wake-up costs about 40 µs of CPU plus the run-queue wait, per request,
 * for one caller waiting on one reply; Go's runtime hides it by spinning
 * before it parks. Off by default (the `spin` option of `NodeServer` and
 * `NodeClient`): it trades CPU for latency.
 *
 * The loop is process-wide, so there is one spinner per process; each user
 * asks for its own window and the spinner runs until the latest one ends. It
 * is a `setImmediate` chain: while an immediate is pending, libuv polls with
 * a zero timeout, and every pass handles whatever I/O has arrived. The chain
 * stops by itself when the window passes, so it never keeps the process alive
 * beyond it.
 *
 * @since 0.2.0
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Options from "../Options.ts"

/**
 * The largest `spin` either side accepts: 1 ms. Past it the poll costs more
 * than the wake-up it saves, on any machine we measured.
 *
 * @since 0.2.0
 */
export const maxSpin: Duration.Duration = Duration.millis(1)

/**
 * Resolves a `spin` option to microseconds: `undefined` is 0 (off);
 * anything else must be a duration in `[0, maxSpin]`.
 *
 * @since 0.2.0
 */
export const resolveMicros = (
  value: Options.DurationInput | undefined
): Result.Result<number, Options.Invalid> =>
  Options.validate((check) => {
    if (value === undefined) return 0
    const expected = `a duration in [0, ${Options.formatDuration(maxSpin)}] (0: off), such as 50us`
    const decoded = Options.decodeDuration(value)
    if (
      Option.isNone(decoded) || Duration.isNegative(decoded.value) || !Duration.isFinite(decoded.value)
      || Duration.isGreaterThan(decoded.value, maxSpin)
    ) return check.reject("spin", value, expected)
    return Duration.toMicros(decoded.value)
  })

// The end of the current window, in `performance.now()` milliseconds. Busy-
// waiting on `performance.now()` and not on `Clock` is deliberate: this is an
// I/O-polling policy of the real event loop (how long to keep polling before
// blocking), not a timer of the program, and a `TestClock` must not stretch
// or freeze it.
let until = 0
let spinning = false
let ticks = 0

const tick = (): void => {
  ticks++
  if (performance.now() < until) setImmediate(tick)
  else spinning = false
}

/**
 * Called after a write: keeps the loop polling until at least `micros` µs
 * from now (the window only grows: to the later of its end and now +
 * `micros`). `0` is off and costs one comparison.
 *
 * @since 0.2.0
 */
export const afterWrite = (micros: number): void => {
  if (micros <= 0) return
  const end = performance.now() + micros / 1000
  if (end > until) until = end
  if (!spinning) {
    spinning = true
    setImmediate(tick)
  }
}

/**
 * The spinner's state, for tests: whether a chain is running, the window's
 * end (`performance.now()` ms) and the polls made so far in this process.
 *
 * @since 0.2.0
 */
export const state = (): { readonly spinning: boolean; readonly until: number; readonly ticks: number } => ({
  spinning,
  until,
  ticks
})
