import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Session from "../src/Session.js"
import { Count, memorySessions, Routes, serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-secret-of-at-least-32-characters-for-cookies"

const ok = HttpServerResponse.text("ok")

/** Routes whose handlers set cookies and headers of their own next to the session's. */
const CookieRoutes = Layer.mergeAll(
  Routes,
  HttpLayerRouter.addAll([
    HttpLayerRouter.route(
      "GET",
      "/theme-write",
      Effect.as(Session.set(Count, 1), HttpServerResponse.unsafeSetCookie(ok, "theme", "dark", { path: "/" }))
    ),
    HttpLayerRouter.route(
      "GET",
      "/theme-logout",
      Effect.as(Session.invalidate, HttpServerResponse.unsafeSetCookie(ok, "theme", "", { path: "/" }))
    ),
    HttpLayerRouter.route(
      "GET",
      "/header-logout",
      Effect.as(Session.invalidate, HttpServerResponse.setHeader(ok, "set-cookie", "legacy=1; Path=/"))
    ),
    HttpLayerRouter.route(
      "GET",
      "/impostor-write",
      Effect.as(Session.set(Count, 2), HttpServerResponse.unsafeSetCookie(ok, "session", "forged", { path: "/" }))
    )
  ])
)

const browser = Effect.map(
  serveClient(memorySessions({ secret: SECRET }), CookieRoutes),
  (client) => new TestBrowser(client)
)

const names = (reply: { readonly cookies: ReadonlyArray<{ readonly name: string }> }) =>
  reply.cookies.map((cookie) => cookie.name).sort()

describe("the session cookie next to the handler's own cookies", () => {
  it.scoped("a new session and a handler's cookie both reach the browser", () =>
    Effect.gen(function*() {
      const visitor = yield* browser
      const reply = yield* visitor.get("/theme-write")
      assert.deepStrictEqual(names(reply), ["session", "theme"])
      assert.strictEqual(reply.headers["cache-control"], "no-store")
      assert.strictEqual((yield* visitor.get("/read")).body, "1")
    }))

  it.scoped("a logout deletes the session cookie next to a handler's cookie or raw Set-Cookie header", () =>
    Effect.gen(function*() {
      const visitor = yield* browser
      yield* visitor.get("/incr")
      const byCookie = yield* visitor.get("/theme-logout")
      assert.deepStrictEqual(names(byCookie), ["session", "theme"])
      assert.strictEqual(byCookie.cookies.find((c) => c.name === "session")!.attributes.get("max-age"), "0")
      assert.isUndefined(visitor.cookie)

      yield* visitor.get("/incr")
      const byHeader = yield* visitor.get("/header-logout")
      assert.deepStrictEqual(names(byHeader), ["legacy", "session"])
      assert.strictEqual(byHeader.cookies.find((c) => c.name === "session")!.attributes.get("max-age"), "0")
      assert.isUndefined(visitor.cookie)
    }))

  it.scoped("a handler's cookie named like the session's is replaced by the session's own", () =>
    Effect.gen(function*() {
      const visitor = yield* browser
      const reply = yield* visitor.get("/impostor-write")
      assert.deepStrictEqual(names(reply), ["session"])
      assert.notStrictEqual(visitor.cookie, "forged")
      assert.strictEqual((yield* visitor.get("/read")).body, "2")
    }))
})
