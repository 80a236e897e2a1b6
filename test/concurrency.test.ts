import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { sessionKey } from "../src/internal/keys.js"
import * as RedisSession from "../src/RedisSession.js"
import { Browser } from "./utils/Browser.js"
import { type RedisServer, TestRedis } from "./utils/RedisServer.js"
import { gate, serve } from "./utils/testApp.js"

const SECRET = "a-concurrency-test-secret-of-40-chars!!!"

class Apps extends Context.Tag("test/ConcurrencyApps")<Apps, {
  readonly redis: RedisServer
  readonly lastWriterWins: string
  readonly strict: string
}>() {}

const AppsLive = Layer.scoped(
  Apps,
  Effect.gen(function*() {
    const redis = yield* TestRedis
    return {
      redis,
      lastWriterWins: yield* serve(RedisSession.layer({ secret: SECRET, url: redis.url, prefix: "lww:" })),
      strict: yield* serve(RedisSession.layer({ secret: SECRET, url: redis.url, prefix: "strict:", strict: true }))
    }
  })
).pipe(Layer.provide(TestRedis.layer))

/** A second browser sharing the first one's cookie, like another tab. */
const tabOf = (browser: Browser) => {
  const tab = new Browser(browser.baseUrl)
  tab.cookie = browser.cookie
  return tab
}

const storedSession = async (url: string) => {
  const browser = new Browser(url)
  await browser.get("/incr")
  return browser
}

const dump = async (browser: Browser) => JSON.parse((await browser.get("/dump")).body) as Record<string, unknown>

layer(AppsLive, { excludeTestServices: true, timeout: "60 seconds" })("concurrency on one session", (it) => {
  const withApps = (f: (apps: Apps["Type"]) => Promise<void>) =>
    Effect.flatMap(Apps, (apps) => Effect.promise(() => f(apps)))

  it.effect("two request streams writing different keys lose nothing", () =>
    withApps(async ({ lastWriterWins }) => {
      const browser = await storedSession(lastWriterWins)
      const other = tabOf(browser)
      const stream = async (tab: Browser, prefix: string) => {
        for (let i = 0; i < 100; i++) assert.strictEqual((await tab.get(`/set/${prefix}${i}/v`)).status, 200)
      }
      await Promise.all([stream(browser, "a"), stream(other, "b")])
      const data = await dump(browser)
      const missing = ["a", "b"].flatMap((p) => Array.from({ length: 100 }, (_, i) => `${p}${i}`)).filter((k) =>
        data[k] !== "v"
      )
      assert.deepStrictEqual(missing, [])
    }))

  it.effect("the same key written concurrently: last writer wins by default", () =>
    withApps(async ({ lastWriterWins }) => {
      const browser = await storedSession(lastWriterWins)
      const both = gate()
      const pending = Promise.all([
        browser.get(`/gated-incr/${both.name}`),
        tabOf(browser).get(`/gated-incr/${both.name}`)
      ])
      await both.arrived(2) // both have read count = 1
      both.open()
      const replies = await pending
      assert.deepStrictEqual(replies.map((r) => r.status), [200, 200])
      assert.strictEqual((await browser.get("/read")).body, "2")
    }))

  it.effect("strict mode: the second writer of a key changed meanwhile gets 409 and changes nothing", () =>
    withApps(async ({ strict }) => {
      const browser = await storedSession(strict)
      const both = gate()
      const pending = Promise.all([
        browser.get(`/gated-incr/${both.name}`),
        tabOf(browser).get(`/gated-incr/${both.name}`)
      ])
      await both.arrived(2) // both have read count = 1
      both.open()
      const replies = await pending
      assert.deepStrictEqual(replies.map((r) => r.status).sort(), [200, 409])
      assert.strictEqual((await browser.get("/read")).body, "2")
      assert.strictEqual((await browser.get("/incr")).body, "3")
    }))

  it.effect("regenerate while another request writes: the old id stays dead and the write is not copied", () =>
    withApps(async ({ lastWriterWins, redis }) => {
      const browser = await storedSession(lastWriterWins)
      const oldCookie = browser.cookie!
      const oldKey = sessionKey("lww:", oldCookie.split(".")[0]!)
      const writer = gate()
      const slow = tabOf(browser).get(`/gated-write/late/${writer.name}`)
      await writer.arrived() // it has loaded the session
      assert.strictEqual((await browser.get("/login/mallory")).status, 200)
      writer.open()
      await slow
      assert.strictEqual(await redis.admin().exists(oldKey), 0)
      const data = await dump(browser)
      assert.strictEqual(data.user, "mallory")
      assert.isUndefined(data.late)
      const stale = new Browser(lastWriterWins)
      stale.cookie = oldCookie
      assert.strictEqual((await stale.get("/whoami")).body, "anonymous")
    }))
})
