/** An @effect/platform-node server with this library's Redis sessions (`RedisSession.layerFromSettings`). */
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { Effect, Layer, Option } from "effect"
import * as RedisSession from "effect-redis-sessions/RedisSession"
import * as Session from "effect-redis-sessions/Session"
import { serve } from "./effect-serve.js"
import { redisUrl, secret, seedData, toCount } from "./env.js"

const SessionLive = RedisSession.layerFromSettings({
  "redis.sessions.secret": secret,
  "redis.sessions.url": redisUrl()
})

const text = (body: string) => HttpServerResponse.text(body)
const count = Effect.map(Session.get("count"), (value) => toCount(Option.getOrUndefined(value)))

serve(
  HttpLayerRouter.addAll([
    HttpLayerRouter.route("GET", "/none", Effect.succeed(text("none"))),
    HttpLayerRouter.route("GET", "/read", Effect.map(count, (n) => text(String(n)))),
    HttpLayerRouter.route(
      "GET",
      "/write",
      Effect.gen(function*() {
        const next = (yield* count) + 1
        yield* Session.set("count", next)
        return text(String(next))
      })
    ),
    HttpLayerRouter.route("GET", "/anon", Effect.map(count, (n) => text(String(n)))),
    HttpLayerRouter.route(
      "GET",
      "/login",
      Session.regenerate.pipe(Effect.zipRight(Session.set("user", seedData.user)), Effect.as(text("ok")))
    ),
    HttpLayerRouter.route("GET", "/logout", Effect.as(Session.invalidate, text("bye"))),
    HttpLayerRouter.route(
      "GET",
      "/set/:key",
      Effect.gen(function*() {
        const { key } = yield* HttpLayerRouter.params
        yield* Session.set(key ?? "", "1")
        return text("ok")
      })
    ),
    HttpLayerRouter.route("GET", "/seed", Effect.as(Session.update(seedData), text("ok"))),
    HttpLayerRouter.route(
      "GET",
      "/get",
      Effect.map(Session.entries, (entries) => HttpServerResponse.unsafeJson(Object.fromEntries(entries)))
    )
  ]).pipe(Layer.provide(SessionLive))
)
