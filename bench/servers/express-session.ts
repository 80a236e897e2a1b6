/** Express 5 + express-session + connect-redis 10 on node-redis 5, with the recommended `resave`/`saveUninitialized` off. */
import { RedisStore } from "connect-redis"
import express from "express"
import session from "express-session"
import { createClient } from "redis"
import { announceReady, cpuReport, port, redisUrl, secret, seedData, toCount } from "./env.js"

const client = createClient({ url: redisUrl() })
await client.connect()

const app = express()
app.disable("x-powered-by")
app.disable("etag")
app.get("/__cpu", (_req, res) => res.send(cpuReport()))
app.use(session({ secret, store: new RedisStore({ client }), resave: false, saveUninitialized: false }))
app.get("/none", (_req, res) => res.send("none"))
app.get("/read", (req, res) => res.send(String(toCount(req.session.count))))
app.get("/write", (req, res) => {
  const count = toCount(req.session.count) + 1
  req.session.count = count
  res.send(String(count))
})
app.get("/anon", (req, res) => res.send(String(toCount(req.session.count))))
app.get("/login", (req, res, next) =>
  req.session.regenerate((err) => {
    if (err) return next(err)
    req.session.user = seedData.user
    res.send("ok")
  }))
app.get("/logout", (req, res, next) =>
  req.session.destroy((err) => {
    if (err) return next(err)
    res.send("bye")
  }))
app.get("/set/:key", (req, res) => {
  req.session[req.params.key!] = "1"
  res.send("ok")
})
app.get("/seed", (req, res) => {
  Object.assign(req.session, seedData)
  res.send("ok")
})
app.get("/get", (req, res) => res.json(req.session))

const server = app.listen(port, "127.0.0.1", () => announceReady(server.address()))
