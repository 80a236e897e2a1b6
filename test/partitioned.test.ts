import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as SessionConfig from "../src/SessionConfig.js"
import { memorySessions, serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-secret-of-at-least-32-characters-partitioned"
const base = { "redis.sessions.secret": SECRET }

describe("cookie_partitioned and the cookie size limit", () => {
  it.scoped("a partitioned cookie says Partitioned when set and when deleted; others do not", () =>
    Effect.gen(function*() {
      const partitioned = new TestBrowser(
        yield* serveClient(memorySessions({ secret: SECRET, cookieSecure: true, cookiePartitioned: true }))
      )
      const [set] = (yield* partitioned.get("/incr")).cookies
      assert.isTrue(set!.attributes.has("partitioned"))
      assert.isTrue(set!.attributes.has("secure"))
      const [deleted] = (yield* partitioned.get("/logout")).cookies
      assert.isTrue(deleted!.attributes.has("partitioned"))
      const plain = new TestBrowser(yield* serveClient(memorySessions({ secret: SECRET })))
      const [unpartitioned] = (yield* plain.get("/incr")).cookies
      assert.isFalse(unpartitioned!.attributes.has("partitioned"))
    }))

  it.effect("Partitioned without Secure, and a cookie name too long for a signed id, are refused at start", () =>
    Effect.gen(function*() {
      const insecure = yield* Effect.flip(
        SessionConfig.fromSettings({ ...base, "redis.sessions.cookie_partitioned": "true" })
      )
      assert.include(insecure.message, "redis.sessions.cookie_partitioned")
      const fits = yield* SessionConfig.fromSettings({ ...base, "redis.sessions.cookie_name": "s".repeat(4096 - 173) })
      assert.lengthOf(fits.session.cookieName, 4096 - 173)
      const tooLong = yield* Effect.flip(
        SessionConfig.fromSettings({ ...base, "redis.sessions.cookie_name": "s".repeat(4096 - 172) })
      )
      assert.include(tooLong.message, "redis.sessions.cookie_name")
      assert.include(tooLong.message, "4096")
    }))
})
