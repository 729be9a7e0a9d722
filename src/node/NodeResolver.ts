/**
 * DNS discovery for a multi-endpoint client: the A and AAAA records of a
 * name, re-resolved on a schedule, each address with the given port. This is
 * how a Kubernetes headless Service (one A record per ready pod) or a
 * round-robin DNS name is consumed.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Schedule from "effect/Schedule"
import * as Dns from "node:dns/promises"
import * as Client from "../Client.ts"

/**
 * A `Client.Resolver` over DNS: `hostname`'s A and AAAA records (`family`
 * 4 or 6 for one of them), with `port`, re-resolved `every` interval
 * (default 30 seconds) or on `schedule`. A lookup that fails, or finds no
 * record, keeps the current endpoints. Names such as `localhost` that live
 * in `/etc/hosts` and not in DNS resolve with `lookup: true` (the system
 * resolver, `dns.lookup`).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * import { NodeClient, NodeResolver } from "quasizero/node"
 * // A headless Service `qz` in namespace `prod`, every pod on port 7475:
 * const ClientLive = NodeClient.layer({
 *   endpoints: NodeResolver.dns("qz.prod.svc.cluster.local", 7475, { every: "10 seconds" }),
 *   balancer: Client.leastInFlight
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const dns = (
  hostname: string,
  port: number,
  options?: {
    readonly family?: 4 | 6 | undefined
    readonly lookup?: boolean | undefined
    readonly every?: Duration.Input | undefined
    readonly schedule?: Schedule.Schedule<unknown, unknown> | undefined
  } | undefined
): Client.Resolver =>
  Client.resolver(
    Effect.flatMap(
      Effect.tryPromise(() => resolveAll(hostname, options?.family, options?.lookup === true)),
      (ips) =>
        ips.length === 0
          ? Effect.fail(new Error(`no A/AAAA record for ${hostname}`))
          : Effect.succeed(ips.map((ip) => (ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`)))
    ),
    { every: options?.every ?? Duration.seconds(30), schedule: options?.schedule }
  )

const resolveAll = async (hostname: string, family: 4 | 6 | undefined, lookup: boolean): Promise<Array<string>> => {
  if (lookup) {
    const found = await Dns.lookup(hostname, { all: true, ...(family === undefined ? {} : { family }) })
    return Array.from(new Set(found.map((a) => a.address))).sort()
  }
  const none = () => [] as Array<string>
  const [v4, v6] = await Promise.all([
    family === 6 ? none() : Dns.resolve4(hostname).catch(none),
    family === 4 ? none() : Dns.resolve6(hostname).catch(none)
  ])
  return [...v4, ...v6].sort()
}
