/**
 * `node --expose-gc --import tsx bench/micro.ts [route ...]`: the session layer's own CPU per request, without
 * sockets. The benchmark routes run in this process through `HttpLayerRouter.toWebHandler`, with the session layer
 * and without it, in alternating rounds that each start after a full collection; it prints the median difference
 * per route. By default the session layer is on the memory store and the routes without it answer at once, so
 * what is measured is the request path itself (cookie, state, load bookkeeping, commit decision, `Set-Cookie`);
 * `MICRO_STORE=redis` puts it on a private redis-server and compares it with the floor's routes
 * (`servers/floor-routes.ts`), which send the same round trips raw. Changes too small for `npm run bench` to tell
 * from its noise (a few µs) show here. `MICRO_ROUNDS` and `MICRO_REQUESTS` size the run.
 */
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { Effect, Layer, Option } from "effect"
import { Redis } from "ioredis"
import * as HttpSession from "../src/HttpSession.js"
import * as RedisSession from "../src/RedisSession.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as SessionStore from "../src/SessionStore.js"
import { startRedisServer } from "../test/utils/RedisServer.js"
import { routes } from "./peers.js"
import { secret } from "./servers/env.js"
import { floorRoutes } from "./servers/floor-routes.js"

const rounds = Number(process.env.MICRO_ROUNDS ?? 7)
const requests = Number(process.env.MICRO_REQUESTS ?? 20_000)
const selected = process.argv.slice(2)

const text = (body: string) => HttpServerResponse.text(body)
const count = Effect.map(Session.get("count"), (value) => Number(Option.getOrElse(value, () => 0)))

const routesWithSessions = HttpLayerRouter.addAll([
  HttpLayerRouter.route("GET", "/none", Effect.succeed(text("none"))),
  HttpLayerRouter.route("GET", "/read", Effect.map(count, (n) => text(String(n)))),
  HttpLayerRouter.route("GET", "/anon", Effect.map(count, (n) => text(String(n)))),
  HttpLayerRouter.route(
    "GET",
    "/write",
    Effect.flatMap(count, (n) => Effect.as(Session.set("count", n + 1), text(String(n + 1))))
  ),
  HttpLayerRouter.route(
    "GET",
    "/login",
    Session.regenerate.pipe(Effect.zipRight(Session.set("user", "alice")), Effect.as(text("ok")))
  ),
  HttpLayerRouter.route("GET", "/logout", Effect.as(Session.invalidate, text("bye")))
])

const memorySessions = HttpSession.layerRouter.pipe(
  Layer.provide([SessionStore.layerMemory, SessionConfig.layer({ secret })])
)

const routesWithout = HttpLayerRouter.addAll(
  routes.map((route) => HttpLayerRouter.route("GET", `/${route}`, Effect.succeed(text("0"))))
)

type Handler = (request: Request) => Promise<Response>

const send = async (handler: Handler, path: string, cookie: string | undefined) => {
  const response = await handler(
    new Request(`http://bench${path}`, cookie === undefined ? {} : { headers: { cookie } })
  )
  await response.text()
  const set = response.headers.get("set-cookie")
  return set === null ? undefined : set.slice(0, set.indexOf(";"))
}

/** The cookie of each of `requests` requests of `route`, made through the session handler before any clock runs. */
const cookiesFor = async (handler: Handler, route: string): Promise<Array<string | undefined>> => {
  if (route === "/none" || route === "/anon") return new Array(requests).fill(undefined)
  if (route === "/logout") {
    const fresh: Array<string | undefined> = []
    for (let i = 0; i < requests; i++) fresh.push(await send(handler, "/write", undefined))
    return fresh
  }
  return new Array(requests).fill(await send(handler, "/write", undefined))
}

/** CPU µs spent on `cookies.length` requests of `route` on `handler`; `/login` sends the cookie each login answered. */
const cpuOf = async (handler: Handler, route: string, cookies: ReadonlyArray<string | undefined>) => {
  const started = process.cpuUsage()
  let cookie = cookies[0]
  for (const presented of cookies) {
    const set = await send(handler, route, route === "/login" ? cookie : presented)
    if (set !== undefined) cookie = set
  }
  const used = process.cpuUsage(started)
  return used.user + used.system
}

declare const gc: (() => void) | undefined

/** One round: each handler serves the same requests after a full collection, so each pays for its own garbage. */
const round = async (withSessions: Handler, without: Handler, route: string) => {
  const cookies = await cookiesFor(withSessions, route)
  gc?.()
  const base = await cpuOf(without, route, cookies)
  gc?.()
  const ours = await cpuOf(withSessions, route, cookies)
  return (ours - base) / cookies.length
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const main = async () => {
  const redis = process.env.MICRO_STORE === "redis" ? await startRedisServer() : undefined
  const floorClient = redis === undefined ? undefined : new Redis(redis.url, { lazyConnect: true })
  await floorClient?.connect()
  const withSessions = HttpLayerRouter.toWebHandler(
    routesWithSessions.pipe(
      Layer.provide(redis === undefined ? memorySessions : RedisSession.layer({ secret, url: redis.url }))
    ),
    { disableLogger: true }
  )
  const without = HttpLayerRouter.toWebHandler(
    floorClient === undefined ? routesWithout : await floorRoutes(floorClient),
    { disableLogger: true }
  )
  const paths = selected.length > 0
    ? selected.map((r) => `/${r.replace(/^\//, "")}`)
    : routes.map((route) => `/${route}`)
  for (const route of paths) {
    const differences: Array<number> = []
    await round(withSessions.handler, without.handler, route) // warm-up
    for (let i = 0; i < rounds; i++) differences.push(await round(withSessions.handler, without.handler, route))
    console.log(
      `${route.padEnd(8)} ${median(differences).toFixed(1).padStart(6)} µs per request above ` +
        `${redis === undefined ? "the routes without sessions" : "the floor"} ` +
        `(rounds: ${differences.map((d) => d.toFixed(1)).join(", ")})`
    )
  }
  await withSessions.dispose()
  await without.dispose()
  floorClient?.disconnect()
  await redis?.stop()
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
