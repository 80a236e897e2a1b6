/**
 * Step-up freshness (`requireFresh`, `reauthenticated`), remember-me and passive requests over HTTP: on the
 * memory store with the `TestClock`, and on a private Redis in real time (short durations). The store's side
 * (the authentication time and the remember-me flag, stored and changed) is in the store contract, which also
 * runs on Redis Cluster and Sentinel.
 */
import {
  Cookies,
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpClient,
  HttpLayerRouter,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { randomUUID } from "node:crypto"
import * as HttpSession from "../src/HttpSession.js"
import * as RedisSession from "../src/RedisSession.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import { SessionNotFresh, SessionStoreError } from "../src/SessionError.js"
import * as SessionIndex from "../src/SessionIndex.js"
import * as SessionStore from "../src/SessionStore.js"
import type { Reply } from "./utils/Browser.js"
import { startRedisServer } from "./utils/RedisServer.js"
import { memorySessions, Routes, User } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-secret-of-at-least-32-characters-for-accounts"
// in the future of the wall clock, so that no cookie Expires looks past
const START = Date.UTC(2036, 0, 1, 12, 0, 0)

const text = (body: string) => HttpServerResponse.text(body)
const param = (name: string) => Effect.map(HttpLayerRouter.params, (p) => p[name] ?? "")
const seconds = (name: string) => Effect.map(param(name), (value) => Duration.seconds(Number(value)))

/** The routes of this file, next to the shared test routes (`/sign-in/:user`, `/whoami`, …). */
const AccountRoutes = HttpLayerRouter.addAll([
  HttpLayerRouter.route("GET", "/visit", Effect.as(Session.set("visited", true), text("ok"))),
  HttpLayerRouter.route(
    "GET",
    "/visited",
    Effect.map(Session.get("visited"), (visited) => text(String(Option.getOrElse(visited, () => false))))
  ),
  HttpLayerRouter.route(
    "GET",
    "/sessions-of/:user",
    Effect.gen(function*() {
      const index = yield* SessionIndex.SessionIndex
      return text(String((yield* index.list(yield* param("user"))).length))
    })
  ),
  HttpLayerRouter.route("GET", "/regenerate", Effect.as(Session.regenerate, text("ok"))),
  HttpLayerRouter.route(
    "GET",
    "/authenticated-at",
    Effect.map(
      Session.authenticatedAt,
      (at) => text(Option.match(at, { onNone: () => "never", onSome: DateTime.formatIso }))
    )
  ),
  HttpLayerRouter.route(
    "GET",
    "/sensitive/:seconds",
    Effect.flatMap(seconds("seconds"), Session.requireFresh).pipe(Effect.as(text("done")))
  ),
  HttpLayerRouter.route("GET", "/reauthenticate", Effect.as(Session.reauthenticated, text("ok"))),
  HttpLayerRouter.route(
    "GET",
    "/remember/:seconds",
    Effect.flatMap(param("seconds"), (value) => Session.rememberMe(Duration.seconds(Number(value)))).pipe(
      Effect.as(text("ok")),
      Effect.catchTag(
        "InvalidTimeout",
        (error) => Effect.succeed(HttpServerResponse.text(error.timeout, { status: 400 }))
      )
    )
  ),
  HttpLayerRouter.route(
    "GET",
    "/remember-text/:duration",
    Effect.flatMap(
      param("duration"),
      (value) => Session.rememberMe(decodeURIComponent(value) as Duration.DurationInput)
    )
      .pipe(
        Effect.as(text("ok")),
        Effect.catchTag("InvalidTimeout", () => Effect.succeed(HttpServerResponse.text("bad", { status: 400 })))
      )
  ),
  HttpLayerRouter.route(
    "GET",
    "/poll",
    Session.passive.pipe(
      Effect.zipRight(Session.get(User)),
      Effect.map((user) => text(Option.getOrElse(user, () => "anonymous")))
    )
  ),
  HttpLayerRouter.route(
    "GET",
    "/poll-then-write",
    Session.passive.pipe(Effect.zipRight(Session.set("polled", true)), Effect.as(text("wrote")))
  ),
  HttpLayerRouter.route(
    "GET",
    "/poll-then-logout",
    Session.passive.pipe(Effect.zipRight(Session.invalidate), Effect.as(text("bye")))
  )
])

/** The routes above with `sessions` on a test server that lives as long as the scope; its `HttpClient`. */
const clientOf = <E>(sessions: Layer.Layer<HttpLayerRouter.Request<"Requires", Session.Session>, E>) =>
  Effect.map(
    Layer.build(
      HttpLayerRouter.serve(Layer.mergeAll(Routes, AccountRoutes).pipe(Layer.provide(sessions)), {
        disableLogger: true,
        disableListenLog: true
      }).pipe(
        Layer.provideMerge(NodeHttpServer.layerTest)
      )
    ),
    (context) => Context.get(context, HttpClient.HttpClient)
  )

/** An app on a fresh memory store, with the `TestClock` at `START`. */
const memoryApp = (options: Omit<SessionConfig.Options, "secret"> = {}) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(START)
    const store = yield* SessionStore.makeMemory
    return { browser: new TestBrowser(yield* clientOf(memorySessions({ secret: SECRET, ...options }, store))), store }
  })

/** The `Max-Age` of the session cookie a reply set, `undefined` when it set one without, `null` when none. */
const maxAgeOf = (reply: Reply) => {
  const cookie = reply.cookies.find((c) => c.name === "session")
  if (cookie === undefined) return null
  const maxAge = cookie.attributes.get("max-age")
  return maxAge === undefined ? undefined : Number(maxAge)
}

/** What a scenario runs on: an app of its own with the given settings, and a way to let time pass. */
interface Harness {
  readonly app: (options?: Omit<SessionConfig.Options, "secret">) => Effect.Effect<TestBrowser, unknown, Scope.Scope>
  readonly wait: (duration: Duration.DurationInput) => Effect.Effect<void>
}

const memory: Harness = {
  app: (options) => Effect.map(memoryApp(options), ({ browser }) => browser),
  wait: TestClock.adjust
}

/** A Redis harness on a private redis-server of the scope; each app gets its own key prefix. */
const redisHarness = Effect.map(
  Effect.acquireRelease(Effect.promise(() => startRedisServer()), (server) => Effect.promise(() => server.stop())),
  (server): Harness => ({
    app: (options) =>
      Effect.map(
        clientOf(RedisSession.layer({ secret: SECRET, url: server.url, prefix: `${randomUUID()}:`, ...options })),
        (client) => new TestBrowser(client)
      ),
    wait: Effect.sleep
  })
)

const statusAndBody = (reply: Reply) => [reply.status, reply.body] as const

const scenarios = {
  freshness: ({ app, wait }: Harness) =>
    Effect.gen(function*() {
      const browser = yield* app()
      assert.deepStrictEqual(statusAndBody(yield* browser.get("/sensitive/2")), [401, "Authentication required"])
      yield* browser.get("/visit")
      assert.strictEqual((yield* browser.get("/sensitive/2")).status, 401, "a session never bound is not fresh")
      yield* browser.get("/sign-in/alice")
      assert.deepStrictEqual(statusAndBody(yield* browser.get("/sensitive/2")), [200, "done"])
      yield* wait("2500 millis")
      assert.strictEqual((yield* browser.get("/sensitive/2")).status, 401)
      assert.strictEqual((yield* browser.get("/sensitive/60")).status, 200, "fresh enough for a longer window")
      assert.strictEqual((yield* browser.get("/whoami")).body, "alice", "a stale login is still a login")
      yield* browser.get("/reauthenticate")
      assert.deepStrictEqual(statusAndBody(yield* browser.get("/sensitive/2")), [200, "done"])
    }),

  rememberMe: ({ app, wait }: Harness) =>
    Effect.gen(function*() {
      const browser = yield* app({ timeout: "2 seconds" })
      assert.isUndefined(maxAgeOf(yield* browser.get("/sign-in/alice")), "a browser-session cookie by default")
      assert.strictEqual(maxAgeOf(yield* browser.get("/remember/20")), 20)
      yield* wait("3 seconds")
      const slid = yield* browser.get("/whoami")
      assert.strictEqual(slid.body, "alice", "the remembered session outlived the configured 2 s timeout")
      const maxAge = maxAgeOf(slid)
      assert.isTrue(maxAge === 19 || maxAge === 20, `the cookie is renewed with the session, got ${maxAge}`)
      assert.strictEqual(maxAgeOf(yield* browser.get("/regenerate")), 20, "a regenerated session stays remembered")
      const other = new TestBrowser(browser.client)
      assert.isUndefined(maxAgeOf(yield* other.get("/sign-in/bob")), "other sessions keep their cookie")
      yield* wait("3 seconds")
      assert.strictEqual((yield* other.get("/whoami")).body, "anonymous")
      assert.strictEqual((yield* browser.get("/whoami")).body, "alice")
    }),

  rememberMeWithinAbsoluteTimeout: ({ app }: Harness) =>
    Effect.gen(function*() {
      const browser = yield* app({ absoluteTimeout: "10 seconds" })
      yield* browser.get("/sign-in/alice")
      const maxAge = maxAgeOf(yield* browser.get("/remember/3600"))
      assert.isTrue(maxAge !== null && maxAge !== undefined && maxAge <= 10 && maxAge >= 9, `got ${maxAge}`)
    }),

  rememberMeRefusesBadDurations: ({ app }: Harness) =>
    Effect.gen(function*() {
      const browser = yield* app()
      yield* browser.get("/sign-in/alice")
      for (const bad of ["0", "-5", "1.5", "1e12", "NaN"]) {
        const reply = yield* browser.get(`/remember/${bad}`)
        assert.deepStrictEqual([reply.status, maxAgeOf(reply)], [400, null], `rememberMe(${bad} s)`)
      }
      assert.strictEqual((yield* browser.get("/remember-text/soon")).status, 400)
      const anonymous = new TestBrowser(browser.client)
      assert.deepStrictEqual([(yield* anonymous.get("/remember/0")).status, anonymous.cookie], [400, undefined])
      const after = yield* browser.get("/sign-in/alice")
      assert.isUndefined(maxAgeOf(after), "nothing was remembered")
    }),

  passive: ({ app, wait }: Harness) =>
    Effect.gen(function*() {
      const polled = yield* app({ timeout: "2 seconds" })
      const used = new TestBrowser(polled.client)
      yield* polled.get("/sign-in/alice")
      yield* used.get("/sign-in/bob")
      const replies: Array<Reply> = []
      for (let i = 0; i < 7; i++) {
        yield* wait("500 millis")
        replies.push(yield* polled.get("/poll"))
        yield* used.get("/whoami")
      }
      assert.strictEqual(replies[0]!.body, "alice")
      assert.isTrue(replies.every((reply) => maxAgeOf(reply) !== 20), "a passive request never renews the cookie")
      assert.strictEqual(replies.at(-1)!.body, "anonymous", "the polled session expired")
      assert.isUndefined(polled.cookie, "and its cookie was deleted")
      assert.strictEqual((yield* used.get("/whoami")).body, "bob", "the same polling, not passive, kept it")
    }),

  renewal: ({ app, wait }: Harness) =>
    Effect.gen(function*() {
      const browser = yield* app({ renewalInterval: "2 seconds", renewalGrace: "1 second" })
      yield* browser.get("/sign-in/alice")
      const first = browser.cookie
      yield* wait("1 second")
      assert.deepStrictEqual([(yield* browser.get("/whoami")).body, browser.cookie], ["alice", first], "not due yet")
      yield* wait("1500 millis")
      const polled = yield* browser.get("/poll")
      assert.deepStrictEqual([polled.body, browser.cookie], ["alice", first], "a passive request never renews")
      const inFlight = browser.tab()
      assert.strictEqual((yield* browser.get("/whoami")).body, "alice")
      assert.notStrictEqual(browser.cookie, first, "renewed: a new id, the data kept")
      const late = yield* inFlight.get("/visit")
      assert.deepStrictEqual([late.status, maxAgeOf(late), inFlight.cookie], [200, null, first], "within the grace")
      assert.strictEqual((yield* browser.get("/visited")).body, "true", "the old id's write reached the session")
      assert.strictEqual((yield* browser.get("/sessions-of/alice")).body, "1", "one session, under its new id")
      yield* wait("1500 millis")
      assert.strictEqual((yield* inFlight.get("/whoami")).body, "anonymous", "after the grace the old id is gone")
      assert.strictEqual((yield* browser.get("/whoami")).body, "alice")
    }),

  renewalRace: ({ app, wait }: Harness) =>
    Effect.gen(function*() {
      const browser = yield* app({ renewalInterval: "2 seconds" })
      yield* browser.get("/sign-in/bob")
      const first = browser.cookie
      yield* wait("2500 millis")
      const tabs = [browser.tab(), browser.tab(), browser.tab()]
      const replies = yield* Effect.all(tabs.map((tab) => tab.get("/whoami")), { concurrency: "unbounded" })
      assert.deepStrictEqual(replies.map((reply) => reply.body), ["bob", "bob", "bob"])
      const renewedBy = tabs.filter((tab) => tab.cookie !== first)
      assert.strictEqual(renewedBy.length, 1, "one of the concurrent requests renews the id, the others keep it")
      assert.strictEqual((yield* renewedBy[0]!.get("/sessions-of/bob")).body, "1", "no orphan copy")
    }),

  passiveNeverWrites: ({ app }: Harness) =>
    Effect.gen(function*() {
      const browser = yield* app()
      assert.deepStrictEqual([(yield* browser.get("/poll-then-write")).status, browser.cookie], [500, undefined])
      yield* browser.get("/sign-in/alice")
      const cookie = browser.cookie
      const failed = yield* browser.get("/poll-then-write")
      assert.deepStrictEqual([failed.status, maxAgeOf(failed), browser.cookie], [500, null, cookie])
      assert.strictEqual((yield* browser.get("/whoami")).body, "alice")
      assert.deepStrictEqual(statusAndBody(yield* browser.get("/poll-then-logout")), [200, "bye"])
      assert.strictEqual((yield* browser.get("/whoami")).body, "anonymous")
    })
}

describe("account security on the memory store (TestClock)", () => {
  for (const [name, scenario] of Object.entries(scenarios)) it.scoped(name, () => scenario(memory))

  it.scoped("authenticatedAt: the sign-in time, kept across requests and regenerate, moved by reauthenticated", () =>
    Effect.gen(function*() {
      const { browser } = yield* memoryApp()
      assert.strictEqual((yield* browser.get("/authenticated-at")).body, "never")
      yield* browser.get("/sign-in/alice")
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* browser.get("/authenticated-at")).body, new Date(START).toISOString())
      yield* browser.get("/regenerate")
      assert.strictEqual((yield* browser.get("/authenticated-at")).body, new Date(START).toISOString())
      yield* browser.get("/reauthenticate")
      assert.strictEqual((yield* browser.get("/authenticated-at")).body, new Date(START + 60_000).toISOString())
    }))
})

describe("account security on Redis (real time)", () => {
  for (const [name, scenario] of Object.entries(scenarios)) {
    it.scopedLive(name, () => Effect.flatMap(redisHarness, scenario), 30_000)
  }
})

class FreshLogin extends HttpApiMiddleware.Tag<FreshLogin>()("test/FreshLogin", {
  failure: Schema.Union(SessionNotFresh, SessionStoreError)
}) {}

// the session's middleware comes last, so that it runs first: FreshLogin then finds the request's session
const AccountApi = HttpApi.make("account")
  .add(
    HttpApiGroup.make("account")
      .add(HttpApiEndpoint.post("signIn", "/sign-in"))
      .add(HttpApiEndpoint.post("changeEmail", "/email").addError(SessionNotFresh))
      .middleware(HttpSession.HttpApiSession)
  )
  .add(
    HttpApiGroup.make("sensitive")
      .add(HttpApiEndpoint.post("deleteAccount", "/delete"))
      .middleware(FreshLogin)
      .middleware(HttpSession.HttpApiSession)
  )

const AccountHandlers = HttpApiBuilder.group(AccountApi, "account", (handlers) =>
  handlers
    .handle("signIn", () => Session.bind("alice"))
    .handle(
      "changeEmail",
      () => Session.requireFresh("5 minutes").pipe(Effect.catchTag("SessionStoreError", Effect.die))
    ))

const SensitiveHandlers = HttpApiBuilder.group(
  AccountApi,
  "sensitive",
  (handlers) => handlers.handle("deleteAccount", () => Effect.void)
)

const FreshLoginLive = Layer.succeed(
  FreshLogin,
  Effect.flatMap(Session.Session, (session) => session.requireFresh("5 minutes"))
)

describe("requireFresh in an HttpApi", () => {
  it.scoped("in a handler that declares SessionNotFresh, and as endpoint middleware: 401 with the error's JSON", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(START)
      const client = (yield* HttpClient.HttpClient).pipe(HttpClient.withCookiesRef(yield* Ref.make(Cookies.empty)))
      const status = (path: string) => Effect.map(client.post(path), (response) => response.status)
      assert.deepStrictEqual([yield* status("/email"), yield* status("/delete")], [401, 401])
      assert.strictEqual(yield* status("/sign-in"), 204)
      assert.deepStrictEqual([yield* status("/email"), yield* status("/delete")], [204, 204])
      yield* TestClock.adjust("6 minutes")
      const refused = yield* client.post("/email")
      assert.deepStrictEqual([refused.status, yield* refused.json], [401, { _tag: "SessionNotFresh", maxAge: "5m" }])
      assert.strictEqual(yield* status("/delete"), 401)
    }).pipe(
      Effect.provide(
        HttpApiBuilder.serve().pipe(
          Layer.provide(HttpApiBuilder.api(AccountApi)),
          Layer.provide([AccountHandlers, SensitiveHandlers]),
          Layer.provide([HttpSession.layerHttpApi, FreshLoginLive]),
          Layer.provide([SessionStore.layerMemory, SessionConfig.layer({ secret: SECRET })]),
          Layer.provideMerge(NodeHttpServer.layerTest)
        )
      )
    ))
})
