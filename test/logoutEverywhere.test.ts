import type { HttpClient } from "@effect/platform"
import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { indexKey } from "../src/internal/keys.js"
import * as RedisSession from "../src/RedisSession.js"
import type { IndexedSession } from "../src/SessionIndex.js"
import { type RedisServer, TestRedis, withAdmin as admin } from "./utils/RedisServer.js"
import { memorySessions, serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-logout-everywhere-test-secret-40-chars!"

class Apps extends Context.Tag("test/Apps")<Apps, {
  readonly redis: RedisServer
  /** No limit on sessions per principal. */
  readonly open: HttpClient.HttpClient
  /** At most two sessions per principal. */
  readonly capped: HttpClient.HttpClient
  /** In-memory store, no limit. */
  readonly memory: HttpClient.HttpClient
}>() {}

const AppsLive = Layer.scoped(
  Apps,
  Effect.gen(function*() {
    const redis = yield* TestRedis
    const open = yield* serveClient(RedisSession.layer({ secret: SECRET, url: redis.url, prefix: "open:" }))
    const capped = yield* serveClient(
      RedisSession.layer({ secret: SECRET, url: redis.url, prefix: "capped:", maxSessionsPerPrincipal: 2 })
    )
    const memory = yield* serveClient(memorySessions({ secret: SECRET }))
    return { redis, open, capped, memory }
  })
).pipe(Layer.provide(TestRedis.layer))

const body = (client: HttpClient.HttpClient, path: string) =>
  Effect.map(new TestBrowser(client).get(path), (reply) => reply.body)

const sessionsOf = (client: HttpClient.HttpClient, user: string) =>
  Effect.map(body(client, `/sessions/${user}`), (json) => JSON.parse(json) as Array<IndexedSession>)

const signIn = Effect.fnUntraced(function*(client: HttpClient.HttpClient, user: string) {
  const browser = new TestBrowser(client)
  yield* browser.get("/incr")
  assert.strictEqual((yield* browser.get(`/sign-in/${user}`)).status, 200)
  return browser
})

const whoami = (browser: TestBrowser) => Effect.map(browser.get("/whoami"), (reply) => reply.body)

layer(AppsLive, { excludeTestServices: true, timeout: "60 seconds" })("logout everywhere", (it) => {
  const both = (title: string, f: (client: HttpClient.HttpClient) => Effect.Effect<void, unknown>) => {
    it.effect(`${title} (Redis)`, () => Effect.flatMap(Apps, (apps) => f(apps.open)))
    it.effect(`${title} (memory)`, () => Effect.flatMap(Apps, (apps) => f(apps.memory)))
  }

  both("a principal's live sessions are listed with created and last-seen times", (app) =>
    Effect.gen(function*() {
      const before = Date.now()
      yield* signIn(app, "alice")
      yield* signIn(app, "alice")
      yield* signIn(app, "bob")
      const alice = yield* sessionsOf(app, "alice")
      assert.strictEqual(alice.length, 2)
      for (const s of alice) {
        assert.isAtLeast(s.created, before - 1_000)
        assert.isAtLeast(s.lastSeen, s.created)
        assert.match(s.handle, /[0-9a-f]{64}$/)
      }
      assert.strictEqual((yield* sessionsOf(app, "bob")).length, 1)
      assert.strictEqual((yield* sessionsOf(app, "nobody")).length, 0)
    }))

  both("a session that logged out or was replaced at login is never listed", (app) =>
    Effect.gen(function*() {
      const a = yield* signIn(app, "carol")
      const b = yield* signIn(app, "carol")
      yield* a.get("/logout")
      assert.strictEqual((yield* sessionsOf(app, "carol")).length, 1)
      yield* b.get("/sign-in/carol")
      assert.strictEqual((yield* sessionsOf(app, "carol")).length, 1)
    }))

  both(
    "revoking one session ends it; revoking all ends every session of the principal only",
    (app) =>
      Effect.gen(function*() {
        const phone = yield* signIn(app, "dave")
        const laptop = yield* signIn(app, "dave")
        const other = yield* signIn(app, "erin")
        const [first] = yield* sessionsOf(app, "dave")
        assert.strictEqual(yield* body(app, `/revoke/erin/${first!.handle}`), "false")
        assert.strictEqual(yield* body(app, `/revoke/dave/${first!.handle}`), "true")
        assert.strictEqual((yield* sessionsOf(app, "dave")).length, 1)
        const tablet = yield* signIn(app, "dave")
        assert.strictEqual(yield* body(app, "/revoke-all/dave"), "2")
        for (const browser of [phone, laptop, tablet]) {
          assert.strictEqual(yield* whoami(browser), "anonymous")
        }
        assert.strictEqual(yield* whoami(other), "erin")
        assert.strictEqual((yield* sessionsOf(app, "dave")).length, 0)
      })
  )

  it.effect("with a limit per principal, the oldest sessions are revoked", () =>
    Effect.gen(function*() {
      const { capped } = yield* Apps
      const first = yield* signIn(capped, "frank")
      const second = yield* signIn(capped, "frank")
      const third = yield* signIn(capped, "frank")
      assert.strictEqual((yield* sessionsOf(capped, "frank")).length, 2)
      assert.strictEqual(yield* whoami(first), "anonymous")
      assert.strictEqual(yield* whoami(second), "frank")
      assert.strictEqual(yield* whoami(third), "frank")
    }))

  it.effect("the limit never revokes the session that is signing in, however old it is", () =>
    Effect.gen(function*() {
      const { capped } = yield* Apps
      const older = new TestBrowser(capped)
      yield* older.get("/incr")
      const first = yield* signIn(capped, "heidi")
      const second = yield* signIn(capped, "heidi")
      assert.strictEqual((yield* older.get("/sign-in/heidi")).status, 200)
      assert.strictEqual(yield* whoami(older), "heidi")
      assert.strictEqual((yield* sessionsOf(capped, "heidi")).length, 2)
      assert.strictEqual(yield* whoami(first), "anonymous")
      assert.strictEqual(yield* whoami(second), "heidi")
    }))

  it.effect("a new sign-in and a logout drop the ended session from the index at once", () =>
    Effect.gen(function*() {
      const { open, redis } = yield* Apps
      const index = indexKey("open:", "ivan")
      const a = yield* signIn(open, "ivan")
      const b = yield* signIn(open, "ivan")
      assert.strictEqual(yield* admin(redis, (r) => r.hlen(index)), 2)
      yield* a.get("/logout")
      assert.strictEqual(yield* admin(redis, (r) => r.hlen(index)), 1)
      assert.strictEqual((yield* sessionsOf(open, "ivan")).length, 1)
      yield* b.get("/sign-in/ivan")
      assert.strictEqual(yield* admin(redis, (r) => r.hlen(index)), 1)
    }))

  it.effect("an index written by 0.1 (members named by the whole key) still lists and revokes its sessions", () =>
    Effect.gen(function*() {
      const { open, redis } = yield* Apps
      const browser = yield* signIn(open, "judy")
      const index = indexKey("open:", "judy")
      const [handle] = yield* admin(redis, (r) => r.hkeys(index))
      // rewrite the entry as 0.1 did: prefix + digest
      yield* admin(redis, async (r) => {
        const created = await r.hget(index, handle!)
        await r.hdel(index, handle!)
        await r.hset(index, `open:${handle}`, created!)
      })
      const listed = yield* sessionsOf(open, "judy")
      assert.deepStrictEqual(listed.map((s) => s.handle), [handle])
      assert.deepStrictEqual(yield* admin(redis, (r) => r.hkeys(index)), [handle])
      assert.strictEqual(yield* body(open, `/revoke/judy/${handle}`), "true")
      assert.strictEqual(yield* whoami(browser), "anonymous")
    }))

  it.effect("index keys carry a TTL and a Cluster hash tag; bound sessions cost no extra command", () =>
    Effect.gen(function*() {
      const { open, redis } = yield* Apps
      const browser = yield* signIn(open, "grace")
      const index = indexKey("open:", "grace")
      assert.match(index, /^open:principal:\{[0-9a-f]{64}\}$/)
      assert.isAbove(yield* admin(redis, (r) => r.pttl(index)), 0)
      assert.strictEqual(yield* admin(redis, (r) => r.hlen(index)), 1)
      yield* browser.get("/set/warm/up")
      const recorder = yield* Effect.promise(() => redis.recordCommands())
      yield* browser.get("/read")
      yield* browser.get("/set/x/y")
      yield* Effect.promise(() => recorder.settle())
      assert.deepStrictEqual(recorder.commands().map((c) => c.name), ["EVALSHA", "EVALSHA"])
      yield* Effect.promise(() => recorder.close())
    }))
})
