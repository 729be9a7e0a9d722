// NodeResolver.dns: A/AAAA records as endpoint addresses. The sandbox has no
// DNS server, so the system resolver (`lookup: true`, /etc/hosts) stands in
// for it; an unknown name fails (the client then keeps its endpoints).
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Client from "../../src/Client.ts"
import * as NodeResolver from "../../src/node/NodeResolver.ts"

describe("NodeResolver.dns", () => {
  it.live("resolves a name to host:port endpoints, IPv6 in brackets", () =>
    Effect.gen(function*() {
      const resolver = NodeResolver.dns("localhost", 7475, { lookup: true })
      expect(Client.isResolver(resolver)).toBe(true)
      const addresses = yield* resolver.resolve
      expect(addresses.length).toBeGreaterThan(0)
      for (const address of addresses) expect(address).toMatch(/^(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):7475$/)
      const v4 = yield* NodeResolver.dns("localhost", 1, { lookup: true, family: 4 }).resolve
      expect(v4).toContain("127.0.0.1:1")
    }))

  it.live("a name with no record fails", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(NodeResolver.dns("no-such-host.invalid", 7475, { lookup: true }).resolve)
      expect(exit._tag).toBe("Failure")
    }))
})
