/**
 * Node.js platform layers: listeners for `Server`, dialers for `Client`.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as NodeServer from "./NodeServer.ts"
/** @since 0.1.0 */
export * as NodeClient from "./NodeClient.ts"
/** @since 0.2.0 */
export * as NodeResolver from "./NodeResolver.ts"
/** @since 0.2.0 */
export * as NodeMetrics from "./NodeMetrics.ts"
