/**
 * The routes of the floor: per route, the Redis round trips a session layer cannot avoid, sent raw through ioredis
 * with one `Effect.tryPromise` per call and no cookie handling: `/read` 1 (HGETALL), `/write` 2 (HGETALL, then
 * HSET), `/login` 2 (HGETALL, then HSET + PEXPIRE + DEL in one pipeline), `/logout` 1 (DEL), `/none` and `/anon`
 * none. Served by `effect-floor.ts`; `bench/micro.ts` runs them in process.
 */
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import type { Redis } from "ioredis"

/** The floor's routes on `redis`, after it stored the session-sized hash they read. */
export const floorRoutes = async (redis: Redis) => {
  /** A session-sized hash laid out like this library's (meta fields `c`, `t`, `s`, `l`, then `.count`). */
  const sessionKey = "floor:session"
  const ttlMs = 1_800_000
  const meta = (now: number) => ({ c: String(now), t: String(ttlMs / 1000), s: "7", l: String(now) })
  await redis.hset(sessionKey, { ...meta(Date.now()), ".count": "0" })

  const text = (body: string) => HttpServerResponse.text(body)
  const load = Effect.tryPromise(() => redis.hgetall(sessionKey))
  const count = Effect.map(load, (fields) => Number(fields[".count"] ?? 0))
  /** Number of the last session key `/login` created; each login deletes the previous one. */
  let logins = 0

  return HttpLayerRouter.addAll([
    HttpLayerRouter.route("GET", "/none", Effect.succeed(text("none"))),
    HttpLayerRouter.route("GET", "/read", Effect.map(count, (n) => text(String(n)))),
    HttpLayerRouter.route(
      "GET",
      "/write",
      Effect.gen(function*() {
        const next = (yield* count) + 1
        yield* Effect.tryPromise(() => redis.hset(sessionKey, ".count", String(next)))
        return text(String(next))
      })
    ),
    HttpLayerRouter.route("GET", "/anon", Effect.succeed(text("0"))),
    HttpLayerRouter.route(
      "GET",
      "/login",
      Effect.gen(function*() {
        yield* load
        yield* Effect.tryPromise(() => {
          const key = `floor:login:${++logins}`
          return redis.pipeline()
            .hset(key, { ...meta(Date.now()), ".user": "\"alice\"" })
            .pexpire(key, ttlMs)
            .del(`floor:login:${logins - 1}`)
            .exec()
        })
        return text("ok")
      })
    ),
    HttpLayerRouter.route("GET", "/logout", Effect.as(Effect.tryPromise(() => redis.del("floor:logout")), text("bye"))),
    HttpLayerRouter.route("GET", "/set/:key", Effect.succeed(text("ok"))),
    HttpLayerRouter.route("GET", "/seed", Effect.succeed(text("ok"))),
    HttpLayerRouter.route("GET", "/get", Effect.succeed(HttpServerResponse.unsafeJson({})))
  ])
}
