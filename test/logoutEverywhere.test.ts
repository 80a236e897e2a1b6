import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { indexKey } from "../src/internal/keys.js"
import * as RedisSession from "../src/RedisSession.js"
import type { IndexedSession } from "../src/SessionIndex.js"
import { Browser } from "./utils/Browser.js"
import { type RedisServer, TestRedis } from "./utils/RedisServer.js"
import { memorySessions, serve } from "./utils/testApp.js"

const SECRET = "a-logout-everywhere-test-secret-40-chars!"

class Apps extends Context.Tag("test/Apps")<Apps, {
  readonly redis: RedisServer
  /** No limit on sessions per principal. */
  readonly open: string
  /** At most two sessions per principal. */
  readonly capped: string
  /** In-memory store, no limit. */
  readonly memory: string
}>() {}

const AppsLive = Layer.scoped(
  Apps,
  Effect.gen(function*() {
    const redis = yield* TestRedis
    const open = yield* serve(RedisSession.layer({ secret: SECRET, url: redis.url, prefix: "open:" }))
    const capped = yield* serve(
      RedisSession.layer({ secret: SECRET, url: redis.url, prefix: "capped:", maxSessionsPerPrincipal: 2 })
    )
    const memory = yield* serve(memorySessions({ secret: SECRET }))
    return { redis, open, capped, memory }
  })
).pipe(Layer.provide(TestRedis.layer))

const sessionsOf = async (url: string, user: string) =>
  JSON.parse((await new Browser(url).get(`/sessions/${user}`)).body) as Array<IndexedSession>

const signIn = async (url: string, user: string) => {
  const browser = new Browser(url)
  await browser.get("/incr")
  assert.strictEqual((await browser.get(`/sign-in/${user}`)).status, 200)
  return browser
}

layer(AppsLive, { excludeTestServices: true, timeout: "60 seconds" })("logout everywhere", (it) => {
  const both = (title: string, f: (url: string, redis: RedisServer | undefined) => Promise<void>) => {
    it.effect(`${title} (Redis)`, () => Effect.flatMap(Apps, (apps) => Effect.promise(() => f(apps.open, apps.redis))))
    it.effect(`${title} (memory)`, () =>
      Effect.flatMap(Apps, (apps) => Effect.promise(() => f(apps.memory, undefined))))
  }

  both("a principal's live sessions are listed with created and last-seen times", async (url) => {
    const before = Date.now()
    await signIn(url, "alice")
    await signIn(url, "alice")
    await signIn(url, "bob")
    const alice = await sessionsOf(url, "alice")
    assert.strictEqual(alice.length, 2)
    for (const s of alice) {
      assert.isAtLeast(s.created, before - 1_000)
      assert.isAtLeast(s.lastSeen, s.created)
      assert.match(s.handle, /[0-9a-f]{64}$/)
    }
    assert.strictEqual((await sessionsOf(url, "bob")).length, 1)
    assert.strictEqual((await sessionsOf(url, "nobody")).length, 0)
  })

  both("a session that logged out or was replaced at login is never listed", async (url) => {
    const a = await signIn(url, "carol")
    const b = await signIn(url, "carol")
    await a.get("/logout")
    const listed = await sessionsOf(url, "carol")
    assert.strictEqual(listed.length, 1)
    await b.get("/sign-in/carol")
    assert.strictEqual((await sessionsOf(url, "carol")).length, 1)
  })

  both("revoking one session ends it; revoking all ends every session of the principal only", async (url) => {
    const phone = await signIn(url, "dave")
    const laptop = await signIn(url, "dave")
    const other = await signIn(url, "erin")
    const [first] = await sessionsOf(url, "dave")
    assert.strictEqual((await new Browser(url).get(`/revoke/erin/${first!.handle}`)).body, "false")
    assert.strictEqual((await new Browser(url).get(`/revoke/dave/${first!.handle}`)).body, "true")
    assert.strictEqual((await sessionsOf(url, "dave")).length, 1)
    const tablet = await signIn(url, "dave")
    assert.strictEqual((await new Browser(url).get("/revoke-all/dave")).body, "2")
    for (const browser of [phone, laptop, tablet]) {
      assert.strictEqual((await browser.get("/whoami")).body, "anonymous")
    }
    assert.strictEqual((await other.get("/whoami")).body, "erin")
    assert.strictEqual((await sessionsOf(url, "dave")).length, 0)
  })

  it.effect("with a limit per principal, the oldest sessions are revoked", () =>
    Effect.flatMap(Apps, ({ capped }) =>
      Effect.promise(async () => {
        const first = await signIn(capped, "frank")
        const second = await signIn(capped, "frank")
        const third = await signIn(capped, "frank")
        assert.strictEqual((await sessionsOf(capped, "frank")).length, 2)
        assert.strictEqual((await first.get("/whoami")).body, "anonymous")
        assert.strictEqual((await second.get("/whoami")).body, "frank")
        assert.strictEqual((await third.get("/whoami")).body, "frank")
      })))

  it.effect("the limit never revokes the session that is signing in, however old it is", () =>
    Effect.flatMap(Apps, ({ capped }) =>
      Effect.promise(async () => {
        const older = new Browser(capped)
        await older.get("/incr")
        const first = await signIn(capped, "heidi")
        const second = await signIn(capped, "heidi")
        assert.strictEqual((await older.get("/sign-in/heidi")).status, 200)
        assert.strictEqual((await older.get("/whoami")).body, "heidi")
        assert.strictEqual((await sessionsOf(capped, "heidi")).length, 2)
        assert.strictEqual((await first.get("/whoami")).body, "anonymous")
        assert.strictEqual((await second.get("/whoami")).body, "heidi")
      })))

  it.effect("a new sign-in and a logout drop the ended session from the index at once", () =>
    Effect.flatMap(Apps, ({ open, redis }) =>
      Effect.promise(async () => {
        const index = indexKey("open:", "ivan")
        const a = await signIn(open, "ivan")
        const b = await signIn(open, "ivan")
        assert.strictEqual(await redis.admin().hlen(index), 2)
        await a.get("/logout")
        assert.strictEqual(await redis.admin().hlen(index), 1)
        assert.strictEqual((await sessionsOf(open, "ivan")).length, 1)
        await b.get("/sign-in/ivan")
        assert.strictEqual(await redis.admin().hlen(index), 1)
      })))

  it.effect("an index written by 0.1 (members named by the whole key) still lists and revokes its sessions", () =>
    Effect.flatMap(Apps, ({ open, redis }) =>
      Effect.promise(async () => {
        const browser = await signIn(open, "judy")
        const index = indexKey("open:", "judy")
        const admin = redis.admin()
        const [handle] = await admin.hkeys(index)
        // rewrite the entry as 0.1 did: prefix + digest
        const created = await admin.hget(index, handle!)
        await admin.hdel(index, handle!)
        await admin.hset(index, `open:${handle}`, created!)
        const listed = await sessionsOf(open, "judy")
        assert.deepStrictEqual(listed.map((s) => s.handle), [handle])
        assert.deepStrictEqual(await admin.hkeys(index), [handle])
        assert.strictEqual((await new Browser(open).get(`/revoke/judy/${handle}`)).body, "true")
        assert.strictEqual((await browser.get("/whoami")).body, "anonymous")
      })))

  it.effect("index keys carry a TTL and a Cluster hash tag; bound sessions cost no extra command", () =>
    Effect.flatMap(Apps, ({ open, redis }) =>
      Effect.promise(async () => {
        const browser = await signIn(open, "grace")
        const admin = redis.admin()
        const index = indexKey("open:", "grace")
        assert.match(index, /^open:principal:\{[0-9a-f]{64}\}$/)
        assert.isAbove(await admin.pttl(index), 0)
        assert.strictEqual(await admin.hlen(index), 1)
        await browser.get("/set/warm/up")
        const recorder = await redis.recordCommands()
        await browser.get("/read")
        await browser.get("/set/x/y")
        await recorder.settle()
        assert.deepStrictEqual(recorder.commands().map((c) => c.name), ["EVALSHA", "EVALSHA"])
        await recorder.close()
      })))
})
