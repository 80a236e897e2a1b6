/**
 * Time over HTTP, on the memory store: idle expiry, sliding renewal (by commits and by the read-only touch),
 * the absolute timeout and the cookie's Max-Age, all driven by `TestClock` through a test server
 * (`NodeHttpServer.layerTest`) and `HttpClient` with a cookie jar. No real time passes.
 */
import type { HttpClientResponse } from "@effect/platform"
import { Cookies, HttpClient, HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import * as Session from "../src/Session.js"
import type * as SessionConfig from "../src/SessionConfig.js"
import * as SessionStore from "../src/SessionStore.js"
import { Count, memorySessions } from "./utils/testApp.js"

const SECRET = "a-secret-of-at-least-32-characters!!"
// in the future of the wall clock: the cookie jar of HttpClient drops cookies whose Expires has passed in real time
const START = Date.UTC(2036, 0, 1, 12, 0, 0)

const Routes = HttpLayerRouter.addAll([
  HttpLayerRouter.route(
    "POST",
    "/incr",
    Effect.gen(function*() {
      const next = Option.getOrElse(yield* Session.get(Count), () => 0) + 1
      yield* Session.set(Count, next)
      return HttpServerResponse.text(String(next))
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/count",
    Effect.map(Session.get(Count), (count) => HttpServerResponse.text(String(Option.getOrElse(count, () => 0))))
  ),
  HttpLayerRouter.route(
    "GET",
    "/id",
    Effect.map(Session.id, (id) => HttpServerResponse.text(id.toString() === "<redacted>" ? "hidden" : "shown"))
  )
])

/**
 * Runs `body` against a test server on a fresh memory store, with the `TestClock` at `START`; `body` gets the
 * store, to watch its TTLs, and an `HttpClient` on the server.
 */
const withServer = <A, E>(
  options: Omit<SessionConfig.Options, "secret">,
  body: (store: SessionStore.SessionStore["Type"]) => Effect.Effect<A, E, HttpClient.HttpClient>
) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(START)
    const store = yield* SessionStore.makeMemory
    const sessions = memorySessions({ secret: SECRET, ...options }, store)
    const server = HttpLayerRouter.serve(Routes.pipe(Layer.provide(sessions)), {
      disableLogger: true,
      disableListenLog: true
    }).pipe(Layer.provideMerge(NodeHttpServer.layerTest))
    return yield* Effect.provide(body(store), server)
  })

/** A browser: an `HttpClient` on the test server that keeps the cookies it is given. */
const browser = Effect.gen(function*() {
  const jar = yield* Ref.make(Cookies.empty)
  const client = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk, HttpClient.withCookiesRef(jar))
  const text = (request: Effect.Effect<HttpClientResponse.HttpClientResponse, unknown>) =>
    Effect.flatMap(request, (response) => response.text)
  return {
    incr: text(client.post("/incr")).pipe(Effect.map(Number)),
    count: text(client.get("/count")).pipe(Effect.map(Number)),
    response: (path: string) => client.get(path),
    cookie: Effect.map(Ref.get(jar), (cookies) => Cookies.get(cookies, "session"))
  }
})

describe("expiry over HTTP, on the TestClock", () => {
  it.scoped("an idle session ends after its timeout, not before", () =>
    withServer({ timeout: "20 minutes" }, () =>
      Effect.gen(function*() {
        const visitor = yield* browser
        assert.strictEqual(yield* visitor.incr, 1)
        yield* TestClock.adjust("19 minutes")
        assert.strictEqual(yield* visitor.incr, 2, "19 idle minutes of 20: still the same session")
        yield* TestClock.adjust("20 minutes")
        assert.strictEqual(yield* visitor.count, 0, "20 idle minutes: the session ended")
        assert.strictEqual(yield* visitor.incr, 1, "and the next write starts a new one")
      })))

  it.scoped("every commit slides the idle timeout: a session used every 15 minutes outlives its 20-minute timeout", () =>
    withServer({ timeout: "20 minutes" }, () =>
      Effect.gen(function*() {
        const visitor = yield* browser
        for (let visit = 1; visit <= 8; visit++) {
          assert.strictEqual(yield* visitor.incr, visit)
          yield* TestClock.adjust("15 minutes")
        }
        assert.strictEqual(yield* visitor.count, 8, "two hours later, still the same session")
      })))

  it.scoped("a read-only request renews the TTL once it has dropped: reading every 15 minutes keeps the session", () =>
    withServer({ timeout: "20 minutes" }, (store) =>
      Effect.gen(function*() {
        const visitor = yield* browser
        assert.strictEqual(yield* visitor.incr, 1)
        const id = yield* visitor.cookie.pipe(Effect.map((cookie) => Option.getOrThrow(cookie).value.split(".")[0]!))
        /** The remaining TTL the store holds for the session, in minutes. */
        const ttlMinutes = Effect.map(store.load(id), (loaded) => Option.getOrThrow(loaded).ttl / 60_000)
        for (let read = 1; read <= 6; read++) {
          yield* TestClock.adjust("15 minutes")
          assert.strictEqual(yield* ttlMinutes, 5)
          assert.strictEqual(yield* visitor.count, 1)
          // the touch is sent after the response, without delaying it: wait until the store has it
          let ttl = yield* ttlMinutes
          for (let turn = 0; turn < 100 && ttl !== 20; turn++) {
            yield* Effect.yieldNow()
            ttl = yield* ttlMinutes
          }
          assert.strictEqual(ttl, 20, `read ${read} renewed the TTL to the full timeout`)
        }
      })))

  it.scoped("the absolute timeout ends a session however active it is", () =>
    withServer({ timeout: "20 minutes", absoluteTimeout: "1 hour" }, () =>
      Effect.gen(function*() {
        const visitor = yield* browser
        for (let visit = 1; visit <= 6; visit++) {
          assert.strictEqual(yield* visitor.incr, visit)
          yield* TestClock.adjust("10 minutes")
        }
        assert.strictEqual(yield* visitor.count, 0, "one hour after its creation the session is gone")
        assert.strictEqual(yield* visitor.incr, 1)
      })))

  it.scoped("Max-Age and Expires of the cookie come from cookie_max_age and the Clock", () =>
    withServer({ timeout: "20 minutes", cookieMaxAge: "1 hour" }, () =>
      Effect.gen(function*() {
        const visitor = yield* browser
        yield* visitor.incr
        const first = Option.getOrThrow(yield* visitor.cookie)
        assert.deepStrictEqual(first.options?.expires, new Date(START + 60 * 60_000))
        yield* TestClock.adjust("15 minutes")
        const response = yield* visitor.response("/id")
        assert.strictEqual(yield* response.text, "hidden")
        const header = response.headers["set-cookie"] ?? ""
        assert.include(header, "Max-Age=3600")
        assert.include(header, `Expires=${new Date(START + 75 * 60_000).toUTCString()}`, "re-sent as the TTL slid")
      })))
})
