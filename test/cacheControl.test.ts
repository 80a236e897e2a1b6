import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Session from "../src/Session.js"
import { memorySessions, Routes, serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-secret-of-at-least-32-characters-for-caching"

const withCacheControl = (cacheControl: string, session: Effect.Effect<unknown, unknown, Session.Session>) =>
  Effect.as(Effect.orDie(session), HttpServerResponse.text("ok", { headers: { "cache-control": cacheControl } }))

const CachingRoutes = Layer.mergeAll(
  Routes,
  HttpLayerRouter.addAll([
    HttpLayerRouter.route("GET", "/public-write", withCacheControl("public, max-age=600", Session.set("seen", 1))),
    HttpLayerRouter.route("GET", "/private-write", withCacheControl("private, max-age=60", Session.set("seen", 2))),
    HttpLayerRouter.route("GET", "/public-read", withCacheControl("public, max-age=600", Session.get("seen")))
  ])
)

const browser = Effect.map(
  serveClient(memorySessions({ secret: SECRET }), CachingRoutes),
  (client) => new TestBrowser(client)
)

describe("Cache-Control on responses that set the session cookie", () => {
  it.scoped("no-store when the cookie is set or deleted; nothing added otherwise", () =>
    Effect.gen(function*() {
      const visitor = yield* browser
      assert.strictEqual((yield* visitor.get("/incr")).headers["cache-control"], "no-store")
      assert.isUndefined((yield* visitor.get("/read")).headers["cache-control"])
      assert.isUndefined((yield* visitor.get("/none")).headers["cache-control"])
      assert.strictEqual((yield* visitor.get("/logout")).headers["cache-control"], "no-store")
    }))

  it.scoped("a handler's public caching is overridden when the cookie is set, kept when it is not", () =>
    Effect.gen(function*() {
      const visitor = yield* browser
      const written = yield* visitor.get("/public-write")
      assert.lengthOf(written.cookies, 1)
      assert.strictEqual(written.headers["cache-control"], "no-store")
      assert.strictEqual((yield* visitor.get("/public-read")).headers["cache-control"], "public, max-age=600")
    }))

  it.scoped("a handler's private caching is kept: no shared cache stores the cookie", () =>
    Effect.gen(function*() {
      const written = yield* (yield* browser).get("/private-write")
      assert.lengthOf(written.cookies, 1)
      assert.strictEqual(written.headers["cache-control"], "private, max-age=60")
    }))
})
