#!/usr/bin/env node
/**
 * The `quasizero` command: `serve`, `call`, `bench`.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { Command } from "effect/cli"
import { serve } from "./serve.ts"

const main = Command.make("quasizero").pipe(
  Command.withDescription("quasizero: a tiny, fast binary RPC, wire-compatible with Go bsm/quasizero"),
  Command.withSubcommands([serve])
)

// SIGINT/SIGTERM interrupt the program; a server that then shut down
// gracefully has done its job, so that exit is 0, not 130.
NodeRuntime.runMain(
  Command.run(main, { version: "0.1.0" }).pipe(Effect.provide(NodeServices.layer)),
  {
    teardown: (exit, onExit) =>
      onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
  }
)
