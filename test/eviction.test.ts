import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { sessionKey } from "../src/internal/keys.js"
import * as RedisSession from "../src/RedisSession.js"
import { startRedisServer, withAdmin } from "./utils/RedisServer.js"
import { serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-secret-of-at-least-32-characters-for-eviction"
const FILLER = "x".repeat(10 * 1024)

describe.each(["allkeys-lru", "volatile-lru"])("eviction (%s)", (policy) => {
  it.scoped("an evicted session reads as absent: the visitor is anonymous, never a 5xx", () =>
    Effect.gen(function*() {
      const redis = yield* Effect.acquireRelease(
        Effect.promise(() => startRedisServer({ args: ["--maxmemory-policy", policy] })),
        (server) => Effect.promise(() => server.stop())
      )
      const browser = new TestBrowser(yield* serveClient(RedisSession.layer({ secret: SECRET, url: redis.url })))
      assert.strictEqual((yield* browser.get("/sign-in/alice")).body, "welcome")
      assert.strictEqual((yield* browser.get("/whoami")).body, "alice")
      const key = sessionKey("", browser.cookie!.slice(0, browser.cookie!.lastIndexOf(".")))

      const evicted = yield* withAdmin(redis, async (admin) => {
        const used = Number(/used_memory:(\d+)/.exec(await admin.info("memory"))![1])
        await admin.config("SET", "maxmemory", String(used + 256 * 1024))
        // fillers with a TTL, so that volatile-lru may evict them as well as the session
        for (let i = 0; i < 2_000; i++) {
          await admin.set(`filler:${i}`, FILLER, "EX", 3_600)
          if ((await admin.exists(key)) === 0) return true
        }
        return false
      })
      assert.isTrue(evicted, "Redis evicted the session under memory pressure")
      const after = yield* browser.get("/whoami")
      assert.strictEqual(after.status, 200)
      assert.strictEqual(after.body, "anonymous")
      assert.strictEqual((yield* browser.get("/incr")).body, "1")
    }), { timeout: 60_000 })
})
