/**
 * The request path of a session, end to end over HTTP: one shared lazy load per request, ended sessions
 * that stay ended, regenerate + bind moving the session between principals' indexes, and a login that
 * keeps the old session when the new one cannot be stored. Every test runs on real Redis and, where the
 * behaviour does not depend on Redis itself, on the in-memory store too.
 *
 * Both backends sit behind a pass-through store that records which store operations a request used (and
 * what the principal indexes held when read). The memory store's load is given a few milliseconds of
 * latency, as any real store has; without it every memory load completes in one fiber step and races
 * between fibers of one handler could not happen.
 */
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as HttpSession from "../src/HttpSession.js"
import { indexKey, sessionKey } from "../src/internal/keys.js"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisSessionStore from "../src/RedisSessionStore.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as SessionIndex from "../src/SessionIndex.js"
import * as SessionStore from "../src/SessionStore.js"
import { Browser, type Reply } from "./utils/Browser.js"
import { commandsDuring, type RedisServer, TestRedis } from "./utils/RedisServer.js"
import { serve } from "./utils/testApp.js"

const SECRET = "a-request-path-test-secret-of-40-chars!!"
const PREFIX = "rp:"
/** Small enough that a test can exceed it cheaply. */
const MAX_SIZE = 8_000
const OPTIONS = { secret: SECRET, prefix: PREFIX, timeout: "10 minutes", maxSize: MAX_SIZE } as const

// -----------------------------------------------------------------------------------------------------
// Redis key names (the only place that knows them; update here if the naming changes)

/** The Redis key of the session a cookie value (`id.mac`) names. */
const storageKeyOf = (cookie: string) => sessionKey(PREFIX, cookie.slice(0, cookie.lastIndexOf(".")))
/** The Redis key of a principal's index. */
const indexKeyOf = (principal: string) => indexKey(PREFIX, principal)

// -----------------------------------------------------------------------------------------------------
// routes

const text = (body: unknown) => HttpServerResponse.text(typeof body === "string" ? body : JSON.stringify(body))
const param = (name: string) => Effect.map(HttpLayerRouter.params, (p) => p[name] ?? "")

const Routes = HttpLayerRouter.addAll([
  HttpLayerRouter.route(
    "GET",
    "/set/:key/:value",
    Effect.gen(function*() {
      yield* Session.set(yield* param("key"), yield* param("value"))
      return text("ok")
    })
  ),
  HttpLayerRouter.route("GET", "/dump", Effect.map(Session.entries, (e) => text(Object.fromEntries(e)))),
  HttpLayerRouter.route("GET", "/logout", Effect.as(Session.invalidate, text("bye"))),
  HttpLayerRouter.route(
    "GET",
    "/parallel-reads",
    Effect.map(
      Effect.all([Session.get("a"), Session.get("b"), Session.has("c")], { concurrency: "unbounded" }),
      ([a, b, c]) => text({ a: Option.getOrNull(a), b: Option.getOrNull(b), c })
    )
  ),
  HttpLayerRouter.route(
    "GET",
    "/regenerate-while-reading",
    Effect.gen(function*() {
      yield* Effect.all([Session.regenerate, Session.get("a")], { concurrency: "unbounded" })
      yield* Session.set("x", 1)
      return text("ok")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/remove-then-get/:key",
    Effect.gen(function*() {
      const key = yield* param("key")
      yield* Session.remove(key)
      return text(Option.isSome(yield* Session.get(key)) ? "present" : "absent")
    })
  ),
  HttpLayerRouter.route("GET", "/clear-then-keys", Effect.zipRight(Session.clear, Effect.map(Session.keys, text))),
  HttpLayerRouter.route(
    "GET",
    "/bind/:user",
    Effect.gen(function*() {
      const user = yield* param("user")
      yield* Session.bind(user)
      yield* Session.set("user", user)
      return text("welcome")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/regenerate-bind/:user",
    Effect.gen(function*() {
      yield* Session.regenerate
      yield* Session.bind(yield* param("user"))
      return text("welcome")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/sessions/:user",
    Effect.flatMap(
      Effect.zip(SessionIndex.SessionIndex, param("user")),
      ([index, user]) => Effect.map(index.list(user), text)
    )
  ),
  HttpLayerRouter.route(
    "GET",
    "/revoke/:user/:handle",
    Effect.gen(function*() {
      const index = yield* SessionIndex.SessionIndex
      return text(String(yield* index.revoke(yield* param("user"), yield* param("handle"))))
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/regenerate-big/:size",
    Effect.gen(function*() {
      yield* Session.regenerate
      yield* Session.set("big", "x".repeat(Number(yield* param("size"))))
      return text("ok")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/regenerate-set",
    Effect.gen(function*() {
      yield* Session.regenerate
      yield* Session.set("after", "login")
      return text("ok")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/fork-set/:key/:value",
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(Session.set(yield* param("key"), yield* param("value")))
      yield* Fiber.join(fiber)
      return text("ok")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/fork-daemon-set/:key/:value",
    Effect.gen(function*() {
      const fiber = yield* Effect.forkDaemon(Session.set(yield* param("key"), yield* param("value")))
      yield* Fiber.join(fiber)
      return text("ok")
    })
  )
])

// -----------------------------------------------------------------------------------------------------
// a store that records what a request did with it

interface StoreLog {
  /** Names of the store operations called, in call order. */
  calls: Array<string>
  /** The members every `indexed` call returned. */
  indexed: Array<ReadonlyArray<string>>
}

const recordingStore = (
  store: SessionStore.SessionStore["Type"],
  log: StoreLog,
  loadLatencyMillis: number
): SessionStore.SessionStore["Type"] => {
  const wrapped: Record<string, unknown> = {}
  for (const [name, operation] of Object.entries(store)) {
    wrapped[name] = typeof operation !== "function" ? operation : (...args: Array<unknown>) =>
      Effect.suspend(() => {
        log.calls.push(name)
        const run = (operation as (...args: Array<unknown>) => Effect.Effect<unknown, unknown>)(...args)
        if (name === "load" && loadLatencyMillis > 0) return Effect.zipRight(Effect.sleep(loadLatencyMillis), run)
        if (name === "indexed") {
          return Effect.tap(
            run,
            (members) => void log.indexed.push(Array.from((members as Map<string, number>).keys()))
          )
        }
        return run
      })
  }
  return wrapped as SessionStore.SessionStore["Type"]
}

const recorded = <E>(
  services: Layer.Layer<SessionConfig.SessionConfig | SessionStore.SessionStore, E>,
  log: StoreLog,
  loadLatencyMillis: number
) =>
  HttpSession.layerRouter.pipe(
    Layer.provide(
      Layer.merge(
        Layer.effect(
          SessionStore.SessionStore,
          Effect.map(SessionStore.SessionStore, (store) => recordingStore(store, log, loadLatencyMillis))
        ),
        Layer.effect(SessionConfig.SessionConfig, SessionConfig.SessionConfig)
      ).pipe(Layer.provide(services))
    )
  )

// -----------------------------------------------------------------------------------------------------
// the two backends

interface Backend {
  readonly name: "Redis" | "memory"
  readonly url: string
  readonly log: StoreLog
  /** The server, for the Redis backend. */
  readonly redis: RedisServer | undefined
}

class Backends extends Context.Tag("test/RequestPathBackends")<Backends, {
  readonly redis: Backend
  readonly memory: Backend
}>() {}

const BackendsLive = Layer.scoped(
  Backends,
  Effect.gen(function*() {
    const server = yield* TestRedis
    const redisLog: StoreLog = { calls: [], indexed: [] }
    const memoryLog: StoreLog = { calls: [], indexed: [] }
    const redisUrl = yield* serve(
      recorded(
        Layer.merge(
          SessionConfig.layer(OPTIONS),
          RedisSessionStore.layer({ prefix: PREFIX }).pipe(
            Layer.provide(RedisClient.layer({ url: Redacted.make(server.url) }))
          )
        ),
        redisLog,
        0
      ),
      Routes
    )
    const memoryUrl = yield* serve(
      recorded(Layer.merge(SessionStore.layerMemory, SessionConfig.layer(OPTIONS)), memoryLog, 5),
      Routes
    )
    return {
      redis: { name: "Redis", url: redisUrl, log: redisLog, redis: server },
      memory: { name: "memory", url: memoryUrl, log: memoryLog, redis: undefined }
    } as const
  })
).pipe(Layer.provide(TestRedis.layer))

/** Runs `f` and returns the store log of what happened meanwhile. */
const storeDuring = async (backend: Backend, f: () => Promise<unknown>): Promise<StoreLog> => {
  backend.log.calls.length = 0
  backend.log.indexed.length = 0
  await f()
  await new Promise((resolve) => setTimeout(resolve, 50))
  return { calls: [...backend.log.calls], indexed: [...backend.log.indexed] }
}

/**
 * A browser holding a stored session with a = "1", b = "2". It also reads the session once, so every
 * script the store uses is cached in Redis and measured requests send EVALSHA only.
 */
const existingSession = async (url: string) => {
  const browser = new Browser(url)
  assert.strictEqual((await browser.get("/set/a/1")).status, 200)
  assert.strictEqual((await browser.get("/set/b/2")).status, 200)
  assert.isDefined(browser.cookie)
  assert.deepStrictEqual(await dump(browser), { a: "1", b: "2" })
  return browser
}

/** `browser.get`, failing the test with a clear message when the server never answers. */
const answered = (browser: Browser, path: string) =>
  browser.get(path).catch((error) => assert.fail(`GET ${path} got no response: ${error}`))

const withCookie = (url: string, cookie: string | undefined) => {
  const browser = new Browser(url)
  browser.cookie = cookie
  return browser
}

const dump = async (browser: Browser) => {
  const reply = await browser.get("/dump")
  assert.strictEqual(reply.status, 200)
  return JSON.parse(reply.body) as Record<string, unknown>
}

/** The session cookies the reply sets to a value (deletions, with an empty value, left out). */
const cookiesSet = (reply: Reply) => reply.cookies.filter((c) => c.name === "session" && c.value !== "")

const redisKeys = async (redis: RedisServer) => (await redis.admin().keys(`${PREFIX}*`)).sort()

layer(BackendsLive, { excludeTestServices: true, timeout: "60 seconds" })("request path", (it) => {
  const both = (title: string, f: (backend: Backend) => Promise<void>) => {
    it.effect(`${title} (Redis)`, () => Effect.flatMap(Backends, ({ redis }) => Effect.promise(() => f(redis))))
    it.effect(`${title} (memory)`, () => Effect.flatMap(Backends, ({ memory }) => Effect.promise(() => f(memory))))
  }
  const onRedis = (title: string, f: (backend: Backend & { readonly redis: RedisServer }) => Promise<void>) =>
    it.effect(
      `${title} (Redis)`,
      () => Effect.flatMap(Backends, ({ redis }) => Effect.promise(() => f(redis as Backend & { redis: RedisServer })))
    )

  // ---------------------------------------------------------------------------------------------------
  // 1. one lazy load per request, shared by concurrent fibers

  onRedis("concurrent reads in one handler share one load: exactly one Redis command", async ({ redis, url }) => {
    const browser = await existingSession(url)
    let reply: Reply | undefined
    const commands = await commandsDuring(redis, async () => {
      reply = await browser.get("/parallel-reads")
    })
    assert.strictEqual(reply!.status, 200)
    assert.deepStrictEqual(JSON.parse(reply!.body), { a: "1", b: "2", c: false })
    assert.deepStrictEqual(commands.map((c) => c.name), ["EVALSHA"])
  })

  both("concurrent reads in one handler share one store load", async (backend) => {
    const browser = await existingSession(backend.url)
    let reply: Reply | undefined
    const log = await storeDuring(backend, async () => {
      reply = await browser.get("/parallel-reads")
    })
    assert.strictEqual(reply!.status, 200)
    assert.deepStrictEqual(JSON.parse(reply!.body), { a: "1", b: "2", c: false })
    assert.deepStrictEqual(log.calls.filter((c) => c === "load"), ["load"])
  })

  both("regenerate concurrent with a read, then a write: 200, new id, old id dead, data moved", async ({ url }) => {
    const browser = await existingSession(url)
    const oldCookie = browser.cookie!
    const reply = await answered(browser, "/regenerate-while-reading")
    assert.strictEqual(reply.status, 200, reply.body)
    const set = cookiesSet(reply)
    assert.strictEqual(set.length, 1)
    assert.notStrictEqual(set[0]!.value, oldCookie)
    assert.deepStrictEqual(await dump(withCookie(url, oldCookie)), {})
    assert.deepStrictEqual(await dump(browser), { a: "1", b: "2", x: 1 })
  })

  // ---------------------------------------------------------------------------------------------------
  // 2. an ended session stays ended: reads after remove/clear store nothing

  const assertStoresNothing = async (
    backend: Backend,
    cookie: string,
    path: string,
    expectedBody: string
  ) => {
    const keysBefore = backend.redis === undefined ? [] : await redisKeys(backend.redis)
    let reply: Reply | undefined
    const log = await storeDuring(backend, async () => {
      reply = await withCookie(backend.url, cookie).get(path)
    })
    assert.strictEqual(reply!.status, 200)
    assert.strictEqual(reply!.body, expectedBody)
    assert.deepStrictEqual(cookiesSet(reply!), [], "no new session cookie")
    for (const deletion of reply!.cookies) assert.strictEqual(deletion.attributes.get("max-age"), "0")
    assert.notInclude(log.calls, "create")
    if (backend.redis !== undefined) assert.deepStrictEqual(await redisKeys(backend.redis), keysBefore)
  }

  onRedis("remove then get on a session deleted from Redis stores nothing and sets no cookie", async (backend) => {
    const browser = await existingSession(backend.url)
    assert.strictEqual(await backend.redis.admin().del(storageKeyOf(browser.cookie!)), 1)
    await assertStoresNothing(backend, browser.cookie!, "/remove-then-get/a", "absent")
  })

  onRedis("clear then keys on a session that expired in Redis stores nothing and sets no cookie", async (backend) => {
    const browser = await existingSession(backend.url)
    const key = storageKeyOf(browser.cookie!)
    assert.strictEqual(await backend.redis.admin().pexpire(key, 1), 1)
    await new Promise((resolve) => setTimeout(resolve, 20))
    assert.strictEqual(await backend.redis.admin().exists(key), 0)
    await assertStoresNothing(backend, browser.cookie!, "/clear-then-keys", "[]")
  })

  both("remove then get on a session logged out in another tab stores nothing and sets no cookie", async (backend) => {
    const browser = await existingSession(backend.url)
    const cookie = browser.cookie!
    assert.strictEqual((await withCookie(backend.url, cookie).get("/logout")).status, 200)
    await assertStoresNothing(backend, cookie, "/remove-then-get/a", "absent")
  })

  both("clear then keys on a session logged out in another tab stores nothing and sets no cookie", async (backend) => {
    const browser = await existingSession(backend.url)
    const cookie = browser.cookie!
    assert.strictEqual((await withCookie(backend.url, cookie).get("/logout")).status, 200)
    await assertStoresNothing(backend, cookie, "/clear-then-keys", "[]")
  })

  // ---------------------------------------------------------------------------------------------------
  // 3. regenerate + bind to another principal leaves the previous principal's index

  const sessionsOf = async (url: string, principal: string) => {
    const reply = await new Browser(url).get(`/sessions/${principal}`)
    assert.strictEqual(reply.status, 200)
    return JSON.parse(reply.body) as Array<SessionIndex.IndexedSession>
  }

  both("regenerate then bind to bob: alice's index is empty at once, bob's holds the new session", async (backend) => {
    const { url } = backend
    const alice = `alice-${backend.name}`
    const bob = `bob-${backend.name}`
    const browser = await existingSession(url)
    assert.strictEqual((await browser.get(`/bind/${alice}`)).status, 200)
    assert.strictEqual((await sessionsOf(url, alice)).length, 1)
    const oldCookie = browser.cookie!

    const reply = await browser.get(`/regenerate-bind/${bob}`)
    assert.strictEqual(reply.status, 200)
    assert.strictEqual(cookiesSet(reply).length, 1)
    assert.notStrictEqual(browser.cookie, oldCookie)

    if (backend.redis !== undefined) {
      // before any listing, which would prune dead entries
      const admin = backend.redis.admin()
      assert.strictEqual(await admin.hexists(indexKeyOf(alice), storageKeyOf(oldCookie)), 0)
      assert.strictEqual(await admin.hlen(indexKeyOf(alice)), 0)
    }
    let listed: Array<SessionIndex.IndexedSession> = []
    const log = await storeDuring(backend, async () => {
      listed = await sessionsOf(url, alice)
    })
    assert.deepStrictEqual(listed, [])
    assert.deepStrictEqual(log.indexed.flat(), [], "alice's index still held the replaced session")

    const bobs = await sessionsOf(url, bob)
    assert.strictEqual(bobs.length, 1)
    assert.deepStrictEqual(await dump(browser), { a: "1", b: "2", user: alice })
    assert.strictEqual((await new Browser(url).get(`/revoke/${bob}/${bobs[0]!.handle}`)).body, "true")
    assert.deepStrictEqual(await dump(browser), {}, "bob's listed session is the regenerated one")
  })

  // ---------------------------------------------------------------------------------------------------
  // 4. a login whose new session cannot be stored keeps the old one

  both("regenerate with an oversized session: 413, and the old session still works with its data", async (backend) => {
    const { url } = backend
    const browser = await existingSession(url)
    const oldCookie = browser.cookie!
    const reply = await browser.get(`/regenerate-big/${MAX_SIZE + 1_000}`)
    assert.strictEqual(reply.status, 413)
    assert.deepStrictEqual(cookiesSet(reply), [])
    assert.deepStrictEqual(await dump(withCookie(url, oldCookie)), { a: "1", b: "2" })
    if (backend.redis !== undefined) {
      assert.strictEqual(await backend.redis.admin().exists(storageKeyOf(oldCookie)), 1)
    }
  })

  onRedis(
    "regenerate while Redis refuses writes (OOM): an error, and the old session survives",
    async ({ redis, url }) => {
      const browser = await existingSession(url)
      const oldCookie = browser.cookie!
      const admin = redis.admin()
      const [, policy] = (await admin.config("GET", "maxmemory-policy")) as [string, string]
      const [, maxmemory] = (await admin.config("GET", "maxmemory")) as [string, string]
      let reply: Reply
      try {
        await admin.config("SET", "maxmemory-policy", "noeviction")
        await admin.config("SET", "maxmemory", "1")
        reply = await browser.get("/regenerate-set")
      } finally {
        await admin.config("SET", "maxmemory", maxmemory)
        await admin.config("SET", "maxmemory-policy", policy)
      }
      assert.isAtLeast(reply.status, 500)
      assert.deepStrictEqual(cookiesSet(reply), [])
      assert.strictEqual(await admin.exists(storageKeyOf(oldCookie)), 1)
      assert.deepStrictEqual(await dump(withCookie(url, oldCookie)), { a: "1", b: "2" })
    }
  )

  // ---------------------------------------------------------------------------------------------------
  // 5. forked fibers

  both("a write made only in a forked, joined fiber is committed", async ({ url }) => {
    const anonymous = new Browser(url)
    const created = await anonymous.get("/fork-set/k/v")
    assert.strictEqual(created.status, 200)
    assert.strictEqual(cookiesSet(created).length, 1)
    assert.deepStrictEqual(await dump(anonymous), { k: "v" })

    const browser = await existingSession(url)
    assert.strictEqual((await browser.get("/fork-set/k/v")).status, 200)
    assert.deepStrictEqual(await dump(browser), { a: "1", b: "2", k: "v" })
  })

  both("a write made only in a joined daemon fiber is committed", async ({ url }) => {
    const anonymous = new Browser(url)
    const created = await anonymous.get("/fork-daemon-set/k/v")
    assert.strictEqual(created.status, 200)
    assert.strictEqual(cookiesSet(created).length, 1)
    assert.deepStrictEqual(await dump(anonymous), { k: "v" })

    const browser = await existingSession(url)
    assert.strictEqual((await browser.get("/fork-daemon-set/k/v")).status, 200)
    assert.deepStrictEqual(await dump(browser), { a: "1", b: "2", k: "v" })
  })
})
