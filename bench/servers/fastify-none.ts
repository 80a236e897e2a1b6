/** Fastify 5 without sessions: the baseline `fastify-session` is compared with. */
import Fastify from "fastify"
import { announceReady, cpuReport, port } from "./env.js"

const app = Fastify()
app.get("/__cpu", async () => cpuReport())
app.get("/none", async () => "none")
app.get("/read", async () => "0")
app.get("/write", async () => "1")
app.get("/anon", async () => "0")
app.get("/login", async () => "ok")
app.get("/logout", async () => "bye")
app.get("/set/:key", async () => "ok")
app.get("/seed", async () => "ok")
app.get("/get", async () => ({}))

await app.listen({ port, host: "127.0.0.1" })
announceReady(app.server.address())
