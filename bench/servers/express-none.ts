/** Express 5 without sessions: the baseline `express-session` is compared with. */
import express from "express"
import { announceReady, cpuReport, port } from "./env.js"

const app = express()
app.disable("x-powered-by")
app.disable("etag")
app.get("/__cpu", (_req, res) => res.send(cpuReport()))
app.get("/none", (_req, res) => res.send("none"))
app.get("/read", (_req, res) => res.send("0"))
app.get("/write", (_req, res) => res.send("1"))
app.get("/anon", (_req, res) => res.send("0"))
app.get("/login", (_req, res) => res.send("ok"))
app.get("/logout", (_req, res) => res.send("bye"))
app.get("/set/:key", (_req, res) => res.send("ok"))
app.get("/seed", (_req, res) => res.send("ok"))
app.get("/get", (_req, res) => res.json({}))

const server = app.listen(port, "127.0.0.1", () => announceReady(server.address()))
