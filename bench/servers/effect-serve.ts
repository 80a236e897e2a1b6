/** Runs the routes of an Effect benchmark server on @effect/platform-node, plus `/__cpu` and `/__heap`, then announces it. */
import { HttpLayerRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import { createServer } from "node:http"
import { announceReady, cpuReport, heapReport, port } from "./env.js"

const ReportRoutes = HttpLayerRouter.addAll([
  HttpLayerRouter.route("GET", "/__cpu", Effect.sync(() => HttpServerResponse.text(cpuReport()))),
  HttpLayerRouter.route("GET", "/__heap", Effect.sync(() => HttpServerResponse.text(heapReport())))
])

/** Serves `routes` on 127.0.0.1 without request logging and prints `ready <port>` once listening. */
export const serve = <E>(
  routes: Layer.Layer<never, E, HttpLayerRouter.HttpRouter | HttpLayerRouter.Request<"Error", unknown>>
): void =>
  HttpLayerRouter.serve(Layer.merge(routes, ReportRoutes), { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" })),
    Layer.tap((context) =>
      Effect.sync(() => {
        const { address } = Context.get(context, HttpServer.HttpServer)
        announceReady(address._tag === "TcpAddress" ? address : null)
      })
    ),
    Layer.launch,
    NodeRuntime.runMain
  )
