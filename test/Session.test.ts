import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  type HttpApp,
  HttpRouter,
  HttpServer,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"
import * as HttpSession from "../src/HttpSession.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as SessionError from "../src/SessionError.js"
import * as SessionId from "../src/SessionId.js"
import * as SessionStore from "../src/SessionStore.js"
import { Browser } from "./utils/Browser.js"
import { Count, memorySessions, serve } from "./utils/testApp.js"

const SECRET = "a-unit-test-secret-that-is-long-enough!!"
const OLD_SECRET = "an-older-secret-that-is-also-long-enough"

/** Runs `f` against the test routes served with the in-memory store and the given options. */
const withServer = (options: Partial<SessionConfig.Options>, f: (url: string) => Promise<void>) =>
  Effect.scoped(
    Effect.flatMap(
      serve(memorySessions({ secret: SECRET, ...options })),
      (url) => Effect.promise(() => f(url))
    )
  )

describe("Session over HTTP (memory store)", () => {
  it.live("an anonymous visitor who only reads gets no session and no cookie", () =>
    withServer({}, async (url) => {
      const browser = new Browser(url)
      const reply = await browser.get("/read")
      assert.strictEqual(reply.body, "0")
      assert.strictEqual(reply.cookies.length, 0)
      assert.strictEqual((await browser.get("/is-new")).body, "true")
      assert.strictEqual((await browser.get("/whoami")).cookies.length, 0)
    }))

  it.live("a write stores the session; later requests see it and isNew is false", () =>
    withServer({}, async (url) => {
      const browser = new Browser(url)
      assert.strictEqual((await browser.get("/incr")).cookies.length, 1)
      assert.strictEqual((await browser.get("/is-new")).body, "false")
      assert.strictEqual((await browser.get("/read")).body, "1")
      const id = (await browser.get("/id")).body
      assert.strictEqual(browser.cookie!.split(".")[0], id)
    }))

  it.live("flash messages queue, skip duplicates on request, and pop once", () =>
    withServer({}, async (url) => {
      const browser = new Browser(url)
      await browser.get("/flash/hello")
      await browser.get("/flash/hello")
      await browser.get("/flash/world")
      assert.deepStrictEqual(JSON.parse((await browser.get("/flashes")).body), ["hello", "world"])
      assert.deepStrictEqual(JSON.parse((await browser.get("/flashes")).body), [])
    }))

  it.live("CSRF tokens are 40 hex characters, stable until replaced, and verified", () =>
    withServer({}, async (url) => {
      const browser = new Browser(url)
      const token = (await browser.get("/csrf")).body
      assert.match(token, /^[0-9a-f]{40}$/)
      assert.strictEqual((await browser.get("/csrf")).body, token)
      assert.strictEqual((await browser.get(`/csrf/check?token=${token}`)).status, 200)
      assert.strictEqual(
        (await browser.get(`/csrf/check?token=${token.slice(0, -1)}${token.endsWith("0") ? "1" : "0"}`)).status,
        403
      )
      assert.strictEqual((await browser.get("/csrf/check?token=")).status, 403)
      assert.strictEqual((await new Browser(url).get(`/csrf/check?token=${token}`)).status, 403)
    }))

  it.live("adjustTimeout keeps the new timeout for the session and rejects bad values", () =>
    withServer({ timeout: "20 minutes" }, async (url) => {
      const browser = new Browser(url)
      await browser.get("/incr")
      assert.strictEqual((await browser.get("/timeout")).body, "1200")
      assert.strictEqual((await browser.get("/adjust/555")).status, 200)
      assert.strictEqual((await browser.get("/timeout")).body, "555")
      assert.strictEqual((await browser.get("/adjust/0")).status, 400)
      assert.strictEqual((await browser.get("/adjust/1.5")).status, 400)
      assert.strictEqual((await browser.get("/timeout")).body, "555")
      assert.strictEqual((await browser.get("/read")).body, "1")
    }))

  it.live("invalidate deletes the session and the cookie with the same attributes", () =>
    withServer(
      { cookieSecure: true, cookieSameSite: "strict", cookiePath: "/", cookieDomain: "example.test" },
      async (url) => {
        const browser = new Browser(url)
        await browser.get("/incr")
        const old = browser.cookie!
        const reply = await browser.get("/logout")
        assert.strictEqual(reply.cookies.length, 1)
        const deletion = reply.cookies[0]!
        assert.strictEqual(deletion.value, "")
        assert.strictEqual(deletion.attributes.get("max-age"), "0")
        assert.isTrue(deletion.attributes.has("expires"))
        assert.isTrue(deletion.attributes.has("secure"))
        assert.isTrue(deletion.attributes.has("httponly"))
        assert.strictEqual(deletion.attributes.get("samesite"), "Strict")
        assert.strictEqual(deletion.attributes.get("domain"), "example.test")
        const replay = new Browser(url)
        replay.cookie = old
        assert.strictEqual((await replay.get("/read")).body, "0")
      }
    ))

  it.live("invalidate then write: one cookie with a new id; invalidating an anonymous session sends nothing", () =>
    withServer({}, async (url) => {
      const browser = new Browser(url)
      await browser.get("/incr")
      const old = browser.cookie!
      const reply = await browser.get("/logout-then-write")
      assert.strictEqual(reply.cookies.length, 1)
      assert.notStrictEqual(browser.cookie, old)
      assert.strictEqual(JSON.parse((await browser.get("/dump")).body).after, true)
      assert.strictEqual((await browser.get("/read")).body, "0")
      assert.strictEqual((await new Browser(url).get("/logout")).cookies.length, 0)
    }))

  it.live("cookie_on_exception: a new session's cookie is set on failure only when enabled", () =>
    Effect.zipRight(
      withServer({ cookieOnException: true }, async (url) => {
        const reply = await new Browser(url).get("/write-then-fail")
        assert.strictEqual(reply.status, 500)
        assert.strictEqual(reply.cookies.length, 1)
      }),
      withServer({ cookieOnException: false }, async (url) => {
        const reply = await new Browser(url).get("/write-then-fail")
        assert.strictEqual(reply.status, 500)
        assert.strictEqual(reply.cookies.length, 0)
      })
    ))

  it.live("cookie attributes follow the settings; Max-Age slides with every commit", () =>
    withServer(
      {
        cookieName: "__Host-sid",
        cookieSecure: true,
        cookieSameSite: "none",
        cookieMaxAge: "5 minutes",
        cookieHttpOnly: false
      },
      async (url) => {
        const browser = new Browser(url, "__Host-sid")
        const first = (await browser.get("/incr")).cookies[0]!
        assert.strictEqual(first.name, "__Host-sid")
        assert.strictEqual(first.attributes.get("max-age"), "300")
        assert.isTrue(first.attributes.has("expires"))
        assert.isTrue(first.attributes.has("secure"))
        assert.isFalse(first.attributes.has("httponly"))
        assert.strictEqual(first.attributes.get("samesite"), "None")
        const again = await browser.get("/incr")
        assert.strictEqual(again.cookies.length, 1)
        assert.strictEqual(again.cookies[0]!.value, first.value)
        assert.strictEqual((await browser.get("/none")).cookies.length, 0)
      }
    ))

  it.live("of several cookies with the session's name, the first one that verifies is used", () =>
    withServer({}, async (url) => {
      const browser = new Browser(url)
      await browser.get("/incr")
      const reply = await fetch(url + "/read", {
        headers: { cookie: `session=forged.value; session=${browser.cookie}; other=1` }
      })
      assert.strictEqual(await reply.text(), "1")
    }))

  it.live("a value that does not match its key's schema is refused at set and changes nothing", () =>
    Effect.scoped(Effect.gen(function*() {
      const bad = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/bad",
          Session.set(Count, 1.5 as number).pipe(
            Effect.as(HttpServerResponse.text("stored")),
            Effect.catchTag(
              "SessionEncodeError",
              (e) => Effect.succeed(HttpServerResponse.text(e.key, { status: 422 }))
            )
          )
        )
      )
      const url = yield* serveApp(bad.pipe(HttpSession.middleware), memoryServices({}))
      const reply = yield* Effect.promise(() => new Browser(url).get("/bad"))
      assert.strictEqual(reply.status, 422)
      assert.strictEqual(reply.body, "count")
      assert.strictEqual(reply.cookies.length, 0)
    })))
})

describe("a commit that dies", () => {
  it.live("answers 500 with a body that leaks nothing, sets no cookie, and the next request is served", () =>
    Effect.scoped(Effect.gen(function*() {
      let calls = 0
      const generator = Layer.succeed(
        SessionId.Generator,
        () => ++calls === 1 ? Effect.dieMessage("generator exploded") : Effect.succeed("a-working-session-id-0001")
      )
      const router = HttpRouter.empty.pipe(
        HttpRouter.get("/", Effect.map(counter, (n) => HttpServerResponse.text(String(n))))
      )
      const url = yield* serveApp(router.pipe(HttpSession.middleware), Layer.merge(memoryServices({}), generator))
      const browser = new Browser(url)
      const failed = yield* Effect.promise(() => browser.get("/"))
      assert.strictEqual(failed.status, 500)
      assert.notInclude(failed.body, "exploded")
      assert.strictEqual(failed.cookies.length, 0)
      const next = yield* Effect.promise(() => browser.get("/"))
      assert.strictEqual(next.status, 200)
      assert.strictEqual(next.body, "1")
      assert.strictEqual(next.cookies.length, 1)
    })))
})

const memoryServices = (options: Partial<SessionConfig.Options>, store = SessionStore.layerMemory) =>
  Layer.merge(SessionConfig.layer({ secret: SECRET, ...options }), store)

const serveApp = <E>(
  app: HttpApp.Default<E, SessionConfig.SessionConfig | SessionStore.SessionStore>,
  services: Layer.Layer<SessionConfig.SessionConfig | SessionStore.SessionStore, unknown>
) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      HttpServer.serve(app).pipe(
        Layer.provide(services),
        Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
      )
    )
    const address = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
    return `http://127.0.0.1:${address.port}`
  })

const counter = Effect.gen(function*() {
  const next = Option.getOrElse(yield* Session.get(Count), () => 0) + 1
  yield* Session.set(Count, next)
  return next
})

describe("integration shapes", () => {
  it.live("HttpSession.middleware on an HttpRouter", () =>
    Effect.scoped(Effect.gen(function*() {
      const router = HttpRouter.empty.pipe(
        HttpRouter.get("/", Effect.map(counter, (n) => HttpServerResponse.text(String(n))))
      )
      const url = yield* serveApp(router.pipe(HttpSession.middleware), memoryServices({}))
      const browser = new Browser(url)
      const bodies = yield* Effect.promise(async () => [(await browser.get("/")).body, (await browser.get("/")).body])
      assert.deepStrictEqual(bodies, ["1", "2"])
    })))

  const serveApi = (store: Layer.Layer<SessionStore.SessionStore>) =>
    Effect.gen(function*() {
      const Api = HttpApi.make("api").add(
        HttpApiGroup.make("counter")
          .add(
            HttpApiEndpoint.get("increment", "/increment").addSuccess(Schema.Number).addError(
              SessionError.SessionStoreError
            )
          )
          .middleware(HttpSession.HttpApiSession)
      )
      const Handlers = HttpApiBuilder.group(
        Api,
        "counter",
        (handlers) =>
          handlers.handle("increment", () => counter.pipe(Effect.catchTag("SessionEncodeError", Effect.die)))
      )
      const ApiLive = HttpApiBuilder.api(Api).pipe(
        Layer.provide(Handlers),
        Layer.provide(HttpSession.layerHttpApi),
        Layer.provide(memoryServices({}, store))
      )
      const context = yield* Layer.build(
        HttpApiBuilder.serve().pipe(
          Layer.provide(ApiLive),
          Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
        )
      )
      const address = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
      return `http://127.0.0.1:${address.port}`
    })

  it.live("HttpSession.HttpApiSession on an HttpApi group", () =>
    Effect.scoped(Effect.gen(function*() {
      const browser = new Browser(yield* serveApi(SessionStore.layerMemory))
      const bodies = yield* Effect.promise(async () => [
        (await browser.get("/increment")).body,
        (await browser.get("/increment")).body
      ])
      assert.deepStrictEqual(bodies, ["1", "2"])
    })))

  it.live("an HttpApi endpoint that declares SessionStoreError answers 503 when the store fails", () =>
    Effect.scoped(Effect.gen(function*() {
      const memory = yield* SessionStore.makeMemory
      const unavailable = new SessionError.SessionStoreError({
        reason: "Unavailable",
        operation: "load",
        cause: new Error("connect ECONNREFUSED 10.1.2.3:6379")
      })
      const failing = Layer.succeed(SessionStore.SessionStore, { ...memory, load: () => Effect.fail(unavailable) })
      const browser = new Browser(yield* serveApi(failing))
      browser.cookie = SessionId.sign("0123456789abcdef0123456789abcdef", Redacted.make(SECRET))
      const reply = yield* Effect.promise(() => browser.get("/increment"))
      assert.strictEqual(reply.status, 503)
      assert.notInclude(reply.body, "ECONNREFUSED")
    })))

  it.live("secret rotation: an old-secret cookie is accepted and re-issued with the newest; a dropped secret is refused", () =>
    Effect.scoped(Effect.gen(function*() {
      const store = Layer.succeed(SessionStore.SessionStore, yield* SessionStore.makeMemory)
      const router = HttpRouter.empty.pipe(
        HttpRouter.get("/", Effect.map(counter, (n) => HttpServerResponse.text(String(n))))
      )
      const app = router.pipe(HttpSession.middleware)
      const before = yield* serveApp(app, memoryServices({ secret: OLD_SECRET }, store))
      const rotated = yield* serveApp(app, memoryServices({ secret: [SECRET, OLD_SECRET] }, store))
      const dropped = yield* serveApp(app, memoryServices({ secret: SECRET }, store))
      yield* Effect.promise(async () => {
        const browser = new Browser(before)
        await browser.get("/")
        const oldCookie = browser.cookie!
        const next = new Browser(rotated)
        next.cookie = oldCookie
        const reply = await next.get("/")
        assert.strictEqual(reply.body, "2")
        assert.strictEqual(reply.cookies.length, 1)
        const id = oldCookie.split(".")[0]!
        assert.strictEqual(next.cookie, SessionId.sign(id, Redacted.make(SECRET)))
        const stale = new Browser(dropped)
        stale.cookie = oldCookie
        assert.strictEqual((await stale.get("/")).body, "1")
      })
    })))
})
