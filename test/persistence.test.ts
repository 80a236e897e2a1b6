import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schedule from "effect/Schedule"
import { sessionKey } from "../src/internal/keys.js"
import * as RedisSession from "../src/RedisSession.js"
import { startRedisServer, withAdmin } from "./utils/RedisServer.js"
import { serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-secret-of-at-least-32-characters-persistence"

describe("persistence (appendonly yes)", () => {
  it.scoped(
    "a session survives a Redis restart, logged in, with its data and the TTL it had",
    () =>
      Effect.gen(function*() {
        const redis = yield* Effect.acquireRelease(
          Effect.promise(() => startRedisServer({ args: ["--appendonly", "yes", "--appendfsync", "always"] })),
          (server) => Effect.promise(() => server.stop())
        )
        const browser = new TestBrowser(
          yield* serveClient(
            RedisSession.layer({
              secret: SECRET,
              url: redis.url,
              commandTimeout: "1 second",
              connectTimeout: "2 seconds"
            })
          )
        )
        assert.strictEqual((yield* browser.get("/sign-in/alice")).body, "welcome")
        assert.strictEqual((yield* browser.get("/incr")).body, "1")
        const key = sessionKey("", browser.cookie!.slice(0, browser.cookie!.lastIndexOf(".")))
        const ttlBefore = yield* withAdmin(redis, (admin) => admin.pttl(key))
        assert.isAbove(ttlBefore, 0)

        yield* Effect.promise(() => redis.restart())
        // the admin connection and the application's client reconnect on their own; a request may meet the gap
        const ttlAfter = yield* withAdmin(redis, (admin) => admin.pttl(key)).pipe(
          Effect.timeout("2 seconds"),
          Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("10 seconds")))
        )
        assert.isAbove(ttlAfter, 0, "the session key came back with a TTL")
        assert.isAtMost(ttlAfter, ttlBefore, "the TTL was kept, not reset")
        const whoami = yield* browser.get("/whoami").pipe(
          Effect.filterOrFail((reply) => reply.status === 200),
          Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("10 seconds")))
        )
        assert.strictEqual(whoami.body, "alice")
        assert.strictEqual((yield* browser.get("/read")).body, "1")
        assert.strictEqual((yield* browser.get("/sessions/alice")).status, 200)
      }).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.None))),
    { timeout: 60_000 }
  )
})
