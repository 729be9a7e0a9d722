/**
 * `quasizero serve`: the demo command set on a TCP port.
 *
 * @since 0.1.0
 * @internal
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import { Command, Flag } from "effect/cli"
import * as Demo from "../Demo.ts"
import * as Server from "../Server.ts"
import * as NodeServer from "../node/NodeServer.ts"
import * as Parse from "./parse.ts"

const durationFlag = (name: string, description: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(`${description} (e.g. 5s, 250ms, "1 minute"; 0 = off)`),
    Flag.mapTryCatch((s) => {
      const ms = Parse.duration(s)
      if (ms === undefined) throw new Error(`--${name}: not a duration: ${s}`)
      return ms
    }, (e) => String((e as Error).message)),
    Flag.optional
  )

const some = <A>(o: { readonly _tag: "Some"; readonly value: A } | { readonly _tag: "None" }): A | undefined =>
  o._tag === "Some" ? o.value : undefined

/** @since 0.1.0 */
export const serve = Command.make("serve", {
  host: Flag.String("host").pipe(Flag.withDescription("address to listen on"), Flag.withDefault("127.0.0.1")),
  port: Flag.Int("port").pipe(Flag.withDescription("TCP port; 0 picks a free one"), Flag.withDefault(7701)),
  timeout: durationFlag("timeout", "a started frame must complete, and a write drain, within this"),
  idleTimeout: durationFlag("idle-timeout", "close connections idle for this long"),
  maxFrameSize: Flag.String("max-frame-size").pipe(
    Flag.withDescription("largest request frame, e.g. 16MiB"),
    Flag.mapTryCatch((s) => {
      const n = Parse.byteSize(s)
      if (n === undefined) throw new Error(`--max-frame-size: not a byte size: ${s}`)
      return n
    }, (e) => String((e as Error).message)),
    Flag.optional
  ),
  concurrency: Flag.Int("concurrency").pipe(Flag.withDescription("handlers run at once per connection"), Flag.optional)
}, (flags) => {
  const options: Server.Options = {
    timeout: some(flags.timeout),
    idleTimeout: some(flags.idleTimeout),
    maxFrameSize: some(flags.maxFrameSize),
    concurrency: some(flags.concurrency)
  }
  const ServerLive = Server.layer(options).pipe(
    Layer.provide(Demo.layer),
    Layer.provide(NodeServer.layer({ host: flags.host, port: flags.port }))
  )
  return Effect.gen(function*() {
    const { address } = yield* Server.Server
    const where = NetAddress.isInetAddress(address)
      ? `${NetAddress.formatUrlHost(address.address)}:${address.port}`
      : NetAddress.formatSocketAddress(address)
    yield* Console.log(`listening on ${where}`)
    return yield* Effect.never
  }).pipe(Effect.provide(ServerLive))
}).pipe(Command.withDescription("Serve the demo commands: 1 PING, 2 ECHO, 3 FAIL, 4 META, 5 SLEEP"))
