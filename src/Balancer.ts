/**
 * How a multi-endpoint client (`Client.make({ endpoints })`) picks the
 * endpoint of each call: least-in-flight with two random choices (the
 * default), round-robin, or key affinity over a consistent-hash ring
 * (effect's `HashRing`). Only endpoints that are up are candidates: an
 * ejected endpoint leaves the ring, so with key affinity only its keys move
 * (to the next endpoint on the ring) and come back when it does. Re-exported
 * by `Client`.
 *
 * @since 0.2.0
 */
import * as HashRing from "effect/HashRing"
import * as PrimaryKey from "effect/PrimaryKey"
import * as Request from "./Request.ts"

/**
 * Least-in-flight with two random choices ("power of two choices"): two
 * endpoints drawn at random, the call goes to the one with fewer calls in
 * flight. Spreads load nearly as well as a full scan, at O(1).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const balancer: Client.Balancer = Client.leastInFlight
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface LeastInFlight {
  readonly _tag: "LeastInFlight"
}

/**
 * Each call to the next endpoint, in turn.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const balancer: Client.Balancer = Client.roundRobin
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface RoundRobin {
  readonly _tag: "RoundRobin"
}

/**
 * Calls with the same key go to the same endpoint while the set of
 * endpoints that are up is stable; adding one of N endpoints moves about
 * 1/N of the keys. A call without a key is balanced least-in-flight.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const byTenant: Client.Balancer = Client.keyAffinity({ metadata: "tenant" })
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface KeyAffinity {
  readonly _tag: "KeyAffinity"
  /** The key of a request; `undefined`: no affinity for this call. */
  readonly key: (request: Request.Request) => string | undefined
  /** Virtual points per endpoint on the ring (`HashRing`'s `baseWeight`). */
  readonly baseWeight: number
}

/**
 * The balancing policy of a multi-endpoint client.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const policies: ReadonlyArray<Client.Balancer> = [Client.leastInFlight, Client.roundRobin]
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Balancer = LeastInFlight | RoundRobin | KeyAffinity

/**
 * Least-in-flight with two random choices (the default).
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const options = { endpoints: ["10.0.0.1:7475", "10.0.0.2:7475"], balancer: Client.leastInFlight }
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const leastInFlight: Balancer = { _tag: "LeastInFlight" }

/**
 * Round-robin.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const options = { endpoints: ["10.0.0.1:7475", "10.0.0.2:7475"], balancer: Client.roundRobin }
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const roundRobin: Balancer = { _tag: "RoundRobin" }

/**
 * Key affinity: the key is a metadata entry (`{ metadata: "tenant" }`) or a
 * function of the request (`{ key: (request) => ... }`).
 *
 * @example
 * ```ts
 * import { Client, Request } from "quasizero"
 * const byMeta = Client.keyAffinity({ metadata: "user" })
 * const byPayload = Client.keyAffinity({ key: (request) => Request.text(request) })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const keyAffinity = (
  options:
    | { readonly metadata: string; readonly baseWeight?: number | undefined }
    | {
      readonly key: (request: Request.Request) => string | undefined
      readonly baseWeight?: number | undefined
    }
): Balancer => {
  const key = "metadata" in options
    ? ((name: string) => (request: Request.Request) => Request.getMeta(request, name))(options.metadata)
    : options.key
  return { _tag: "KeyAffinity", key, baseWeight: options.baseWeight ?? 128 }
}

// -----------------------------------------------------------------------------
// internal
// -----------------------------------------------------------------------------

/** What a picker needs of an endpoint. @internal */
export interface Node {
  readonly address: string
  readonly inflight: number
}

class RingNode<N extends Node> implements PrimaryKey.PrimaryKey {
  readonly node: N
  constructor(node: N) {
    this.node = node
  }
  [PrimaryKey.symbol](): string {
    return this.node.address
  }
}

/**
 * Picks among the endpoints that are up; `add`/`remove` keep the candidate
 * set (and the ring) in step with health and discovery.
 *
 * @example
 * ```ts
 * import { Client } from "quasizero"
 * const picker = Client.makePicker(Client.roundRobin)
 * picker.add({ address: "a:1", inflight: 0 })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 * @internal
 */
export const makePicker = <N extends Node>(balancer: Balancer): Picker<N> => new Picker(balancer)

/**
 * The picker (see `makePicker`).
 *
 * @since 0.2.0
 * @category models
 * @internal
 */
export class Picker<N extends Node> {
  /** The candidates, in the order they were added. */
  readonly nodes: Array<N> = []
  private readonly balancer: Balancer
  private readonly ring: HashRing.HashRing<RingNode<N>> | undefined
  private next = 0

  constructor(balancer: Balancer) {
    this.balancer = balancer
    this.ring = balancer._tag === "KeyAffinity" ? HashRing.make({ baseWeight: balancer.baseWeight }) : undefined
  }

  add(node: N): void {
    if (this.nodes.includes(node)) return
    this.nodes.push(node)
    if (this.ring !== undefined) HashRing.add(this.ring, new RingNode(node))
  }

  remove(node: N): void {
    const index = this.nodes.indexOf(node)
    if (index < 0) return
    this.nodes.splice(index, 1)
    if (this.ring !== undefined) HashRing.remove(this.ring, new RingNode(node))
  }

  /** The endpoint for `request`; `undefined` when there is no candidate. */
  pick(request: Request.Request | undefined): N | undefined {
    const nodes = this.nodes
    const n = nodes.length
    if (n <= 1) return nodes[0]
    const balancer = this.balancer
    if (balancer._tag === "KeyAffinity" && request !== undefined) {
      const key = balancer.key(request)
      if (key !== undefined) return this.forKey(key)
    }
    if (balancer._tag === "RoundRobin") {
      if (this.next >= n) this.next = 0
      return nodes[this.next++]
    }
    // Two distinct random choices; the less loaded wins (the first on a tie).
    const i = Math.floor(Math.random() * n)
    let j = Math.floor(Math.random() * (n - 1))
    if (j >= i) j++
    const a = nodes[i]!
    const b = nodes[j]!
    return b.inflight < a.inflight ? b : a
  }

  /** The endpoint that owns `key` on the ring (key affinity only). */
  forKey(key: string): N | undefined {
    if (this.ring === undefined) return undefined
    return HashRing.get(this.ring, key)?.node
  }
}
