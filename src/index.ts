/**
 * quasizero for Effect: an ultra-low-latency request/response TCP server and
 * pooled client, byte-compatible with Go's bsm/quasizero. Replies come in
 * request order on each connection; order is the only correlation.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Message from "./Message.ts"
/** @since 0.1.0 */
export * as Request from "./Request.ts"
/** @since 0.1.0 */
export * as Response from "./Response.ts"
/** @since 0.1.0 */
export * as Wire from "./Wire.ts"
/** @since 0.1.0 */
export * as Handlers from "./Handlers.ts"
/** @since 0.1.0 */
export * as Server from "./Server.ts"
/** @since 0.1.0 */
export * as Client from "./Client.ts"
/** @since 0.1.0 */
export * as Pipeline from "./Pipeline.ts"
/** @since 0.1.0 */
export * as Command from "./Command.ts"
/**
 * The one grammar for durations and sizes (options, `QUASIZERO_*`, the CLI)
 * and the shared option validator.
 *
 * @since 0.2.0
 */
export * as Options from "./Options.ts"

/**
 * The client's one error (`Client.ClientError`); its reasons and the
 * `Client.isClientError` guard live in `Client`.
 *
 * @since 0.1.0
 * @category errors
 */
export { ClientError } from "./ClientError.ts"

/**
 * The server's one error (`Server.ServerError`); its reasons and the
 * `Server.isServerError` guard live in `Server`.
 *
 * @since 0.1.0
 * @category errors
 */
export { ServerError } from "./ServerError.ts"
/** @since 0.1.0 */
export * as CommandGroup from "./CommandGroup.ts"
