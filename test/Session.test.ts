import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  type HttpApp,
  HttpClient,
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
import * as HttpSession from "../src/HttpSession.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as SessionError from "../src/SessionError.js"
import * as SessionId from "../src/SessionId.js"
import * as SessionStore from "../src/SessionStore.js"
import { Count, memorySessions, serveTest } from "./utils/testApp.js"
import { makeBrowser, TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-unit-test-secret-that-is-long-enough!!"
const OLD_SECRET = "an-older-secret-that-is-also-long-enough"

/** Runs `body` against the test routes on a test server with the in-memory store and the given options. */
const withServer = <A, E>(options: Partial<SessionConfig.Options>, body: Effect.Effect<A, E, HttpClient.HttpClient>) =>
  Effect.provide(body, serveTest(memorySessions({ secret: SECRET, ...options })))

describe("Session over HTTP (memory store)", () => {
  it.scoped("an anonymous visitor who only reads gets no session and no cookie", () =>
    withServer(
      {},
      Effect.gen(function*() {
        const browser = yield* makeBrowser()
        const reply = yield* browser.get("/read")
        assert.strictEqual(reply.body, "0")
        assert.strictEqual(reply.cookies.length, 0)
        assert.strictEqual((yield* browser.get("/is-new")).body, "true")
        assert.strictEqual((yield* browser.get("/whoami")).cookies.length, 0)
      })
    ))

  it.scoped("a write stores the session; later requests see it and isNew is false", () =>
    withServer(
      {},
      Effect.gen(function*() {
        const browser = yield* makeBrowser()
        assert.strictEqual((yield* browser.get("/incr")).cookies.length, 1)
        assert.strictEqual((yield* browser.get("/is-new")).body, "false")
        assert.strictEqual((yield* browser.get("/read")).body, "1")
        const id = (yield* browser.get("/id")).body
        assert.strictEqual(browser.cookie!.split(".")[0], id)
      })
    ))

  it.scoped("flash messages queue, skip duplicates on request, and pop once", () =>
    withServer(
      {},
      Effect.gen(function*() {
        const browser = yield* makeBrowser()
        yield* browser.get("/flash/hello")
        yield* browser.get("/flash/hello")
        yield* browser.get("/flash/world")
        assert.deepStrictEqual(JSON.parse((yield* browser.get("/flashes")).body), ["hello", "world"])
        assert.deepStrictEqual(JSON.parse((yield* browser.get("/flashes")).body), [])
      })
    ))

  it.scoped("CSRF tokens are 40 hex characters, stable until replaced, and verified", () =>
    withServer(
      {},
      Effect.gen(function*() {
        const browser = yield* makeBrowser()
        const token = (yield* browser.get("/csrf")).body
        assert.match(token, /^[0-9a-f]{40}$/)
        assert.strictEqual((yield* browser.get("/csrf")).body, token)
        assert.strictEqual((yield* browser.get(`/csrf/check?token=${token}`)).status, 200)
        assert.strictEqual(
          (yield* browser.get(`/csrf/check?token=${token.slice(0, -1)}${token.endsWith("0") ? "1" : "0"}`)).status,
          403
        )
        assert.strictEqual((yield* browser.get("/csrf/check?token=")).status, 403)
        assert.strictEqual((yield* (yield* makeBrowser()).get(`/csrf/check?token=${token}`)).status, 403)
      })
    ))

  it.scoped("adjustTimeout keeps the new timeout for the session and rejects bad values", () =>
    withServer(
      { timeout: "20 minutes" },
      Effect.gen(function*() {
        const browser = yield* makeBrowser()
        yield* browser.get("/incr")
        assert.strictEqual((yield* browser.get("/timeout")).body, "1200")
        assert.strictEqual((yield* browser.get("/adjust/555")).status, 200)
        assert.strictEqual((yield* browser.get("/timeout")).body, "555")
        assert.strictEqual((yield* browser.get("/adjust/0")).status, 400)
        assert.strictEqual((yield* browser.get("/adjust/1.5")).status, 400)
        assert.strictEqual((yield* browser.get("/timeout")).body, "555")
        assert.strictEqual((yield* browser.get("/read")).body, "1")
      })
    ))

  it.scoped("invalidate deletes the session and the cookie with the same attributes", () =>
    withServer(
      { cookieSecure: true, cookieSameSite: "strict", cookiePath: "/", cookieDomain: "example.test" },
      Effect.gen(function*() {
        const browser = yield* makeBrowser()
        yield* browser.get("/incr")
        const old = browser.cookie!
        const reply = yield* browser.get("/logout")
        assert.strictEqual(reply.cookies.length, 1)
        const deletion = reply.cookies[0]!
        assert.strictEqual(deletion.value, "")
        assert.strictEqual(deletion.attributes.get("max-age"), "0")
        assert.isTrue(deletion.attributes.has("expires"))
        assert.isTrue(deletion.attributes.has("secure"))
        assert.isTrue(deletion.attributes.has("httponly"))
        assert.strictEqual(deletion.attributes.get("samesite"), "Strict")
        assert.strictEqual(deletion.attributes.get("domain"), "example.test")
        const replay = yield* makeBrowser()
        replay.cookie = old
        assert.strictEqual((yield* replay.get("/read")).body, "0")
      })
    ))

  it.scoped("invalidate then write: one cookie with a new id; invalidating an anonymous session sends nothing", () =>
    withServer(
      {},
      Effect.gen(function*() {
        const browser = yield* makeBrowser()
        yield* browser.get("/incr")
        const old = browser.cookie!
        const reply = yield* browser.get("/logout-then-write")
        assert.strictEqual(reply.cookies.length, 1)
        assert.notStrictEqual(browser.cookie, old)
        assert.strictEqual(JSON.parse((yield* browser.get("/dump")).body).after, true)
        assert.strictEqual((yield* browser.get("/read")).body, "0")
        assert.strictEqual((yield* (yield* makeBrowser()).get("/logout")).cookies.length, 0)
      })
    ))

  it.scoped("cookie_on_exception: a new session's cookie is set on failure only when enabled", () =>
    Effect.zipRight(
      withServer(
        { cookieOnException: true },
        Effect.gen(function*() {
          const reply = yield* (yield* makeBrowser()).get("/write-then-fail")
          assert.strictEqual(reply.status, 500)
          assert.strictEqual(reply.cookies.length, 1)
        })
      ),
      withServer(
        { cookieOnException: false },
        Effect.gen(function*() {
          const reply = yield* (yield* makeBrowser()).get("/write-then-fail")
          assert.strictEqual(reply.status, 500)
          assert.strictEqual(reply.cookies.length, 0)
        })
      )
    ))

  it.scoped("cookie attributes follow the settings; Max-Age slides with every commit", () =>
    withServer(
      {
        cookieName: "__Host-sid",
        cookieSecure: true,
        cookieSameSite: "none",
        cookieMaxAge: "5 minutes",
        cookieHttpOnly: false
      },
      Effect.gen(function*() {
        const browser = yield* makeBrowser("__Host-sid")
        const first = (yield* browser.get("/incr")).cookies[0]!
        assert.strictEqual(first.name, "__Host-sid")
        assert.strictEqual(first.attributes.get("max-age"), "300")
        assert.isTrue(first.attributes.has("expires"))
        assert.isTrue(first.attributes.has("secure"))
        assert.isFalse(first.attributes.has("httponly"))
        assert.strictEqual(first.attributes.get("samesite"), "None")
        const again = yield* browser.get("/incr")
        assert.strictEqual(again.cookies.length, 1)
        assert.strictEqual(again.cookies[0]!.value, first.value)
        assert.strictEqual((yield* browser.get("/none")).cookies.length, 0)
      })
    ))

  it.scoped("of several cookies with the session's name, the first one that verifies is used", () =>
    withServer(
      {},
      Effect.gen(function*() {
        const browser = yield* makeBrowser()
        yield* browser.get("/incr")
        const client = yield* HttpClient.HttpClient
        const reply = yield* client.get("/read", {
          headers: { cookie: `session=forged.value; session=${browser.cookie}; other=1` }
        })
        assert.strictEqual(yield* reply.text, "1")
      })
    ))

  it.scoped("a value that does not match its key's schema is refused at set and changes nothing", () =>
    Effect.gen(function*() {
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
      const browser = yield* serveApp(bad.pipe(HttpSession.middleware), memoryServices({}))
      const reply = yield* browser.get("/bad")
      assert.strictEqual(reply.status, 422)
      assert.strictEqual(reply.body, "count")
      assert.strictEqual(reply.cookies.length, 0)
    }))
})

describe("a commit that dies", () => {
  it.scoped("answers 500 with a body that leaks nothing, sets no cookie, and the next request is served", () =>
    Effect.gen(function*() {
      let calls = 0
      const generator = Layer.succeed(
        SessionId.Generator,
        () => ++calls === 1 ? Effect.dieMessage("generator exploded") : Effect.succeed("a-working-session-id-0001")
      )
      const router = HttpRouter.empty.pipe(
        HttpRouter.get("/", Effect.map(counter, (n) => HttpServerResponse.text(String(n))))
      )
      const browser = yield* serveApp(router.pipe(HttpSession.middleware), Layer.merge(memoryServices({}), generator))
      const failed = yield* browser.get("/")
      assert.strictEqual(failed.status, 500)
      assert.notInclude(failed.body, "exploded")
      assert.strictEqual(failed.cookies.length, 0)
      const next = yield* browser.get("/")
      assert.strictEqual(next.status, 200)
      assert.strictEqual(next.body, "1")
      assert.strictEqual(next.cookies.length, 1)
    }))
})

const memoryServices = (options: Partial<SessionConfig.Options>, store = SessionStore.layerMemory) =>
  Layer.merge(SessionConfig.layer({ secret: SECRET, ...options }), store)

const serveApp = <E>(
  app: HttpApp.Default<E, SessionConfig.SessionConfig | SessionStore.SessionStore>,
  services: Layer.Layer<SessionConfig.SessionConfig | SessionStore.SessionStore, unknown>
) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      HttpServer.serve(app).pipe(Layer.provide(services), Layer.provideMerge(NodeHttpServer.layerTest))
    )
    return new TestBrowser(Context.get(context, HttpClient.HttpClient))
  })

const counter = Effect.gen(function*() {
  const next = Option.getOrElse(yield* Session.get(Count), () => 0) + 1
  yield* Session.set(Count, next)
  return next
})

describe("integration shapes", () => {
  it.scoped("HttpSession.middleware on an HttpRouter", () =>
    Effect.gen(function*() {
      const router = HttpRouter.empty.pipe(
        HttpRouter.get("/", Effect.map(counter, (n) => HttpServerResponse.text(String(n))))
      )
      const browser = yield* serveApp(router.pipe(HttpSession.middleware), memoryServices({}))
      const bodies = [(yield* browser.get("/")).body, (yield* browser.get("/")).body]
      assert.deepStrictEqual(bodies, ["1", "2"])
    }))

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
        HttpApiBuilder.serve().pipe(Layer.provide(ApiLive), Layer.provideMerge(NodeHttpServer.layerTest))
      )
      return new TestBrowser(Context.get(context, HttpClient.HttpClient))
    })

  it.scoped("HttpSession.HttpApiSession on an HttpApi group", () =>
    Effect.gen(function*() {
      const browser = yield* serveApi(SessionStore.layerMemory)
      const bodies = [(yield* browser.get("/increment")).body, (yield* browser.get("/increment")).body]
      assert.deepStrictEqual(bodies, ["1", "2"])
    }))

  it.scoped("an HttpApi endpoint that declares SessionStoreError answers 503 when the store fails", () =>
    Effect.gen(function*() {
      const memory = yield* SessionStore.makeMemory
      const unavailable = new SessionError.SessionStoreError({
        reason: "Unavailable",
        operation: "load",
        cause: new Error("connect ECONNREFUSED 10.1.2.3:6379")
      })
      const failing = Layer.succeed(SessionStore.SessionStore, { ...memory, load: () => Effect.fail(unavailable) })
      const browser = yield* serveApi(failing)
      browser.cookie = SessionId.sign("0123456789abcdef0123456789abcdef", Redacted.make(SECRET))
      const reply = yield* browser.get("/increment")
      assert.strictEqual(reply.status, 503)
      assert.notInclude(reply.body, "ECONNREFUSED")
    }))

  it.scoped("secret rotation: an old-secret cookie is accepted and re-issued with the newest; a dropped secret is refused", () =>
    Effect.gen(function*() {
      const store = Layer.succeed(SessionStore.SessionStore, yield* SessionStore.makeMemory)
      const router = HttpRouter.empty.pipe(
        HttpRouter.get("/", Effect.map(counter, (n) => HttpServerResponse.text(String(n))))
      )
      const app = router.pipe(HttpSession.middleware)
      const before = yield* serveApp(app, memoryServices({ secret: OLD_SECRET }, store))
      const rotated = yield* serveApp(app, memoryServices({ secret: [SECRET, OLD_SECRET] }, store))
      const dropped = yield* serveApp(app, memoryServices({ secret: SECRET }, store))
      yield* before.get("/")
      const oldCookie = before.cookie!
      rotated.cookie = oldCookie
      const reply = yield* rotated.get("/")
      assert.strictEqual(reply.body, "2")
      assert.strictEqual(reply.cookies.length, 1)
      const id = oldCookie.split(".")[0]!
      assert.strictEqual(rotated.cookie, SessionId.sign(id, Redacted.make(SECRET)))
      dropped.cookie = oldCookie
      assert.strictEqual((yield* dropped.get("/")).body, "1")
    }))
})
