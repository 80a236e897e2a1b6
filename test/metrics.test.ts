import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as RedisSession from "../src/RedisSession.js"
import * as SessionMetrics from "../src/SessionMetrics.js"
import * as SessionStore from "../src/SessionStore.js"
import { startRedisServer } from "./utils/RedisServer.js"
import { memorySessions, racingIncrements, serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-secret-of-at-least-32-characters-for-metrics"

type Counter = Metric.Metric.Counter<number>

const valueOf = (counter: Counter) => Effect.map(Metric.value(counter), (state) => state.count)

/** How much each of `counters` moved while `effect` ran. */
const moves = <const Names extends string, E, R>(
  counters: Readonly<Record<Names, Counter>>,
  effect: Effect.Effect<unknown, E, R>
) =>
  Effect.gen(function*() {
    const names = Object.keys(counters) as Array<Names>
    const before = yield* Effect.forEach(names, (name) => valueOf(counters[name]))
    yield* effect
    const after = yield* Effect.forEach(names, (name) => valueOf(counters[name]))
    return Object.fromEntries(names.map((name, i) => [name, after[i]! - before[i]!])) as Record<Names, number>
  })

const app = (options: { readonly strict?: boolean; readonly maxSize?: number } = {}) =>
  Effect.map(serveClient(memorySessions({ secret: SECRET, ...options })), (client) => new TestBrowser(client))

describe("SessionMetrics", () => {
  it.scoped("loads by outcome: live, and missing for a session logged out in another tab", () =>
    Effect.gen(function*() {
      const browser = yield* app()
      yield* browser.get("/incr")
      const stale = browser.tab()
      const { live, missing } = SessionMetrics.loads
      assert.deepStrictEqual(yield* moves({ live, missing }, browser.get("/read")), { live: 1, missing: 0 })
      yield* browser.get("/logout")
      assert.deepStrictEqual(yield* moves({ live, missing }, stale.get("/read")), { live: 0, missing: 1 })
    }))

  it.scoped("commits by outcome: created, written, unchanged, ended, too large", () =>
    Effect.gen(function*() {
      const browser = yield* app({ maxSize: 100 })
      const { created, ended, too_large, unchanged, written } = SessionMetrics.commits
      const commits = { created, written, unchanged, ended, too_large }
      const none = { created: 0, written: 0, unchanged: 0, ended: 0, too_large: 0 }
      assert.deepStrictEqual(yield* moves(commits, browser.get("/incr")), { ...none, created: 1 })
      assert.deepStrictEqual(yield* moves(commits, browser.get("/incr")), { ...none, written: 1 })
      assert.deepStrictEqual(yield* moves(commits, browser.get("/read")), { ...none, unchanged: 1 })
      assert.deepStrictEqual(yield* moves(commits, browser.get("/none")), none)
      const tooLarge = yield* moves(commits, browser.get("/big/500"))
      assert.deepStrictEqual(tooLarge, { ...none, too_large: 1 })
      assert.deepStrictEqual(yield* moves(commits, browser.get("/logout")), { ...none, ended: 1 })
    }))

  it.scoped("a commit refused in strict mode is a conflict", () =>
    Effect.gen(function*() {
      const browser = yield* app({ strict: true })
      yield* browser.get("/incr")
      const { conflict, written } = SessionMetrics.commits
      const moved = yield* moves({ conflict, written }, racingIncrements(browser))
      assert.deepStrictEqual(moved, { conflict: 1, written: 1 })
    }))

  it.scoped("sessions created, regenerated, invalidated, revoked and found expired on read", () =>
    Effect.gen(function*() {
      const browser = yield* app()
      const phone = new TestBrowser(browser.client)
      const moved = yield* moves(
        SessionMetrics.sessions,
        Effect.gen(function*() {
          yield* browser.get("/incr")
          yield* browser.get("/sign-in/alice")
          yield* phone.get("/sign-in/alice")
          const stale = phone.tab()
          yield* phone.get("/logout")
          yield* stale.get("/read")
          yield* new TestBrowser(browser.client).get("/sign-in/alice")
          assert.strictEqual((yield* browser.get("/revoke-all/alice")).body, "2")
        })
      )
      assert.deepStrictEqual(moved, { created: 3, regenerated: 1, invalidated: 1, revoked: 2, expired_on_read: 1 })
    }))

  it.scoped("verified cookies: known at once when signed here, a miss once when signed by another process", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.makeMemory
      const instance = () => serveClient(memorySessions({ secret: SECRET }, store))
      const browser = new TestBrowser(yield* instance())
      yield* browser.get("/incr")
      const returning = yield* moves(
        SessionMetrics.cookieCache,
        Effect.all([browser.get("/read"), browser.get("/read")])
      )
      assert.deepStrictEqual(returning, { hit: 2, miss: 0 })
      yield* browser.get("/login/bob")
      assert.deepStrictEqual(yield* moves(SessionMetrics.cookieCache, browser.get("/read")), { hit: 1, miss: 0 })
      const restarted = new TestBrowser(yield* instance())
      restarted.cookie = browser.cookie
      const first = yield* moves(SessionMetrics.cookieCache, restarted.get("/read"))
      const again = yield* moves(SessionMetrics.cookieCache, restarted.get("/read"))
      assert.deepStrictEqual([first, again], [{ hit: 0, miss: 1 }, { hit: 1, miss: 0 }])
    }))

  it.scoped(
    "Redis calls are timed; a store that is down: a failed load and a failed logout, counted by reason",
    () =>
      Effect.gen(function*() {
        const redis = yield* Effect.acquireRelease(
          Effect.promise(() => startRedisServer()),
          (server) => Effect.promise(() => server.stop())
        )
        const client = yield* serveClient(
          RedisSession.layer({
            secret: SECRET,
            url: redis.url,
            commandTimeout: "500 millis",
            connectTimeout: "1 second"
          })
        )
        const browser = new TestBrowser(client)
        yield* browser.get("/incr")
        const loadLatency = SessionMetrics.redisLatency.pipe(Metric.tagged("operation", "load"))
        const latencyCount = Effect.map(Metric.value(loadLatency), (state) => state.count)
        const timedBefore = yield* latencyCount
        yield* browser.get("/read")
        assert.strictEqual((yield* latencyCount) - timedBefore, 1)
        yield* Effect.promise(() => redis.kill())
        const moved = yield* moves(
          { loads: SessionMetrics.loads.error, unavailable: SessionMetrics.storeErrors.Unavailable },
          Effect.map(browser.get("/read"), (reply) => assert.strictEqual(reply.status, 503))
        )
        assert.deepStrictEqual(moved, { loads: 1, unavailable: 1 })
        const loggedOut = yield* moves(
          { unavailable: SessionMetrics.storeErrors.Unavailable },
          Effect.map(browser.get("/logout"), (reply) => assert.strictEqual(reply.status, 503))
        )
        assert.deepStrictEqual(loggedOut, { unavailable: 1 })
      }).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.None))),
    { timeout: 30_000 }
  )
})
