/**
 * Test kit: an in-memory `SocketServer` and `Dialer`, a scripted server for
 * client tests, and `TestServer` layers wiring a `Client` to a `Server`.
 * Everything runs under `TestClock`: timeouts pass with `TestClock.adjust`.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as MemorySocketServer from "./MemorySocketServer.ts"
/** @since 0.1.0 */
export * as MemoryDialer from "./MemoryDialer.ts"
/** @since 0.1.0 */
export * as TestServer from "./TestServer.ts"
