import { HttpClient, HttpLayerRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import * as HttpSession from "../../src/HttpSession.js"
import * as RedisSessionStore from "../../src/RedisSessionStore.js"
import * as Session from "../../src/Session.js"
import * as SessionConfig from "../../src/SessionConfig.js"
import * as SessionIndex from "../../src/SessionIndex.js"
import * as SessionKey from "../../src/SessionKey.js"
import * as SessionStore from "../../src/SessionStore.js"
import { Browser } from "./Browser.js"
import { TestBrowser } from "./TestBrowser.js"

/**
 * The `HttpLayerRouter` session middleware on a new in-memory store, or on `store` (to look at what it holds, or to
 * share it between servers).
 */
export const memorySessions = (options: SessionConfig.Options, store?: SessionStore.SessionStore["Type"]) =>
  HttpSession.layerRouter.pipe(
    Layer.provide([
      store === undefined ? SessionStore.layerMemory : Layer.succeed(SessionStore.SessionStore, store),
      SessionConfig.layer(options)
    ])
  )

/** A Redis `SessionStore` from a `redis.sessions.*` settings record, read through `RedisSessionStore.layerConfig`. */
export const storeFromSettings = (settings: Readonly<Record<string, string>>) =>
  RedisSessionStore.layerConfig().pipe(
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(settings)))))
  )

export const Count = SessionKey.make("count", Schema.Int)
export const User = SessionKey.make("user", Schema.String)

const text = (body: unknown) => HttpServerResponse.text(typeof body === "string" ? body : JSON.stringify(body))
const param = (name: string) => Effect.map(HttpLayerRouter.params, (p) => p[name] ?? "")

class Boom extends Error {}

interface GateState {
  arrivals: number
  opened: boolean
  readonly onArrival: Array<() => void>
  readonly waiting: Array<() => void>
}

const gates = new Map<string, GateState>()

const gateState = (name: string): GateState => {
  let state = gates.get(name)
  if (state === undefined) {
    state = { arrivals: 0, opened: false, onArrival: [], waiting: [] }
    gates.set(name, state)
  }
  return state
}

/** Inside a request: arrive at the named gate and wait there until the test opens it. */
const passGate = (name: string) =>
  Effect.async<void>((resume) => {
    const state = gateState(name)
    state.arrivals++
    for (const notify of state.onArrival) notify()
    if (state.opened) resume(Effect.void)
    else state.waiting.push(() => resume(Effect.void))
  })

/**
 * A rendezvous between a test and the requests it sends to `/gated-*` routes, so that a test orders requests
 * by events instead of sleeps: `arrived(n)` resolves once `n` requests have loaded their session and wait at
 * the gate; `open()` lets them go on.
 */
export const gate = (name = `gate-${randomUUID()}`) => ({
  name,
  arrived: (count = 1) =>
    new Promise<void>((resolve) => {
      const state = gateState(name)
      const check = () => {
        if (state.arrivals >= count) resolve()
      }
      state.onArrival.push(check)
      check()
    }),
  open: () => {
    const state = gateState(name)
    state.opened = true
    for (const resume of state.waiting.splice(0)) resume()
  }
})

/**
 * Two tabs of `browser` read `count` together, then both write it: under strict mode one of them conflicts.
 * Gives both replies.
 */
export const racingIncrements = (browser: TestBrowser) =>
  Effect.gen(function*() {
    const both = gate()
    const pending = yield* Effect.fork(Effect.all([
      browser.get(`/gated-incr/${both.name}`),
      browser.tab().get(`/gated-incr/${both.name}`)
    ], { concurrency: "unbounded" }))
    yield* Effect.promise(() => both.arrived(2))
    both.open()
    return yield* pending
  })

/** Routes that exercise every part of the Session API; each answers with plain text. */
export const Routes = HttpLayerRouter.addAll([
  HttpLayerRouter.route("GET", "/none", Effect.succeed(text("none"))),
  HttpLayerRouter.route(
    "GET",
    "/read",
    Effect.map(Session.get(Count), (c) => text(String(Option.getOrElse(c, () => 0))))
  ),
  HttpLayerRouter.route(
    "GET",
    "/whoami",
    Effect.map(Session.get(User), (u) => text(Option.getOrElse(u, () => "anonymous")))
  ),
  HttpLayerRouter.route(
    "GET",
    "/incr",
    Effect.gen(function*() {
      const next = Option.getOrElse(yield* Session.get(Count), () => 0) + 1
      yield* Session.set(Count, next)
      return text(String(next))
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/set/:key/:value",
    Effect.gen(function*() {
      yield* Session.set(yield* param("key"), yield* param("value"))
      return text("ok")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/gated-write/:key/:gate",
    Effect.gen(function*() {
      yield* Session.get(Count)
      yield* passGate(yield* param("gate"))
      yield* Session.set(yield* param("key"), "late")
      return text("ok")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/gated-incr/:gate",
    Effect.gen(function*() {
      const next = Option.getOrElse(yield* Session.get(Count), () => 0) + 1
      yield* passGate(yield* param("gate"))
      yield* Session.set(Count, next)
      return text(String(next))
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/login/:user",
    Effect.gen(function*() {
      yield* Session.get(User)
      yield* Session.regenerate
      yield* Session.set(User, yield* param("user"))
      return text("welcome")
    })
  ),
  HttpLayerRouter.route("GET", "/logout", Effect.as(Session.invalidate, text("bye"))),
  HttpLayerRouter.route(
    "GET",
    "/sign-in/:user",
    Effect.gen(function*() {
      const user = yield* param("user")
      yield* Session.regenerate
      yield* Session.bind(user)
      yield* Session.set(User, user)
      return text("welcome")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/sessions/:user",
    Effect.gen(function*() {
      const index = yield* SessionIndex.SessionIndex
      const sessions = yield* index.list(yield* param("user"))
      return text(
        sessions.map((s) => ({ ...s, userAgent: Option.getOrNull(s.userAgent), network: Option.getOrNull(s.network) }))
      )
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/revoke-others/:user",
    Effect.gen(function*() {
      const index = yield* SessionIndex.SessionIndex
      return text(String(yield* index.revokeOthers(yield* param("user"))))
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/revoke-all/:user",
    Effect.gen(function*() {
      const index = yield* SessionIndex.SessionIndex
      return text(String(yield* index.revokeAll(yield* param("user"))))
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/revoke/:user/:handle",
    Effect.gen(function*() {
      const index = yield* SessionIndex.SessionIndex
      return text(String(yield* index.revoke(yield* param("user"), yield* param("handle"))))
    })
  ),
  HttpLayerRouter.route("GET", "/dump", Effect.map(Session.entries, (e) => text(Object.fromEntries(e)))),
  HttpLayerRouter.route("GET", "/id", Effect.map(Session.id, (id) => text(Redacted.value(id)))),
  HttpLayerRouter.route("GET", "/is-new", Effect.map(Session.isNew, (n) => text(String(n)))),
  HttpLayerRouter.route("GET", "/timeout", Effect.map(Session.timeout, (t) => text(String(Duration.toSeconds(t))))),
  HttpLayerRouter.route(
    "GET",
    "/adjust/:seconds",
    Effect.gen(function*() {
      yield* Session.adjustTimeout(Duration.seconds(Number(yield* param("seconds"))))
      return text("ok")
    }).pipe(Effect.catchTag("InvalidTimeout", () => Effect.succeed(HttpServerResponse.text("bad", { status: 400 }))))
  ),
  HttpLayerRouter.route(
    "GET",
    "/flash/:message",
    Effect.gen(function*() {
      yield* Session.flash(yield* param("message"), { allowDuplicate: false })
      return text("ok")
    })
  ),
  HttpLayerRouter.route("GET", "/flashes", Effect.map(Session.popFlash(), text)),
  HttpLayerRouter.route("GET", "/csrf", Effect.map(Session.getCsrfToken, text)),
  HttpLayerRouter.route(
    "GET",
    "/csrf/check",
    Effect.gen(function*() {
      const token = (yield* HttpServerRequest.schemaSearchParams(Schema.Struct({ token: Schema.String }))).token
      return (yield* Session.verifyCsrfToken(token))
        ? text("valid")
        : HttpServerResponse.text("forbidden", { status: 403 })
    }).pipe(Effect.catchTag("ParseError", () => Effect.succeed(HttpServerResponse.text("bad", { status: 400 }))))
  ),
  HttpLayerRouter.route(
    "GET",
    "/write-then-fail",
    Effect.gen(function*() {
      yield* Session.set("attempted", true)
      return yield* Effect.die(new Boom("handler failed"))
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/logout-then-write",
    Effect.gen(function*() {
      yield* Session.invalidate
      yield* Session.set("after", true)
      return text("ok")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/big/:size",
    Effect.gen(function*() {
      yield* Session.set("big", "x".repeat(Number(yield* param("size"))))
      return text("ok")
    })
  )
])

/** A browser holding a stored session with count=1, with every script of the store loaded into Redis. */
export const storedSession = async (url: string) => {
  const browser = new Browser(url)
  await browser.get("/incr")
  await browser.get("/read")
  await browser.get("/set/warm/up")
  if (browser.cookie === undefined) throw new Error("the test app stored no session")
  return browser
}

/** `storedSession` on a test server's `HttpClient`. */
export const storedTestSession = Effect.fnUntraced(function*(client: HttpClient.HttpClient) {
  const browser = new TestBrowser(client)
  yield* browser.get("/incr")
  yield* browser.get("/read")
  yield* browser.get("/set/warm/up")
  if (browser.cookie === undefined) return yield* Effect.die(new Error("the test app stored no session"))
  return browser
})

/**
 * Sends `count` concurrent requests on the browser's session, each writing its own key `k<i>` = `v<i>`;
 * returns the statuses that were not 200 and the keys missing from the session afterwards.
 */
export const writeKeysConcurrently = async (browser: Browser, count: number) => {
  const replies = await Promise.all(Array.from({ length: count }, (_, i) => browser.get(`/set/k${i}/v${i}`)))
  const data = JSON.parse((await browser.get("/dump")).body) as Record<string, unknown>
  return {
    failed: replies.filter((r) => r.status !== 200).map((r) => r.status),
    missing: Array.from({ length: count }, (_, i) => `k${i}`).filter((k, i) => data[k] !== `v${i}`),
    data
  }
}

/**
 * Serves `routes` (by default the routes above) on a real Node HTTP server on a free loopback port, with the
 * given session layer; returns the base URL. The server lives as long as the scope.
 */
export const serve = <E>(
  session: Layer.Layer<
    | HttpLayerRouter.Request<"Requires", Session.Session>
    | HttpLayerRouter.Request<"Requires", SessionIndex.SessionIndex>,
    E
  >,
  routes: typeof Routes = Routes
) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      HttpLayerRouter.serve(routes.pipe(Layer.provide(session)), { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
      )
    )
    const address = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
    return `http://127.0.0.1:${address.port}`
  })

/**
 * The test routes with `session` on a test server (`NodeHttpServer.layerTest`) that lives as long as the scope;
 * returns the `HttpClient` that talks to it, for apps that a test holds several of at once.
 */
export const serveClient = <E>(
  session: Layer.Layer<
    | HttpLayerRouter.Request<"Requires", Session.Session>
    | HttpLayerRouter.Request<"Requires", SessionIndex.SessionIndex>,
    E
  >,
  routes: typeof Routes = Routes
) => Effect.map(Layer.build(serveTest(session, routes)), (context) => Context.get(context, HttpClient.HttpClient))

/** The test routes with `session` on an in-process test server (`NodeHttpServer.layerTest`): gives `HttpClient`. */
export const serveTest = <E>(
  session: Layer.Layer<
    | HttpLayerRouter.Request<"Requires", Session.Session>
    | HttpLayerRouter.Request<"Requires", SessionIndex.SessionIndex>,
    E
  >,
  routes: typeof Routes = Routes
) =>
  HttpLayerRouter.serve(routes.pipe(Layer.provide(session)), { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest)
  )
