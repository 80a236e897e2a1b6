import type { HttpClient } from "@effect/platform"
import { assert, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import { indexKey } from "../src/internal/keys.js"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisSession from "../src/RedisSession.js"
import * as RedisSessionStore from "../src/RedisSessionStore.js"
import * as SessionId from "../src/SessionId.js"
import * as SessionIndex from "../src/SessionIndex.js"
import { type RedisServer, TestRedis, withAdmin as admin } from "./utils/RedisServer.js"
import { memorySessions, serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-logout-everywhere-test-secret-40-chars!"

class Apps extends Context.Tag("test/Apps")<Apps, {
  readonly redis: RedisServer
  /** No limit on sessions per principal; records clients. */
  readonly open: HttpClient.HttpClient
  /** At most two sessions per principal; does not record clients. */
  readonly capped: HttpClient.HttpClient
  /** In-memory store, no limit; records clients. */
  readonly memory: HttpClient.HttpClient
}>() {}

const AppsLive = Layer.scoped(
  Apps,
  Effect.gen(function*() {
    const redis = yield* TestRedis
    const open = yield* serveClient(
      RedisSession.layer({ secret: SECRET, url: redis.url, prefix: "open:", recordClient: true })
    )
    const capped = yield* serveClient(
      RedisSession.layer({ secret: SECRET, url: redis.url, prefix: "capped:", maxSessionsPerPrincipal: 2 })
    )
    const memory = yield* serveClient(memorySessions({ secret: SECRET, recordClient: true }))
    return { redis, open, capped, memory }
  })
).pipe(Layer.provide(TestRedis.layer))

const body = (client: HttpClient.HttpClient, path: string) =>
  Effect.map(new TestBrowser(client).get(path), (reply) => reply.body)

/** `SessionIndex.ListedSession` as the test app's `/sessions/:user` writes it (options as `null` or a value). */
interface Listed {
  readonly handle: string
  readonly created: number
  readonly lastSeen: number
  readonly userAgent: string | null
  readonly network: string | null
  readonly current: boolean
}

const sessionsOf = (client: HttpClient.HttpClient, user: string, browser = new TestBrowser(client)) =>
  Effect.map(browser.get(`/sessions/${user}`), (reply) => JSON.parse(reply.body) as Array<Listed>)

const signIn = Effect.fnUntraced(function*(client: HttpClient.HttpClient, user: string, userAgent?: string) {
  const browser = new TestBrowser(client)
  const headers: Record<string, string> = userAgent === undefined ? {} : { "user-agent": userAgent }
  yield* browser.get("/incr", headers)
  assert.strictEqual((yield* browser.get(`/sign-in/${user}`, headers)).status, 200)
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
        assert.match(s.handle, /^[0-9a-f]{32}$/)
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

  both(
    "your devices: each session's user agent and network, and which one is this request's",
    (app) =>
      Effect.gen(function*() {
        const phone = yield* signIn(app, "kim", "Phone/1.0")
        yield* signIn(app, "kim", "Laptop/2.0")
        const listed = yield* sessionsOf(app, "kim", phone)
        assert.deepStrictEqual(listed.map((s) => [s.userAgent, s.current]), [["Phone/1.0", true], [
          "Laptop/2.0",
          false
        ]])
        for (const s of listed) assert.match(s.network ?? "", /^(127\.0\.0\.0\/24|0:0:0::\/48)$/)
        const fromElsewhere = yield* sessionsOf(app, "kim")
        assert.deepStrictEqual(fromElsewhere.map((s) => s.current), [false, false])
      })
  )

  both(
    "a handle is neither the session id nor its key, and revoking by it ends only that session",
    (app) =>
      Effect.gen(function*() {
        const phone = yield* signIn(app, "lea")
        const laptop = yield* signIn(app, "lea")
        const id = (yield* phone.get("/id")).body
        const [mine, other] = yield* sessionsOf(app, "lea", phone)
        const digest = createHash("sha256").update(id).digest("hex")
        for (const s of [mine!, other!]) {
          assert.notInclude([id, digest, `open:${digest}`], s.handle)
          assert.notInclude(s.handle, digest.slice(0, 16))
        }
        const holder = new TestBrowser(app)
        holder.cookie = SessionId.sign(other!.handle, Redacted.make(SECRET))
        assert.strictEqual(yield* whoami(holder), "anonymous", "a validly signed cookie of a handle loads nothing")
        assert.strictEqual((yield* phone.get(`/revoke/lea/${other!.handle}`)).body, "true")
        assert.deepStrictEqual([yield* whoami(phone), yield* whoami(laptop)], ["lea", "anonymous"])
      })
  )

  both(
    "revoke refuses forged, foreign, stale and the current session's handles, and ends nothing",
    (app) =>
      Effect.gen(function*() {
        const phone = yield* signIn(app, "max")
        const laptop = yield* signIn(app, "max")
        const stranger = yield* signIn(app, "nia")
        const [own, other] = yield* sessionsOf(app, "max", phone)
        const [foreign] = yield* sessionsOf(app, "nia")
        const forged = ["0".repeat(32), "x".repeat(90), other!.handle.toUpperCase(), "%00", "../max"]
        for (const handle of [...forged, foreign!.handle, own!.handle]) {
          const reply = yield* phone.get(`/revoke/max/${encodeURIComponent(handle)}`)
          assert.deepStrictEqual([reply.status, reply.body], [200, "false"], handle.slice(0, 40))
        }
        yield* laptop.get("/logout")
        assert.strictEqual((yield* phone.get(`/revoke/max/${other!.handle}`)).body, "false", "stale")
        assert.deepStrictEqual([yield* whoami(phone), yield* whoami(stranger)], ["max", "nia"])
        assert.strictEqual((yield* sessionsOf(app, "max")).length, 1)
      })
  )

  both(
    "sign out other devices: every other session of the principal ends, this one stays",
    (app) =>
      Effect.gen(function*() {
        const devices = [yield* signIn(app, "oli"), yield* signIn(app, "oli"), yield* signIn(app, "oli")]
        const stranger = yield* signIn(app, "pam")
        assert.strictEqual((yield* devices[1]!.get("/revoke-others/oli")).body, "2")
        const who = yield* Effect.forEach(devices, whoami)
        assert.deepStrictEqual(who, ["anonymous", "oli", "anonymous"])
        assert.strictEqual(yield* whoami(stranger), "pam")
        assert.deepStrictEqual((yield* sessionsOf(app, "oli", devices[1])).map((s) => s.current), [true])
      })
  )

  it.effect("without record_client nothing of the client is stored", () =>
    Effect.gen(function*() {
      const { capped } = yield* Apps
      yield* signIn(capped, "quinn", "Phone/1.0")
      const [listed] = yield* sessionsOf(capped, "quinn")
      assert.deepStrictEqual([listed!.userAgent, listed!.network], [null, null])
    }))

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
      assert.strictEqual(listed.length, 1)
      assert.deepStrictEqual(yield* admin(redis, (r) => r.hkeys(index)), [handle])
      assert.strictEqual(yield* body(open, `/revoke/judy/${listed[0]!.handle}`), "true")
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

  it.effect("an index lost to eviction hides its sessions from revokeAll until rebuildIndexes puts them back", () =>
    Effect.gen(function*() {
      const { open, redis } = yield* Apps
      const browsers = [yield* signIn(open, "rita"), yield* signIn(open, "rita"), yield* signIn(open, "rita")]
      yield* admin(redis, (r) => r.del(indexKey("open:", "rita")))
      assert.deepStrictEqual(yield* sessionsOf(open, "rita"), [])
      assert.strictEqual(yield* body(open, "/revoke-all/rita"), "0")
      assert.deepStrictEqual(yield* Effect.forEach(browsers, whoami), ["rita", "rita", "rita"], "the leak")
      const store = RedisSessionStore.layer({ prefix: "open:" }).pipe(
        Layer.provide(RedisClient.layer({ url: Redacted.make(redis.url) }))
      )
      const rebuilt = yield* Effect.flatMap(SessionIndex.make, (index) => Stream.runCollect(index.rebuildIndexes(20)))
        .pipe(
          Effect.map(Chunk.toReadonlyArray),
          Effect.provide(store)
        )
      assert.isAtLeast(rebuilt.at(-1)!.bound, 3)
      assert.strictEqual((yield* sessionsOf(open, "rita")).length, 3)
      assert.isAbove(yield* admin(redis, (r) => r.pttl(indexKey("open:", "rita"))), 0, "the rebuilt index has a TTL")
      assert.strictEqual(yield* body(open, "/revoke-all/rita"), "3")
      assert.deepStrictEqual(yield* Effect.forEach(browsers, whoami), ["anonymous", "anonymous", "anonymous"])
    }))

  // last: it ends every session of the "open:" store
  it.effect("revokeEveryone ends every session and index in batches while sign-ins go on; other keys stay", () =>
    Effect.gen(function*() {
      const { open, redis } = yield* Apps
      const browsers = yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => `u${i % 3}`),
        (user) => signIn(open, user)
      )
      const unrelated = ["open:notasession", `open:${"A".repeat(64)}`, `other:${"a".repeat(64)}`]
      yield* admin(redis, async (r) => {
        for (const key of unrelated) await r.hset(key, "c", "1")
        await r.set(`open:${"b".repeat(64)}`, "a string, not a session")
      })
      const store = RedisSessionStore.layer({ prefix: "open:" }).pipe(
        Layer.provide(RedisClient.layer({ url: Redacted.make(redis.url) }))
      )
      const revokeEveryone = Effect.flatMap(SessionIndex.make, (index) => Stream.runCollect(index.revokeEveryone(10)))
        .pipe(Effect.map(Chunk.toReadonlyArray), Effect.provide(store))
      const traffic = yield* Effect.fork(Effect.forever(signIn(open, "newcomer")))
      const during = yield* revokeEveryone
      yield* Fiber.interrupt(traffic)
      assert.isAtLeast(during.length, 2, "more than one batch")
      assert.isAtLeast(during.at(-1)!.sessions, browsers.length)
      for (const browser of browsers) assert.strictEqual(yield* whoami(browser), "anonymous")
      yield* revokeEveryone
      const after = yield* revokeEveryone
      assert.deepStrictEqual([after.at(-1)!.sessions, after.at(-1)!.indexes], [0, 0], "a rerun finds nothing left")
      for (const key of [...unrelated, `open:${"b".repeat(64)}`]) {
        assert.strictEqual(yield* admin(redis, (r) => r.exists(key)), 1, key)
      }
    }))
})
