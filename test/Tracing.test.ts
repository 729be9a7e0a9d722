// Traces across the wire: a client call made in a span carries traceparent
// and b3 in its metadata, and the server's request span (spans: true)
// continues that trace, over a real loopback socket, checked with an
// in-memory tracer that records every span.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import * as Client from "../src/Client.ts"
import * as Demo from "../src/Demo.ts"
import * as NodeClient from "../src/node/NodeClient.ts"
import * as Request from "../src/Request.ts"
import * as Response from "../src/Response.ts"
import * as Harness from "./support/harness.ts"

/** A tracer that keeps every span it makes. */
const recording = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span(options) {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}

const META = Request.makeUnsafe(Demo.META)
const named = (spans: ReadonlyArray<Tracer.NativeSpan>, name: string) => spans.filter((s) => s.name === name)

describe("trace propagation over metadata", () => {
  it.live("client span and server span share one trace id; the server span's parent is the client span", () => {
    const { spans, tracer } = recording()
    return Effect.gen(function*() {
      const { port } = yield* Harness.tcp({ spans: true })
      const dialer = yield* NodeClient.make({ host: "127.0.0.1", port })
      const client = yield* Client.make({ tracing: { spans: true } }).pipe(Effect.provideService(Client.Dialer, dialer))
      const reply = yield* client.call(META).pipe(Effect.withSpan("caller"))
      // META echoes the request metadata: what went over the wire.
      const traceparent = reply.metadata.get("traceparent")
      expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
      expect(reply.metadata.get("b3")).toMatch(/^[0-9a-f]{32}-[0-9a-f]{16}-1-[0-9a-f]{16}$/)
      const [caller] = named(spans, "caller")
      const [call] = named(spans, "quasizero.call")
      const [request] = named(spans, "quasizero.request")
      expect(call!.traceId).toBe(caller!.traceId)
      expect(request!.traceId).toBe(caller!.traceId)
      expect(call!.kind).toBe("client")
      expect(request!.kind).toBe("server")
      const parent = Option.getOrThrow(request!.parent)
      expect(parent.spanId).toBe(call!.spanId)
      expect(traceparent).toBe(`00-${call!.traceId}-${call!.spanId}-01`)
      expect(call!.attributes.get("quasizero.code")).toBe(Demo.META)
      expect(call!.attributes.get("quasizero.endpoint")).toBe(`127.0.0.1:${port}`)
      expect(call!.attributes.get("quasizero.outcome")).toBe("ok")
      expect(call!.status._tag).toBe("Ended")
    }).pipe(Effect.scoped, Effect.provideService(Tracer.Tracer, tracer))
  })

  it.live("without client spans, the caller's span is propagated; propagate: false, DisablePropagation or no span sends none", () => {
    const { spans, tracer } = recording()
    return Effect.gen(function*() {
      const server = yield* Harness.tcp({ spans: true })
      const address = `127.0.0.1:${server.port}`
      const client = yield* Client.make({ endpoints: [address] }).pipe(Effect.provide(NodeClient.layerDialers))
      const reply = yield* client.call(META).pipe(Effect.withSpan("caller"))
      const [caller] = named(spans, "caller")
      expect(reply.metadata.get("traceparent")).toBe(`00-${caller!.traceId}-${caller!.spanId}-01`)
      expect(named(spans, "quasizero.call")).toEqual([])
      expect(named(spans, "quasizero.request").map((s) => s.traceId)).toEqual([caller!.traceId])

      const bare = yield* client.call(META)
      expect(bare.metadata.size).toBe(0)

      // Inside a span, but in a region with propagation disabled: nothing sent.
      const disabled = yield* client.call(META).pipe(
        Effect.withSpan("caller"),
        Effect.provideService(Tracer.DisablePropagation, true)
      )
      expect(disabled.metadata.size).toBe(0)

      const quiet = yield* Client.make({ endpoints: [address], tracing: { propagate: false } }).pipe(
        Effect.provide(NodeClient.layerDialers)
      )
      const none = yield* quiet.call(META).pipe(Effect.withSpan("caller"))
      expect(Response.text(none)).toBe("META")
      expect(none.metadata.size).toBe(0)
    }).pipe(Effect.scoped, Effect.provideService(Tracer.Tracer, tracer))
  })
})
