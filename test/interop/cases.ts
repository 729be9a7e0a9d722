// The interop table: one request (or a pipeline of copies) per case, sent by
// Go's client and by ours, to Go's server and to ours. Each case is written
// once and turned into qz-call flags and into a `Request`, so both clients
// send the same thing.
import * as Request from "../../src/Request.ts"
import type * as Response from "../../src/Response.ts"
import type { CallLine } from "./peer.ts"

export interface Case {
  readonly name: string
  readonly code: number
  readonly payload?: string | Uint8Array
  /** In order; a pair with an empty value is sent by qz-call as `-meta KEY` (no `=`). */
  readonly meta?: ReadonlyArray<readonly [string, string]>
  /** Sent as a pipeline of this many copies (qz-call `-pipeline N`). */
  readonly pipeline?: number
}

const ascii = (n: number) => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + (i % 26))).join("")

/** Bytes 1–255 (argv cannot carry NUL), most of them not valid UTF-8. */
export const binary = Uint8Array.from({ length: 255 }, (_, i) => i + 1)

export const cases: ReadonlyArray<Case> = [
  { name: "PING", code: 1 },
  { name: "PING ignores payload and metadata", code: 1, payload: "x", meta: [["k", "v"]] },
  { name: "ECHO", code: 2, payload: "hello" },
  { name: "ECHO drops request metadata", code: 2, payload: "hello", meta: [["k", "v"]] },
  { name: "FAIL", code: 3 },
  { name: "META", code: 4, meta: [["a", "1"], ["bb", "22"], ["ccc", "333"]] },
  { name: "META without metadata", code: 4 },
  { name: "SLEEP 20", code: 5, payload: "20" },
  { name: "SLEEP trims spaces", code: 5, payload: " 7 " },
  { name: "SLEEP negative", code: 5, payload: "-3" },
  { name: "SLEEP not a number", code: 5, payload: "abc" },
  { name: "SLEEP empty", code: 5 },
  { name: "SLEEP exponent", code: 5, payload: "1e2" },
  { name: "SLEEP quoted payload", code: 5, payload: 'say "hi"\\\tnow' },
  { name: "SLEEP unicode and control bytes", code: 5, payload: "5 ü\u0001\u007f\u200b🚀" },
  { name: "SLEEP not UTF-8", code: 5, payload: Uint8Array.from([0x31, 0xff, 0xc3, 0x28, 0xe2, 0x82, 0x41]) },
  { name: "unknown code 0", code: 0 },
  { name: "unknown code 42", code: 42 },
  { name: "unknown code -1", code: -1 },
  { name: "unknown code int32 min", code: -2147483648 },
  { name: "unknown code int32 max", code: 2147483647 },
  { name: "unknown code with everything", code: 77, payload: "p", meta: [["k", "v"]] },
  {
    name: "META with 100 keys",
    code: 4,
    meta: Array.from({ length: 100 }, (_, i) => [`key-${i}`, `value ${i} ${ascii(i)}`] as const)
  },
  { name: "META unicode", code: 4, meta: [["ключ", "値🚀 ünïcødé"], ["emoji 🙂", "ok"], ["中文", "𝄞"]] },
  { name: "META empty key and value", code: 4, meta: [["", ""]] },
  { name: "META empty value", code: 4, meta: [["k", ""]] },
  { name: "META empty key", code: 4, meta: [["", "v"]] },
  { name: "META value with =", code: 4, meta: [["k", "a=b=c"]] },
  { name: "ECHO 0 B", code: 2, payload: "" },
  { name: "ECHO 1 B", code: 2, payload: "a" },
  { name: "ECHO 1 KiB", code: 2, payload: ascii(1024) },
  // qz-call takes the payload as one argv string: Linux caps one at 128 KiB
  // (MAX_ARG_STRLEN), so 100 KiB is the largest the Go CLI can send. The
  // larger sizes are in large.test.ts (qz-bench -size, and our client).
  { name: "ECHO 100 KiB", code: 2, payload: ascii(100 * 1024) },
  { name: "ECHO unicode", code: 2, payload: "héllo wörld 🚀 ✓" },
  { name: "ECHO binary", code: 2, payload: binary },
  { name: "pipeline of 1", code: 2, payload: "p", pipeline: 1 },
  { name: "pipeline of 10", code: 4, payload: "p", meta: [["i", "x"]], pipeline: 10 },
  { name: "pipeline of 1000", code: 2, payload: "pipelined", pipeline: 1000 },
  { name: "pipeline of 10 FAIL", code: 3, pipeline: 10 },
  { name: "pipeline of 10 unknown", code: 42, pipeline: 10 }
]

/** qz-call's flags for a case (without `-addr` / `-b64`), and a binary payload if it needs the shell. */
export const goArgs = (c: Case): { readonly args: ReadonlyArray<string>; readonly binary?: Uint8Array } => {
  const args = ["-code", String(c.code)]
  for (const [k, v] of c.meta ?? []) args.push("-meta", v === "" ? k : `${k}=${v}`)
  if (c.pipeline !== undefined) args.push("-pipeline", String(c.pipeline))
  if (c.payload instanceof Uint8Array) return { args, binary: c.payload }
  if (c.payload !== undefined && c.payload !== "") args.push("-payload", c.payload)
  return { args }
}

export const request = (c: Case): Request.Request => {
  const options: { payload?: string | Uint8Array; metadata?: ReadonlyArray<readonly [string, string]> } = {}
  if (c.payload !== undefined) options.payload = c.payload
  if (c.meta !== undefined) options.metadata = c.meta
  return Request.makeUnsafe(c.code, options)
}

export const requests = (c: Case): ReadonlyArray<Request.Request> =>
  Array.from({ length: c.pipeline ?? 1 }, () => request(c))

/**
 * A reply as qz-call prints it: Go's `string(payload)` (invalid UTF-8 becomes
 * U+FFFD, as in Go's JSON encoder), keys sorted (Go's JSON sorts map keys),
 * the exact bytes in `payload_b64`. Comparing these compares every field.
 */
export const asCallLine = (r: Response.Response): CallLine => ({
  error_message: r.errorMessage,
  metadata: Object.fromEntries([...r.metadata].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  payload: new TextDecoder().decode(r.payload),
  payload_b64: Buffer.from(r.payload).toString("base64")
})
