/**
 * The quasizero wire: frames of `uvarint(length) ++ protobuf body`, with the
 * `Request` / `Response` bodies of `proto/quasizero.proto` encoded by hand.
 * One implementation, shared by server and client.
 *
 * Invariants (checked by `test/Wire.test.ts` against frames written by Go):
 * - encoding is byte-identical to Go: default fields omitted, a negative
 *   int32 is a 10-byte varint, map entries always carry key and value;
 * - decoding skips unknown fields, reads a missing map key or value as "",
 *   lets the last duplicate win, and rejects invalid UTF-8 (as Go does);
 * - a declared frame length is checked against `maxFrameSize` before any
 *   byte of the frame is buffered, and frames may split at any byte;
 * - metadata is bounded while it is decoded (`DecodeLimits`): entries and
 *   key + value bytes are counted as they are read, and decoding stops at the
 *   first one past a limit.
 *
 * Every failure is a `WireError`; the `*Unsafe` functions throw it, the others
 * return a `Result`.
 *
 * Gotcha: like Node's pooled `Buffer`s, an encoded frame of up to 4 KiB is a
 * view into a shared slab. Use its `byteOffset` / `byteLength`, and never
 * transfer or detach its `.buffer`.
 *
 * @since 0.1.0
 */
import { frameLength, FrameTooLarge, VarintOverflow, WireError } from "./WireError.ts"

export * from "./WireDecode.ts"
export * from "./WireDecodeResult.ts"
export * from "./WireEncode.ts"
export {
  /** @since 0.1.0 @category errors */
  FrameTooLarge,
  /** @since 0.1.0 @category errors */
  InvalidUtf8,
  /** @since 0.2.0 @category errors */
  MetadataLimit,
  /** @since 0.2.0 @category errors */
  NestingTooDeep,
  /** @since 0.1.0 @category errors */
  Truncated,
  /** @since 0.1.0 @category errors */
  VarintOverflow,
  /** @since 0.1.0 @category errors */
  WireError,
  /** @since 0.1.0 @category errors */
  type WireErrorReason,
  /** @since 0.1.0 @category errors */
  WrongWireType
} from "./WireError.ts"
export * from "./WireLimits.ts"

/**
 * Go quasizero's frame limit: 16 MiB (1 << 24), inclusive.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxFrameSize = 1 << 24

// -----------------------------------------------------------------------------
// framing
// -----------------------------------------------------------------------------

/**
 * Splits a byte stream into frame bodies. Chunks may split frames anywhere,
 * even inside the length varint. A frame inside one chunk is returned as a
 * view of it; only a frame that spans chunks is copied, once, when complete.
 * The declared length is checked before anything is buffered. After a
 * framing error the stream cannot be resynchronised: the decoder keeps
 * returning that error.
 *
 * @example
 * ```ts
 * import { Wire } from "quasizero"
 * const decoder = new Wire.FrameDecoder()
 * const frames: Array<Uint8Array> = []
 * decoder.push(new Uint8Array([2, 8]), frames) // frames: []
 * decoder.push(new Uint8Array([1]), frames)    // frames: [Uint8Array [8, 1]]
 * ```
 *
 * @since 0.1.0
 * @category framing
 */
export class FrameDecoder {
  readonly maxFrameSize: number
  // Chunks of the frame in progress (prefix included) and their total size.
  private parts: Array<Uint8Array> = []
  private buffered = 0
  // Total size of the frame in progress, prefix + body; -1 while its prefix is incomplete.
  private frameSize = -1
  private prefixSize = 0
  private error: WireError | undefined

  constructor(maxFrameSize: number = defaultMaxFrameSize) {
    this.maxFrameSize = maxFrameSize
  }

  /** Bytes of an incomplete frame held back; 0 between frames. */
  get pending(): number {
    return this.buffered
  }

  /**
   * Declared size (prefix + body) of the incomplete frame held back: what it
   * will hold once complete. 0 between frames and while its length prefix is
   * itself incomplete.
   */
  get pendingFrameSize(): number {
    return this.frameSize < 0 ? 0 : this.frameSize
  }

  /**
   * Bytes of the last `push`'s chunk it consumed: all of them, unless it
   * stopped at `maxFrames` (always at a frame boundary); push the rest later.
   */
  consumed = 0

  /**
   * Appends the body of every frame completed by `chunk` to `out`, stopping
   * (at a frame boundary, see `consumed`) once `out` holds `maxFrames`.
   * Returns a framing error (oversized length, varint overflow) or `undefined`.
   */
  push(chunk: Uint8Array, out: Array<Uint8Array>, maxFrames: number = Infinity): WireError | undefined {
    this.consumed = chunk.length
    if (this.error !== undefined) return this.error
    let offset = 0
    if (this.buffered > 0) {
      offset = this.continueFrame(chunk, out)
      if (offset < 0) return this.error // still incomplete, or failed
    }
    const length = chunk.length
    while (offset < length) {
      if (out.length >= maxFrames) {
        this.consumed = offset
        return undefined
      }
      const header = this.readPrefix(chunk, offset, length)
      if (header === -2) return this.error
      if (header === -1) {
        // The prefix itself is split: hold the few bytes we have.
        this.hold(chunk.subarray(offset))
        return undefined
      }
      const frameEnd = offset + this.prefixSize + header
      if (frameEnd <= length) {
        out.push(chunk.subarray(offset + this.prefixSize, frameEnd))
        offset = frameEnd
      } else {
        this.frameSize = this.prefixSize + header
        this.hold(chunk.subarray(offset))
        return undefined
      }
    }
    return undefined
  }

  /**
   * The frame `pushRanges` completed from earlier chunks (copied once), for
   * a range whose start is -1.
   */
  joined: Uint8Array = emptyBytes

  /**
   * `push` without a view per frame: appends each complete frame body as a
   * pair `start, end` of offsets into `chunk`, or `-1, length` for the frame
   * completed from earlier chunks (it is `joined`; only the first pair can be
   * one). Stops, like `push`, once `out` holds `maxFrames` pairs.
   *
   * @example
   * ```ts
   * import { Wire } from "quasizero"
   * const decoder = new Wire.FrameDecoder()
   * const ranges: Array<number> = []
   * decoder.pushRanges(new Uint8Array([1, 8, 2, 8, 1]), ranges) // ranges: [1, 2, 3, 5]
   * ```
   *
   * @since 0.2.0
   */
  // The same scan as `push`, kept as a copy: server and client decode at
  // these offsets, but the raw baselines (bench/servers/baseline.ts,
  // bench/clients/baseline.ts) and the test kit still call `push` per chunk,
  // and `push` built on this measured 60-400 ns more per frame (Buffer chunks).
  pushRanges(chunk: Uint8Array, out: Array<number>, maxFrames: number = Infinity): WireError | undefined {
    this.consumed = chunk.length
    if (this.error !== undefined) return this.error
    let offset = 0
    if (this.buffered > 0) {
      offset = this.continueFrame(chunk, joinedOut)
      if (offset < 0) return this.error // still incomplete, or failed
      this.joined = joinedOut.pop()!
      out.push(-1, this.joined.length)
    }
    const length = chunk.length
    const limit = maxFrames * 2
    while (offset < length) {
      if (out.length >= limit) {
        this.consumed = offset
        return undefined
      }
      const header = this.readPrefix(chunk, offset, length)
      if (header === -2) return this.error
      if (header === -1) {
        this.hold(chunk.subarray(offset))
        return undefined
      }
      const frameEnd = offset + this.prefixSize + header
      if (frameEnd <= length) {
        out.push(offset + this.prefixSize, frameEnd)
        offset = frameEnd
      } else {
        this.frameSize = this.prefixSize + header
        this.hold(chunk.subarray(offset))
        return undefined
      }
    }
    return undefined
  }

  /** Drops any partial frame and error, ready for a fresh stream. */
  reset(): void {
    this.parts = []
    this.buffered = 0
    this.frameSize = -1
    this.error = undefined
  }

  private hold(bytes: Uint8Array): void {
    this.parts.push(bytes)
    this.buffered += bytes.length
  }

  // Completes a frame started in earlier chunks. Returns the offset in `chunk`
  // after it, or -1 when `chunk` was absorbed (or an error was recorded).
  private continueFrame(chunk: Uint8Array, out: Array<Uint8Array>): number {
    if (this.frameSize < 0) {
      // The prefix is split: at most 10 bytes are held, so joining is cheap.
      const head = concat(this.parts, this.buffered, chunk.subarray(0, 11))
      const header = this.readPrefix(head, 0, head.length)
      if (header === -2) return -1
      if (header === -1) {
        this.hold(chunk)
        return -1
      }
      this.frameSize = this.prefixSize + header
    }
    const missing = this.frameSize - this.buffered
    if (chunk.length < missing) {
      this.hold(chunk)
      return -1
    }
    const frame = concat(this.parts, this.buffered, chunk.subarray(0, missing))
    out.push(frame.subarray(this.prefixSize))
    this.parts = []
    this.buffered = 0
    this.frameSize = -1
    return missing
  }

  // Reads a length prefix at `offset`: the body length (setting prefixSize),
  // -1 when the bytes end inside it, -2 on a framing error (recorded).
  private readPrefix(bytes: Uint8Array, offset: number, length: number): number {
    let value = 0
    let multiplier = 1
    for (let i = 0; i < 10; i++) {
      if (offset + i >= length) return -1
      const b = bytes[offset + i]!
      value += (b & 0x7f) * multiplier
      if (value > this.maxFrameSize) {
        // Reject as soon as the limit is passed, but report the declared size
        // rather than the partial sum: read whatever prefix bytes are at hand.
        let j = i
        let last = b
        while (last >= 0x80 && j < 9 && offset + j + 1 < length) {
          j++
          multiplier *= 0x80
          last = bytes[offset + j]!
          value += (last & 0x7f) * multiplier
        }
        this.error = new WireError({ reason: new FrameTooLarge({ size: value, limit: this.maxFrameSize }) })
        return -2
      }
      if (b < 0x80) {
        this.prefixSize = i + 1
        return value
      }
      multiplier *= 0x80
    }
    this.error = new WireError({ reason: new VarintOverflow({ what: frameLength, offset: 0 }) })
    return -2
  }
}

const emptyBytes = new Uint8Array(0)
// The one frame `continueFrame` completes, for `pushRanges`.
const joinedOut: Array<Uint8Array> = []

const concat = (parts: ReadonlyArray<Uint8Array>, size: number, last: Uint8Array): Uint8Array => {
  const out = new Uint8Array(size + last.length)
  let at = 0
  for (let i = 0; i < parts.length; i++) {
    out.set(parts[i]!, at)
    at += parts[i]!.length
  }
  out.set(last, at)
  return out
}
