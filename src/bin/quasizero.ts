#!/usr/bin/env node
/**
 * The `quasizero` command: `serve`, `call`, `bench`.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import { CliError, Command } from "effect/cli"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { bench } from "./bench.ts"
import { call, CommandFailed } from "./call.ts"
import { serve } from "./serve.ts"

const main = Command.make("quasizero").pipe(
  Command.withDescription("quasizero: a tiny, fast binary RPC, wire-compatible with Go bsm/quasizero"),
  Command.withSubcommands([serve, call, bench])
)

// Interruption is a normal stop; parse errors were rendered by Command.run and
// command failures printed by the command itself.
const alreadyReported = (cause: Cause.Cause<unknown>): boolean => {
  if (Cause.hasInterruptsOnly(cause)) return true
  const error = Cause.findErrorOption(cause)
  return error._tag === "Some" && (error.value instanceof CommandFailed || CliError.isCliError(error.value))
}

// SIGINT/SIGTERM interrupt the program; a server that then shut down
// gracefully has done its job, so that exit is 0, not 130. Commands print
// their own one-line errors (CommandFailed); anything else is reported whole.
NodeRuntime.runMain(
  Command.run(main, { version: "0.1.0" }).pipe(
    Effect.tapCause((cause) => (alreadyReported(cause) ? Effect.void : Console.error(Cause.pretty(cause)))),
    Effect.provide(NodeServices.layer)
  ),
  {
    disableErrorReporting: true,
    teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
  }
)
