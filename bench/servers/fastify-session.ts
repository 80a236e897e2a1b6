/**
 * Fastify 5 + @fastify/cookie + @fastify/session with lean settings (`saveUninitialized: false, rolling: false`),
 * storing sessions through connect-redis 10's RedisStore on node-redis 5 (its callback-style get/set/destroy is
 * what @fastify/session's store interface expects).
 */
import fastifyCookie from "@fastify/cookie"
import fastifySession from "@fastify/session"
import { RedisStore } from "connect-redis"
import Fastify from "fastify"
import { createClient } from "redis"
import { announceReady, cpuReport, port, redisUrl, secret, seedData, toCount } from "./env.js"

declare module "fastify" {
  interface Session {
    [key: string]: unknown
  }
}

const client = createClient({ url: redisUrl() })
await client.connect()

const app = Fastify()
app.get("/__cpu", async () => cpuReport())
await app.register(fastifyCookie)
await app.register(fastifySession, {
  secret,
  store: new RedisStore({ client }),
  saveUninitialized: false,
  rolling: false,
  cookie: { secure: false }
})
app.get("/none", async () => "none")
app.get("/read", async (request) => String(toCount(request.session.get("count"))))
app.get("/write", async (request) => {
  const count = toCount(request.session.get("count")) + 1
  request.session.set("count", count)
  return String(count)
})
app.get("/anon", async (request) => String(toCount(request.session.get("count"))))
app.get("/login", async (request) => {
  await request.session.regenerate()
  request.session.set("user", seedData.user)
  return "ok"
})
app.get("/logout", async (request) => {
  await request.session.destroy()
  return "bye"
})
app.get<{ Params: { key: string } }>("/set/:key", async (request) => {
  request.session.set(request.params.key, "1")
  return "ok"
})
app.get("/seed", async (request) => {
  for (const [key, value] of Object.entries(seedData)) request.session.set(key, value)
  return "ok"
})
app.get("/get", async (request) => ({ ...request.session }))

await app.listen({ port, host: "127.0.0.1" })
announceReady(app.server.address())
