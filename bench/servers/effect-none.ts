/** An @effect/platform-node server without sessions: the baseline `effect-redis-sessions` is compared with. */
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { serve } from "./effect-serve.js"

const text = (body: string) => Effect.succeed(HttpServerResponse.text(body))

serve(HttpLayerRouter.addAll([
  HttpLayerRouter.route("GET", "/none", text("none")),
  HttpLayerRouter.route("GET", "/read", text("0")),
  HttpLayerRouter.route("GET", "/write", text("1")),
  HttpLayerRouter.route("GET", "/anon", text("0")),
  HttpLayerRouter.route("GET", "/login", text("ok")),
  HttpLayerRouter.route("GET", "/logout", text("bye")),
  HttpLayerRouter.route("GET", "/set/:key", text("ok")),
  HttpLayerRouter.route("GET", "/seed", text("ok")),
  HttpLayerRouter.route("GET", "/get", Effect.succeed(HttpServerResponse.unsafeJson({})))
]))
