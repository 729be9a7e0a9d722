/**
 * Metrics out of the process: the Effect metrics of this process (the
 * server's `quasizero_server_*`, the client's `quasizero_client_*`, your
 * own) in the Prometheus text format, from effect's `PrometheusMetrics`, on
 * a Node HTTP server at `GET /metrics`. `quasizero serve --metrics
 * HOST:PORT` uses it.
 *
 * @since 0.2.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpRouter from "effect/http/HttpRouter"
import type * as HttpServer from "effect/http/HttpServer"
import type * as HttpServerError from "effect/http/HttpServerError"
import * as Layer from "effect/Layer"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import * as Http from "node:http"

/**
 * Serves `GET /metrics` (or `path`) in the Prometheus text format on
 * `host:port` (port 0 picks a free one: read it from `HttpServer.address`).
 * Metrics are those of the context the layer is built in, so build it
 * beside the server (`Layer.merge`).
 *
 * @example
 * ```ts
 * import { Server } from "quasizero"
 * import { NodeMetrics, NodeServer } from "quasizero/node"
 * import { Layer } from "effect"
 * declare const HandlersLive: Layer.Layer<import("quasizero").Handlers.Handlers>
 * const ServerLive = Server.layer({ requestMetrics: true }).pipe(
 *   Layer.provide(HandlersLive),
 *   Layer.provide(NodeServer.layer({ port: 7475 }))
 * )
 * const MainLive = Layer.merge(ServerLive, NodeMetrics.layerPrometheus({ host: "0.0.0.0", port: 9464 }))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerPrometheus = (options: {
  readonly host?: string | undefined
  readonly port: number
  readonly path?: `/${string}` | undefined
  readonly prefix?: string | undefined
}): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError> =>
  HttpRouter.serve(PrometheusMetrics.layerHttp({ path: options.path, prefix: options.prefix }), {
    disableLogger: true,
    disableListenLog: true
  }).pipe(
    Layer.provideMerge(
      NodeHttpServer.layer(() => Http.createServer(), {
        port: options.port,
        ...(options.host === undefined ? {} : { host: options.host })
      })
    )
  )
