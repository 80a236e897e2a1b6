import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { sessionKey } from "../src/internal/keys.js"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisSession from "../src/RedisSession.js"
import { Browser } from "./utils/Browser.js"
import { commandsDuring as recorded, type RedisServer, TestRedis } from "./utils/RedisServer.js"
import { gate, serve, storedSession, writeKeysConcurrently } from "./utils/testApp.js"

const SECRET = "an-integration-test-secret-of-40-chars!!"

class App extends Context.Tag("test/App")<App, { readonly url: string; readonly redis: RedisServer }>() {}

const AppLive = Layer.scoped(
  App,
  Effect.gen(function*() {
    const redis = yield* TestRedis
    const url = yield* serve(RedisSession.layer({ secret: SECRET, url: redis.url, timeout: "10 minutes" }))
    return { url, redis }
  })
).pipe(Layer.provide(TestRedis.layer))

const withApp = (f: (app: App["Type"]) => Promise<void>) => Effect.flatMap(App, (app) => Effect.promise(() => f(app)))

const commandsDuring = async (redis: RedisServer, f: () => Promise<unknown>) =>
  (await recorded(redis, f)).map((c) => c.name)

const keyOf = (cookie: string) => sessionKey("", cookie.slice(0, cookie.lastIndexOf(".")))

layer(AppLive, { excludeTestServices: true, timeout: "60 seconds" })("HTTP on Redis", (it) => {
  it.effect("round-trip budget: untouched, anonymous and bad cookies cost 0 commands", () =>
    withApp(async ({ redis, url }) => {
      const browser = await storedSession(url)
      const before = await redis.admin().dbsize()
      const forged = new Browser(url)
      forged.cookie = `${"a".repeat(64)}.${"A".repeat(43)}`
      const garbage = new Browser(url)
      garbage.cookie = "%%%not-a-cookie"
      const huge = new Browser(url)
      huge.cookie = "x".repeat(10_000)
      const anonymous = new Browser(url)
      const replies: Array<{ status: number; cookies: ReadonlyArray<unknown> }> = []
      const commands = await commandsDuring(redis, async () => {
        replies.push(await browser.get("/none"))
        replies.push(await anonymous.get("/read"))
        replies.push(await anonymous.get("/whoami"))
        replies.push(await forged.get("/read"))
        replies.push(await garbage.get("/read"))
        replies.push(await huge.get("/read"))
      })
      assert.deepStrictEqual(commands, [])
      assert.deepStrictEqual(replies.map((r) => r.status), [200, 200, 200, 200, 200, 200])
      assert.strictEqual(replies[0]!.cookies.length, 0)
      assert.strictEqual(replies[1]!.cookies.length, 0)
      assert.isUndefined(anonymous.cookie)
      assert.strictEqual(await redis.admin().dbsize(), before)
    }))

  it.effect("round-trip budget: read 1, write 1, read+write 2, invalidate 1, login 2 commands", () =>
    withApp(async ({ redis, url }) => {
      // a first login and logout load their scripts into Redis, so the counts below are the steady state
      const warm = await storedSession(url)
      await warm.get("/login/warm")
      await warm.get("/logout")
      const browser = await storedSession(url)
      assert.deepStrictEqual(await commandsDuring(redis, () => browser.get("/read")), ["EVALSHA"])
      assert.deepStrictEqual(await commandsDuring(redis, () => browser.get("/set/color/blue")), ["EVALSHA"])
      assert.deepStrictEqual(await commandsDuring(redis, () => browser.get("/incr")), ["EVALSHA", "EVALSHA"])
      const login = await commandsDuring(redis, () => browser.get("/login/alice"))
      // the load, then one script that creates the new session and deletes the old one only if that worked
      assert.deepStrictEqual(login, ["EVALSHA", "EVALSHA"])
      assert.deepStrictEqual(await commandsDuring(redis, () => browser.get("/logout")), ["EVALSHA"])
      const anonymous = new Browser(url)
      assert.deepStrictEqual(await commandsDuring(redis, () => anonymous.get("/set/a/b")), ["EVALSHA"])
    }))

  it.effect("stored data survives requests and the cookie is signed id.mac", () =>
    withApp(async ({ url }) => {
      const browser = new Browser(url)
      const first = await browser.get("/incr")
      assert.strictEqual(first.body, "1")
      assert.strictEqual(first.cookies.length, 1)
      const cookie = first.cookies[0]!
      assert.match(cookie.value, /^[0-9a-f]{64}\.[A-Za-z0-9_-]{43}$/)
      assert.strictEqual(cookie.attributes.get("path"), "/")
      assert.isTrue(cookie.attributes.has("httponly"))
      assert.strictEqual(cookie.attributes.get("samesite"), "Lax")
      assert.isFalse(cookie.attributes.has("max-age"))
      const second = await browser.get("/incr")
      assert.strictEqual(second.body, "2")
      assert.strictEqual(second.cookies.length, 0)
    }))

  it.effect("every key has a TTL and the raw session id never reaches Redis", () =>
    withApp(async ({ redis, url }) => {
      const browser = await storedSession(url)
      await browser.get("/login/bob")
      const id = browser.cookie!.slice(0, 64)
      const admin = redis.admin()
      const keys = await admin.keys("*")
      assert.isAbove(keys.length, 0)
      for (const key of keys) {
        assert.isAbove(await admin.pttl(key), 0)
        assert.notInclude(key, id)
        const values = await admin.hgetall(key)
        assert.notInclude(JSON.stringify(values), id)
      }
      assert.include(keys, keyOf(browser.cookie!))
    }))

  it.effect("200 concurrent requests writing their own keys on one session all persist", () =>
    withApp(async ({ url }) => {
      const { failed, missing } = await writeKeysConcurrently(await storedSession(url), 200)
      assert.deepStrictEqual(failed, [])
      assert.deepStrictEqual(missing, [])
    }))

  it.effect("logout while a slow request is in flight: the session stays deleted", () =>
    withApp(async ({ redis, url }) => {
      const browser = await storedSession(url)
      const key = keyOf(browser.cookie!)
      const tab = new Browser(url)
      tab.cookie = browser.cookie
      const writer = gate()
      const slow = tab.get(`/gated-write/late/${writer.name}`)
      await writer.arrived() // it has loaded the session
      await browser.get("/logout")
      writer.open()
      const reply = await slow
      assert.strictEqual(reply.status, 200)
      assert.strictEqual(await redis.admin().exists(key), 0)
      assert.isFalse(reply.cookies.some((c) => c.value !== ""))
      assert.strictEqual((await tab.get("/read")).body, "0")
    }))

  it.effect("login regenerates the id: the old id is dead at once and the data moves", () =>
    withApp(async ({ redis, url }) => {
      const browser = await storedSession(url)
      const oldCookie = browser.cookie!
      const reply = await browser.get("/login/carol")
      assert.strictEqual(reply.cookies.length, 1)
      assert.notStrictEqual(browser.cookie, oldCookie)
      assert.strictEqual(await redis.admin().exists(keyOf(oldCookie)), 0)
      assert.strictEqual((await browser.get("/whoami")).body, "carol")
      assert.strictEqual((await browser.get("/read")).body, "1")
      const attacker = new Browser(url)
      attacker.cookie = oldCookie
      assert.strictEqual((await attacker.get("/whoami")).body, "anonymous")
    }))

  it.effect("unreadable stored records are anonymous sessions, never a 500", () =>
    withApp(async ({ redis, url }) => {
      const admin = redis.admin()
      const plant = async (write: (key: string) => Promise<unknown>) => {
        const browser = await storedSession(url)
        const key = keyOf(browser.cookie!)
        await admin.del(key)
        await write(key)
        await admin.pexpire(key, 60_000)
        return browser
      }
      const cases = [
        (key: string) => admin.hset(key, "c", "1", "t", "600", ".count", "{not json"),
        (key: string) => admin.hset(key, "c", "1", "t", "600", ".count", "\"a string, not an Int\""),
        (key: string) => admin.hset(key, "c", "yesterday", "t", "600", ".count", "1"),
        (key: string) => admin.hset(key, ".count", "1"),
        (key: string) => admin.set(key, "cos\nsystem\n(S'echo pwned'\ntR."),
        (key: string) => admin.rpush(key, "a", "b")
      ]
      for (const write of cases) {
        const browser = await plant(write)
        const reply = await browser.get("/read")
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.body, "0")
      }
    }))

  it.effect("changes to an existing session are committed even when the handler fails", () =>
    withApp(async ({ url }) => {
      const browser = await storedSession(url)
      const reply = await browser.get("/write-then-fail")
      assert.strictEqual(reply.status, 500)
      assert.notInclude(reply.body, "handler failed")
      assert.strictEqual(JSON.parse((await browser.get("/dump")).body).attempted, true)
    }))

  it.effect("blind writes that only remove or touch a session that ended meanwhile create nothing", () =>
    withApp(async ({ redis, url }) => {
      const browser = await storedSession(url)
      await redis.admin().del(keyOf(browser.cookie!))
      const before = await redis.admin().dbsize()
      const removeOnly = new Browser(url)
      removeOnly.cookie = browser.cookie
      const reply = await removeOnly.get("/adjust/99")
      assert.strictEqual(reply.status, 200)
      assert.strictEqual(await redis.admin().dbsize(), before)
      assert.isTrue(reply.cookies.every((c) => c.value === ""))
      const writer = new Browser(url)
      writer.cookie = browser.cookie
      assert.strictEqual((await writer.get("/set/fresh/value")).cookies.length, 1)
      assert.notStrictEqual(writer.cookie, browser.cookie)
      assert.strictEqual(await redis.admin().dbsize(), before + 1)
    }))

  it.effect("url wins over db, username and password", () =>
    Effect.flatMap(App, ({ redis }) =>
      Effect.gen(function*() {
        const client = yield* RedisClient.make({ url: Redacted.make(`${redis.url}/3`), db: 5 })
        yield* client.run("set", (c) => c.set("url-wins", "1"))
        assert.strictEqual(yield* Effect.promise(() => redis.admin().exists("url-wins")), 0)
        const db3 = yield* RedisClient.make({ url: Redacted.make(`${redis.url}/3`) })
        assert.strictEqual(yield* db3.run("get", (c) => c.get("url-wins")), "1")
      })).pipe(Effect.scoped))

  it.effect("an oversized session is refused with 413 and the stored one is unchanged", () =>
    withApp(async ({ url }) => {
      const browser = await storedSession(url)
      const reply = await browser.get("/big/70000")
      assert.strictEqual(reply.status, 413)
      assert.strictEqual((await browser.get("/read")).body, "1")
      assert.isUndefined(JSON.parse((await browser.get("/dump")).body).big)
    }))
})

class DownApp extends Context.Tag("test/DownApp")<DownApp, { readonly url: string; readonly redis: RedisServer }>() {}

const DownAppLive = Layer.scoped(
  DownApp,
  Effect.gen(function*() {
    const redis = yield* TestRedis
    const url = yield* serve(RedisSession.layer({ secret: SECRET, url: redis.url, commandTimeout: "500 millis" }))
    return { url, redis }
  })
).pipe(Layer.provide(TestRedis.layer))

layer(DownAppLive, { excludeTestServices: true, timeout: "60 seconds" })("HTTP with Redis down", (it) => {
  it.effect("session routes answer 503, other routes 200, a failed commit is never a success; then it recovers", () =>
    Effect.flatMap(DownApp, ({ redis, url }) =>
      Effect.promise(async () => {
        const browser = await storedSession(url)
        await redis.kill()
        const started = Date.now()
        const write = await browser.get("/set/a/b")
        const read = await browser.get("/read")
        const anonymousWrite = await new Browser(url).get("/incr")
        const public_ = await browser.get("/none")
        const elapsed = Date.now() - started
        assert.strictEqual(write.status, 503)
        assert.strictEqual(read.status, 503)
        assert.strictEqual(anonymousWrite.status, 503)
        assert.strictEqual(anonymousWrite.cookies.length, 0)
        assert.strictEqual(public_.status, 200)
        assert.notMatch(write.body + read.body, /ioredis|ECONNREFUSED|Redis/)
        await redis.restart()
        let recovered = false
        for (let attempt = 0; attempt < 50 && !recovered; attempt++) {
          recovered = (await new Browser(url).get("/incr")).status === 200
          if (!recovered) await new Promise((resolve) => setTimeout(resolve, 100))
        }
        assert.isTrue(recovered)
        console.log(`redis down: 4 requests answered in ${elapsed} ms`)
      })))
})
