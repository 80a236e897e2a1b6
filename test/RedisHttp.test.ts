import type { HttpClient } from "@effect/platform"
import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type { Redis } from "ioredis"
import { sessionKey } from "../src/internal/keys.js"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisSession from "../src/RedisSession.js"
import type { Reply } from "./utils/Browser.js"
import { commandNamesDuring, type RedisServer, TestRedis, withAdmin as admin } from "./utils/RedisServer.js"
import { gate, serveClient, storedTestSession as storedSession } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "an-integration-test-secret-of-40-chars!!"

class App extends Context.Tag("test/App")<App, {
  readonly client: HttpClient.HttpClient
  readonly redis: RedisServer
}>() {}

const AppLive = Layer.scoped(
  App,
  Effect.gen(function*() {
    const redis = yield* TestRedis
    const client = yield* serveClient(RedisSession.layer({ secret: SECRET, url: redis.url, timeout: "10 minutes" }))
    return { client, redis }
  })
).pipe(Layer.provide(TestRedis.layer))

/** The names of the commands Redis received while `effect` ran. */
const commandsDuring = <A, E>(redis: RedisServer, effect: Effect.Effect<A, E>) =>
  Effect.map(commandNamesDuring(redis, effect), ([, names]) => names)

const browserWith = (client: HttpClient.HttpClient, cookie: string | undefined) => {
  const browser = new TestBrowser(client)
  browser.cookie = cookie
  return browser
}

const dump = (browser: TestBrowser) =>
  Effect.map(browser.get("/dump"), (reply) => JSON.parse(reply.body) as Record<string, unknown>)

const keyOf = (cookie: string) => sessionKey("", cookie.slice(0, cookie.lastIndexOf(".")))

layer(AppLive, { excludeTestServices: true, timeout: "60 seconds" })("HTTP on Redis", (it) => {
  it.effect("round-trip budget: untouched, anonymous and bad cookies cost 0 commands", () =>
    Effect.gen(function*() {
      const { client, redis } = yield* App
      const browser = yield* storedSession(client)
      const before = yield* admin(redis, (r) => r.dbsize())
      const forged = browserWith(client, `${"a".repeat(64)}.${"A".repeat(43)}`)
      const garbage = browserWith(client, "%%%not-a-cookie")
      const huge = browserWith(client, "x".repeat(10_000))
      const anonymous = new TestBrowser(client)
      const replies: Array<Reply> = []
      const commands = yield* commandsDuring(
        redis,
        Effect.forEach(
          [
            browser.get("/none"),
            anonymous.get("/read"),
            anonymous.get("/whoami"),
            forged.get("/read"),
            garbage.get(
              "/read"
            ),
            huge.get("/read")
          ],
          (request) => Effect.map(request, (reply) => replies.push(reply))
        )
      )
      assert.deepStrictEqual(commands, [])
      assert.deepStrictEqual(replies.map((r) => r.status), [200, 200, 200, 200, 200, 200])
      assert.strictEqual(replies[0]!.cookies.length, 0)
      assert.strictEqual(replies[1]!.cookies.length, 0)
      assert.isUndefined(anonymous.cookie)
      assert.strictEqual(yield* admin(redis, (r) => r.dbsize()), before)
    }))

  it.effect("round-trip budget: read 1, write 1, read+write 2, invalidate 1, login 2 commands", () =>
    Effect.gen(function*() {
      const { client, redis } = yield* App
      // a first login and logout load their scripts into Redis, so the counts below are the steady state
      const warm = yield* storedSession(client)
      yield* warm.get("/login/warm")
      yield* warm.get("/logout")
      const browser = yield* storedSession(client)
      assert.deepStrictEqual(yield* commandsDuring(redis, browser.get("/read")), ["EVALSHA"])
      assert.deepStrictEqual(yield* commandsDuring(redis, browser.get("/set/color/blue")), ["EVALSHA"])
      assert.deepStrictEqual(yield* commandsDuring(redis, browser.get("/incr")), ["EVALSHA", "EVALSHA"])
      const login = yield* commandsDuring(redis, browser.get("/login/alice"))
      // the load, then one script that creates the new session and deletes the old one only if that worked
      assert.deepStrictEqual(login, ["EVALSHA", "EVALSHA"])
      assert.deepStrictEqual(yield* commandsDuring(redis, browser.get("/logout")), ["EVALSHA"])
      const anonymous = new TestBrowser(client)
      assert.deepStrictEqual(yield* commandsDuring(redis, anonymous.get("/set/a/b")), ["EVALSHA"])
    }))

  it.effect("stored data survives requests and the cookie is signed id.mac", () =>
    Effect.gen(function*() {
      const browser = new TestBrowser((yield* App).client)
      const first = yield* browser.get("/incr")
      assert.strictEqual(first.body, "1")
      assert.strictEqual(first.cookies.length, 1)
      const cookie = first.cookies[0]!
      assert.match(cookie.value, /^[0-9a-f]{64}\.[A-Za-z0-9_-]{43}$/)
      assert.strictEqual(cookie.attributes.get("path"), "/")
      assert.isTrue(cookie.attributes.has("httponly"))
      assert.strictEqual(cookie.attributes.get("samesite"), "Lax")
      assert.isFalse(cookie.attributes.has("max-age"))
      const second = yield* browser.get("/incr")
      assert.strictEqual(second.body, "2")
      assert.strictEqual(second.cookies.length, 0)
    }))

  it.effect("every key has a TTL and the raw session id never reaches Redis", () =>
    Effect.gen(function*() {
      const { client, redis } = yield* App
      const browser = yield* storedSession(client)
      yield* browser.get("/login/bob")
      const id = browser.cookie!.slice(0, 64)
      const keys = yield* admin(redis, (r) => r.keys("*"))
      assert.isAbove(keys.length, 0)
      for (const key of keys) {
        assert.isAbove(yield* admin(redis, (r) => r.pttl(key)), 0)
        assert.notInclude(key, id)
        const values = yield* admin(redis, (r) => r.hgetall(key))
        assert.notInclude(JSON.stringify(values), id)
      }
      assert.include(keys, keyOf(browser.cookie!))
    }))

  it.effect("200 concurrent requests writing their own keys on one session all persist", () =>
    Effect.gen(function*() {
      const browser = yield* storedSession((yield* App).client)
      const keys = Array.from({ length: 200 }, (_, i) => i)
      const replies = yield* Effect.forEach(keys, (i) => browser.get(`/set/k${i}/v${i}`), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(replies.filter((r) => r.status !== 200).map((r) => r.status), [])
      const data = yield* dump(browser)
      assert.deepStrictEqual(keys.filter((i) => data[`k${i}`] !== `v${i}`), [])
    }))

  it.effect("logout while a slow request is in flight: the session stays deleted", () =>
    Effect.gen(function*() {
      const { client, redis } = yield* App
      const browser = yield* storedSession(client)
      const key = keyOf(browser.cookie!)
      const tab = browser.tab()
      const writer = gate()
      const slow = yield* Effect.fork(tab.get(`/gated-write/late/${writer.name}`))
      yield* Effect.promise(() => writer.arrived()) // it has loaded the session
      yield* browser.get("/logout")
      writer.open()
      const reply = yield* slow
      assert.strictEqual(reply.status, 200)
      assert.strictEqual(yield* admin(redis, (r) => r.exists(key)), 0)
      assert.isFalse(reply.cookies.some((c) => c.value !== ""))
      assert.strictEqual((yield* tab.get("/read")).body, "0")
    }))

  it.effect("login regenerates the id: the old id is dead at once and the data moves", () =>
    Effect.gen(function*() {
      const { client, redis } = yield* App
      const browser = yield* storedSession(client)
      const oldCookie = browser.cookie!
      const reply = yield* browser.get("/login/carol")
      assert.strictEqual(reply.cookies.length, 1)
      assert.notStrictEqual(browser.cookie, oldCookie)
      assert.strictEqual(yield* admin(redis, (r) => r.exists(keyOf(oldCookie))), 0)
      assert.strictEqual((yield* browser.get("/whoami")).body, "carol")
      assert.strictEqual((yield* browser.get("/read")).body, "1")
      assert.strictEqual((yield* browserWith(client, oldCookie).get("/whoami")).body, "anonymous")
    }))

  it.effect("unreadable stored records are anonymous sessions, never a 500", () =>
    Effect.gen(function*() {
      const { client, redis } = yield* App
      const cases: Array<(r: Redis, key: string) => Promise<unknown>> = [
        (r, key) => r.hset(key, "c", "1", "t", "600", ".count", "{not json"),
        (r, key) => r.hset(key, "c", "1", "t", "600", ".count", "\"a string, not an Int\""),
        (r, key) => r.hset(key, "c", "yesterday", "t", "600", ".count", "1"),
        (r, key) => r.hset(key, ".count", "1"),
        (r, key) => r.set(key, "cos\nsystem\n(S'echo pwned'\ntR."),
        (r, key) => r.rpush(key, "a", "b")
      ]
      for (const write of cases) {
        const browser = yield* storedSession(client)
        const key = keyOf(browser.cookie!)
        yield* admin(redis, async (r) => {
          await r.del(key)
          await write(r, key)
          await r.pexpire(key, 60_000)
        })
        const reply = yield* browser.get("/read")
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.body, "0")
      }
    }))

  it.effect("changes to an existing session are committed even when the handler fails", () =>
    Effect.gen(function*() {
      const browser = yield* storedSession((yield* App).client)
      const reply = yield* browser.get("/write-then-fail")
      assert.strictEqual(reply.status, 500)
      assert.notInclude(reply.body, "handler failed")
      assert.strictEqual((yield* dump(browser)).attempted, true)
    }))

  it.effect("blind writes that only remove or touch a session that ended meanwhile create nothing", () =>
    Effect.gen(function*() {
      const { client, redis } = yield* App
      const browser = yield* storedSession(client)
      yield* admin(redis, (r) => r.del(keyOf(browser.cookie!)))
      const before = yield* admin(redis, (r) => r.dbsize())
      const reply = yield* browser.tab().get("/adjust/99")
      assert.strictEqual(reply.status, 200)
      assert.strictEqual(yield* admin(redis, (r) => r.dbsize()), before)
      assert.isTrue(reply.cookies.every((c) => c.value === ""))
      const writer = browser.tab()
      assert.strictEqual((yield* writer.get("/set/fresh/value")).cookies.length, 1)
      assert.notStrictEqual(writer.cookie, browser.cookie)
      assert.strictEqual(yield* admin(redis, (r) => r.dbsize()), before + 1)
    }))

  it.scoped("url wins over db, username and password", () =>
    Effect.gen(function*() {
      const { redis } = yield* App
      const client = yield* RedisClient.make({ url: Redacted.make(`${redis.url}/3`), db: 5 })
      yield* client.run("set", (c) => c.set("url-wins", "1"))
      assert.strictEqual(yield* admin(redis, (r) => r.exists("url-wins")), 0)
      const db3 = yield* RedisClient.make({ url: Redacted.make(`${redis.url}/3`) })
      assert.strictEqual(yield* db3.run("get", (c) => c.get("url-wins")), "1")
    }))

  it.effect("an oversized session is refused with 413 and the stored one is unchanged", () =>
    Effect.gen(function*() {
      const browser = yield* storedSession((yield* App).client)
      const reply = yield* browser.get("/big/70000")
      assert.strictEqual(reply.status, 413)
      assert.strictEqual((yield* browser.get("/read")).body, "1")
      assert.isUndefined((yield* dump(browser)).big)
    }))
})

class DownApp extends Context.Tag("test/DownApp")<DownApp, {
  readonly client: HttpClient.HttpClient
  readonly redis: RedisServer
}>() {}

const DownAppLive = Layer.scoped(
  DownApp,
  Effect.gen(function*() {
    const redis = yield* TestRedis
    const client = yield* serveClient(
      RedisSession.layer({ secret: SECRET, url: redis.url, commandTimeout: "500 millis" })
    )
    return { client, redis }
  })
).pipe(Layer.provide(TestRedis.layer))

layer(DownAppLive, { excludeTestServices: true, timeout: "60 seconds" })("HTTP with Redis down", (it) => {
  it.effect("session routes answer 503, other routes 200, a failed commit is never a success; then it recovers", () =>
    Effect.gen(function*() {
      const { client, redis } = yield* DownApp
      const browser = yield* storedSession(client)
      yield* Effect.promise(() => redis.kill())
      const [elapsed, [write, read, anonymousWrite, public_]] = yield* Effect.timed(Effect.all([
        browser.get("/set/a/b"),
        browser.get("/read"),
        new TestBrowser(client).get("/incr"),
        browser.get("/none")
      ]))
      assert.strictEqual(write.status, 503)
      assert.strictEqual(read.status, 503)
      assert.strictEqual(anonymousWrite.status, 503)
      assert.strictEqual(anonymousWrite.cookies.length, 0)
      assert.strictEqual(public_.status, 200)
      assert.notMatch(write.body + read.body, /ioredis|ECONNREFUSED|Redis/)
      yield* Effect.promise(() => redis.restart())
      // real time: the client reconnects on its own schedule
      const recovered = yield* new TestBrowser(client).get("/incr").pipe(
        Effect.filterOrFail((reply) => reply.status === 200),
        Effect.retry({ times: 50, schedule: Schedule.spaced("100 millis") }),
        Effect.as(true),
        Effect.orElseSucceed(() => false)
      )
      assert.isTrue(recovered)
      console.log(`redis down: 4 requests answered in ${Duration.toMillis(elapsed)} ms`)
    }))
})
