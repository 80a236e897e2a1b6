import type { HttpClient } from "@effect/platform"
import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { sessionKey } from "../src/internal/keys.js"
import * as RedisSession from "../src/RedisSession.js"
import { type RedisServer, TestRedis } from "./utils/RedisServer.js"
import { gate, racingIncrements, serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-concurrency-test-secret-of-40-chars!!!"

class Apps extends Context.Tag("test/ConcurrencyApps")<Apps, {
  readonly redis: RedisServer
  readonly lastWriterWins: HttpClient.HttpClient
  readonly strict: HttpClient.HttpClient
}>() {}

const AppsLive = Layer.scoped(
  Apps,
  Effect.gen(function*() {
    const redis = yield* TestRedis
    return {
      redis,
      lastWriterWins: yield* serveClient(RedisSession.layer({ secret: SECRET, url: redis.url, prefix: "lww:" })),
      strict: yield* serveClient(
        RedisSession.layer({ secret: SECRET, url: redis.url, prefix: "strict:", strict: true })
      )
    }
  })
).pipe(Layer.provide(TestRedis.layer))

const storedSession = Effect.fnUntraced(function*(client: HttpClient.HttpClient) {
  const browser = new TestBrowser(client)
  yield* browser.get("/incr")
  return browser
})

const dump = (browser: TestBrowser) =>
  Effect.map(browser.get("/dump"), (reply) => JSON.parse(reply.body) as Record<string, unknown>)

const concurrently = <A, E>(effects: ReadonlyArray<Effect.Effect<A, E>>) =>
  Effect.all(effects, { concurrency: "unbounded" })

layer(AppsLive, { excludeTestServices: true, timeout: "60 seconds" })("concurrency on one session", (it) => {
  it.effect("two request streams writing different keys lose nothing", () =>
    Effect.gen(function*() {
      const browser = yield* storedSession((yield* Apps).lastWriterWins)
      const stream = (tab: TestBrowser, prefix: string) =>
        Effect.forEach(Array.from({ length: 100 }, (_, i) => i), (i) =>
          Effect.map(tab.get(`/set/${prefix}${i}/v`), (reply) => assert.strictEqual(reply.status, 200)))
      yield* concurrently([stream(browser, "a"), stream(browser.tab(), "b")])
      const data = yield* dump(browser)
      const missing = ["a", "b"].flatMap((p) =>
        Array.from({ length: 100 }, (_, i) => `${p}${i}`)
      ).filter((k) => data[k] !== "v")
      assert.deepStrictEqual(missing, [])
    }))

  it.effect("the same key written concurrently: last writer wins by default", () =>
    Effect.gen(function*() {
      const browser = yield* storedSession((yield* Apps).lastWriterWins)
      const replies = yield* racingIncrements(browser) // both read count = 1, then write
      assert.deepStrictEqual(replies.map((r) => r.status), [200, 200])
      assert.strictEqual((yield* browser.get("/read")).body, "2")
    }))

  it.effect("strict mode: the second writer of a key changed meanwhile gets 409 and changes nothing", () =>
    Effect.gen(function*() {
      const browser = yield* storedSession((yield* Apps).strict)
      const replies = yield* racingIncrements(browser) // both read count = 1, then write
      assert.deepStrictEqual(replies.map((r) => r.status).sort(), [200, 409])
      assert.strictEqual((yield* browser.get("/read")).body, "2")
      assert.strictEqual((yield* browser.get("/incr")).body, "3")
    }))

  it.effect("regenerate while another request writes: the old id stays dead and the write is not copied", () =>
    Effect.gen(function*() {
      const { lastWriterWins, redis } = yield* Apps
      const browser = yield* storedSession(lastWriterWins)
      const oldCookie = browser.cookie!
      const oldKey = sessionKey("lww:", oldCookie.split(".")[0]!)
      const writer = gate()
      const slow = yield* Effect.fork(browser.tab().get(`/gated-write/late/${writer.name}`))
      yield* Effect.promise(() => writer.arrived()) // it has loaded the session
      assert.strictEqual((yield* browser.get("/login/mallory")).status, 200)
      writer.open()
      yield* slow
      assert.strictEqual(yield* Effect.promise(() => redis.admin().exists(oldKey)), 0)
      const data = yield* dump(browser)
      assert.strictEqual(data.user, "mallory")
      assert.isUndefined(data.late)
      const stale = new TestBrowser(lastWriterWins)
      stale.cookie = oldCookie
      assert.strictEqual((yield* stale.get("/whoami")).body, "anonymous")
    }))
})
