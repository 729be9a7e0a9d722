/**
 * `quasizero bench`: the client side of a benchmark workload against any
 * server speaking the wire (ours or Go quasizero), with a progress line and
 * the same JSON result as the suite in `bench/`.
 *
 * @since 0.1.0
 * @internal
 */
import { Command, Flag } from "effect/cli"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Client from "../Client.ts"
import type * as Options from "../Options.ts"
import { addressFlag, withClient } from "./call.ts"
import * as Parse from "./parse.ts"
import * as Workload from "./workload.ts"

const durationFlag = (name: string, fallbackMs: number) =>
  Flag.String(name).pipe(
    Flag.mapTryCatch((s) => {
      const ms = Parse.duration(s)
      if (ms === undefined) throw new Error(`--${name}: not a duration: ${s}`)
      return ms
    }, (e) => String((e as Error).message)),
    Flag.withDefault(fallbackMs)
  )

/** @since 0.1.0 */
export const bench = Command.make("bench", {
  address: addressFlag,
  workload: Flag.Literals("workload", ["seq", "pipe10", "pipe100", "conc64", "echo1k"]).pipe(Flag.withDefault("seq")),
  duration: durationFlag("duration", 5000).pipe(Flag.withDescription("measured window")),
  warmup: durationFlag("warmup", 1000).pipe(Flag.withDescription("warm-up before measuring")),
  spin: Flag.String("spin").pipe(
    Flag.filter((s) => Parse.duration(s) !== undefined, (s) => `--spin: not a duration: ${s}`),
    Flag.withDescription(
      "keep polling this long after each request write, at most 1ms (e.g. 50us; 0 = off, see README)"
    ),
    Flag.withDefault("0")
  )
}, (flags) =>
  Effect.gen(function*() {
    const client = yield* Client.make()
    const workload = Workload.workloads[flags.workload]!
    yield* Console.error(
      `bench ${workload.name} against ${flags.address.host}:${flags.address.port}: `
        + `${flags.warmup} ms warm-up, ${flags.duration} ms measured`
    )
    const result = yield* Workload.run(client, workload, {
      warmupMs: flags.warmup,
      durationMs: flags.duration,
      onProgress: (done) => process.stderr.write(`  ${done} requests\n`)
    })
    yield* Console.log(JSON.stringify(result))
  }).pipe(withClient("bench", { ...flags.address, spin: flags.spin as Options.DurationInput }))).pipe(
    Command.withDescription("Run a benchmark workload against a server and print a JSON result")
  )
