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
import { type HttpClient, HttpLayerRouter, HttpServerResponse } from "@effect/platform"
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
import type { Reply } from "./utils/Browser.js"
import {
  commandNamesDuring as commandsDuring,
  type RedisServer,
  TestRedis,
  withAdmin as admin
} from "./utils/RedisServer.js"
import { serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

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

const recordingLayer = <E>(
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
  readonly client: HttpClient.HttpClient
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
    const redisClient = yield* serveClient(
      recordingLayer(
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
    const memoryClient = yield* serveClient(
      recordingLayer(Layer.merge(SessionStore.layerMemory, SessionConfig.layer(OPTIONS)), memoryLog, 5),
      Routes
    )
    return {
      redis: { name: "Redis", client: redisClient, log: redisLog, redis: server },
      memory: { name: "memory", client: memoryClient, log: memoryLog, redis: undefined }
    } as const
  })
).pipe(Layer.provide(TestRedis.layer))

/**
 * Runs `effect` and returns its result with the store operations it caused. The commit runs before the
 * response is sent, so the log is complete when the response arrives; only a TTL refresh runs after it.
 */
const storeDuring = <A, E>(backend: Backend, effect: Effect.Effect<A, E>) =>
  Effect.suspend(() => {
    backend.log.calls.length = 0
    backend.log.indexed.length = 0
    return Effect.map(effect, (a) => [a, { calls: [...backend.log.calls], indexed: [...backend.log.indexed] }] as const)
  })

const withCookie = (client: HttpClient.HttpClient, cookie: string | undefined) => {
  const browser = new TestBrowser(client)
  browser.cookie = cookie
  return browser
}

const dump = (browser: TestBrowser) =>
  Effect.map(browser.get("/dump"), (reply) => {
    assert.strictEqual(reply.status, 200)
    return JSON.parse(reply.body) as Record<string, unknown>
  })

/**
 * A browser holding a stored session with a = "1", b = "2". It also reads the session once, so every
 * script the store uses is cached in Redis and measured requests send EVALSHA only.
 */
const existingSession = Effect.fnUntraced(function*(client: HttpClient.HttpClient) {
  const browser = new TestBrowser(client)
  assert.strictEqual((yield* browser.get("/set/a/1")).status, 200)
  assert.strictEqual((yield* browser.get("/set/b/2")).status, 200)
  assert.isDefined(browser.cookie)
  assert.deepStrictEqual(yield* dump(browser), { a: "1", b: "2" })
  return browser
})

/** The session cookies the reply sets to a value (deletions, with an empty value, left out). */
const cookiesSet = (reply: Reply) => reply.cookies.filter((c) => c.name === "session" && c.value !== "")

const redisKeys = (redis: RedisServer) => admin(redis, async (r) => (await r.keys(`${PREFIX}*`)).sort())

layer(BackendsLive, { excludeTestServices: true, timeout: "60 seconds" })("request path", (it) => {
  const both = (title: string, f: (backend: Backend) => Effect.Effect<void, unknown>) => {
    it.effect(`${title} (Redis)`, () => Effect.flatMap(Backends, ({ redis }) => f(redis)))
    it.effect(`${title} (memory)`, () => Effect.flatMap(Backends, ({ memory }) => f(memory)))
  }
  const onRedis = (
    title: string,
    f: (backend: Backend & { readonly redis: RedisServer }) => Effect.Effect<void, unknown>
  ) =>
    it.effect(
      `${title} (Redis)`,
      () => Effect.flatMap(Backends, ({ redis }) => f(redis as Backend & { redis: RedisServer }))
    )

  // ---------------------------------------------------------------------------------------------------
  // 1. one lazy load per request, shared by concurrent fibers

  onRedis(
    "concurrent reads in one handler share one load: exactly one Redis command",
    ({ client, redis }) =>
      Effect.gen(function*() {
        const browser = yield* existingSession(client)
        const [reply, commands] = yield* commandsDuring(redis, browser.get("/parallel-reads"))
        assert.strictEqual(reply.status, 200)
        assert.deepStrictEqual(JSON.parse(reply.body), { a: "1", b: "2", c: false })
        assert.deepStrictEqual(commands, ["EVALSHA"])
      })
  )

  both("concurrent reads in one handler share one store load", (backend) =>
    Effect.gen(function*() {
      const browser = yield* existingSession(backend.client)
      const [reply, log] = yield* storeDuring(backend, browser.get("/parallel-reads"))
      assert.strictEqual(reply.status, 200)
      assert.deepStrictEqual(JSON.parse(reply.body), { a: "1", b: "2", c: false })
      assert.deepStrictEqual(log.calls.filter((c) => c === "load"), ["load"])
    }))

  both(
    "regenerate concurrent with a read, then a write: 200, new id, old id dead, data moved",
    ({ client }) =>
      Effect.gen(function*() {
        const browser = yield* existingSession(client)
        const oldCookie = browser.cookie!
        const reply = yield* browser.get("/regenerate-while-reading")
        assert.strictEqual(reply.status, 200, reply.body)
        const set = cookiesSet(reply)
        assert.strictEqual(set.length, 1)
        assert.notStrictEqual(set[0]!.value, oldCookie)
        assert.deepStrictEqual(yield* dump(withCookie(client, oldCookie)), {})
        assert.deepStrictEqual(yield* dump(browser), { a: "1", b: "2", x: 1 })
      })
  )

  // ---------------------------------------------------------------------------------------------------
  // 2. an ended session stays ended: reads after remove/clear store nothing

  const assertStoresNothing = Effect.fnUntraced(function*(
    backend: Backend,
    cookie: string,
    path: string,
    expectedBody: string
  ) {
    const keysBefore = backend.redis === undefined ? [] : yield* redisKeys(backend.redis)
    const [reply, log] = yield* storeDuring(backend, withCookie(backend.client, cookie).get(path))
    assert.strictEqual(reply.status, 200)
    assert.strictEqual(reply.body, expectedBody)
    assert.deepStrictEqual(cookiesSet(reply), [], "no new session cookie")
    for (const deletion of reply.cookies) assert.strictEqual(deletion.attributes.get("max-age"), "0")
    assert.notInclude(log.calls, "create")
    if (backend.redis !== undefined) assert.deepStrictEqual(yield* redisKeys(backend.redis), keysBefore)
  })

  onRedis(
    "remove then get on a session deleted from Redis stores nothing and sets no cookie",
    (backend) =>
      Effect.gen(function*() {
        const browser = yield* existingSession(backend.client)
        assert.strictEqual(yield* admin(backend.redis, (r) => r.del(storageKeyOf(browser.cookie!))), 1)
        yield* assertStoresNothing(backend, browser.cookie!, "/remove-then-get/a", "absent")
      })
  )

  onRedis(
    "clear then keys on a session that expired in Redis stores nothing and sets no cookie",
    (backend) =>
      Effect.gen(function*() {
        const browser = yield* existingSession(backend.client)
        const key = storageKeyOf(browser.cookie!)
        // a deadline in the past: Redis ends the session at once, as if its timeout had passed
        assert.strictEqual(yield* admin(backend.redis, (r) => r.pexpireat(key, Date.now() - 1)), 1)
        assert.strictEqual(yield* admin(backend.redis, (r) => r.exists(key)), 0)
        yield* assertStoresNothing(backend, browser.cookie!, "/clear-then-keys", "[]")
      })
  )

  for (
    const [what, path, body] of [["remove then get", "/remove-then-get/a", "absent"], [
      "clear then keys",
      "/clear-then-keys",
      "[]"
    ]]
  ) {
    both(
      `${what} on a session logged out in another tab stores nothing and sets no cookie`,
      (backend) =>
        Effect.gen(function*() {
          const browser = yield* existingSession(backend.client)
          const cookie = browser.cookie!
          assert.strictEqual((yield* withCookie(backend.client, cookie).get("/logout")).status, 200)
          yield* assertStoresNothing(backend, cookie, path, body)
        })
    )
  }

  // ---------------------------------------------------------------------------------------------------
  // 3. regenerate + bind to another principal leaves the previous principal's index

  const sessionsOf = (client: HttpClient.HttpClient, principal: string) =>
    Effect.map(new TestBrowser(client).get(`/sessions/${principal}`), (reply) => {
      assert.strictEqual(reply.status, 200)
      return JSON.parse(reply.body) as Array<{ readonly handle: string }>
    })

  both(
    "regenerate then bind to bob: alice's index is empty at once, bob's holds the new session",
    (backend) =>
      Effect.gen(function*() {
        const { client } = backend
        const alice = `alice-${backend.name}`
        const bob = `bob-${backend.name}`
        const browser = yield* existingSession(client)
        assert.strictEqual((yield* browser.get(`/bind/${alice}`)).status, 200)
        assert.strictEqual((yield* sessionsOf(client, alice)).length, 1)
        const oldCookie = browser.cookie!

        const reply = yield* browser.get(`/regenerate-bind/${bob}`)
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(cookiesSet(reply).length, 1)
        assert.notStrictEqual(browser.cookie, oldCookie)

        if (backend.redis !== undefined) {
          // before any listing, which would prune dead entries
          assert.strictEqual(
            yield* admin(backend.redis, (r) => r.hexists(indexKeyOf(alice), storageKeyOf(oldCookie))),
            0
          )
          assert.strictEqual(yield* admin(backend.redis, (r) => r.hlen(indexKeyOf(alice))), 0)
        }
        const [listed, log] = yield* storeDuring(backend, sessionsOf(client, alice))
        assert.deepStrictEqual(listed, [])
        assert.deepStrictEqual(log.indexed.flat(), [], "alice's index still held the replaced session")

        const bobs = yield* sessionsOf(client, bob)
        assert.strictEqual(bobs.length, 1)
        assert.deepStrictEqual(yield* dump(browser), { a: "1", b: "2", user: alice })
        assert.strictEqual((yield* new TestBrowser(client).get(`/revoke/${bob}/${bobs[0]!.handle}`)).body, "true")
        assert.deepStrictEqual(yield* dump(browser), {}, "bob's listed session is the regenerated one")
      })
  )

  // ---------------------------------------------------------------------------------------------------
  // 4. a login whose new session cannot be stored keeps the old one

  both(
    "regenerate with an oversized session: 413, and the old session still works with its data",
    (backend) =>
      Effect.gen(function*() {
        const { client } = backend
        const browser = yield* existingSession(client)
        const oldCookie = browser.cookie!
        const reply = yield* browser.get(`/regenerate-big/${MAX_SIZE + 1_000}`)
        assert.strictEqual(reply.status, 413)
        assert.deepStrictEqual(cookiesSet(reply), [])
        assert.deepStrictEqual(yield* dump(withCookie(client, oldCookie)), { a: "1", b: "2" })
        if (backend.redis !== undefined) {
          assert.strictEqual(yield* admin(backend.redis, (r) => r.exists(storageKeyOf(oldCookie))), 1)
        }
      })
  )

  onRedis(
    "regenerate while Redis refuses writes (OOM): an error, and the old session survives",
    ({ client, redis }) =>
      Effect.gen(function*() {
        const browser = yield* existingSession(client)
        const oldCookie = browser.cookie!
        const setting = (name: string) =>
          admin(redis, async (r) => ((await r.config("GET", name)) as [string, string])[1])
        const configure = (name: string, value: string) => admin(redis, (r) => r.config("SET", name, value))
        const policy = yield* setting("maxmemory-policy")
        const maxmemory = yield* setting("maxmemory")
        const reply = yield* Effect.zipRight(
          Effect.zipRight(configure("maxmemory-policy", "noeviction"), configure("maxmemory", "1")),
          browser.get("/regenerate-set")
        ).pipe(
          Effect.ensuring(Effect.zipRight(configure("maxmemory", maxmemory), configure("maxmemory-policy", policy)))
        )
        assert.isAtLeast(reply.status, 500)
        assert.deepStrictEqual(cookiesSet(reply), [])
        assert.strictEqual(yield* admin(redis, (r) => r.exists(storageKeyOf(oldCookie))), 1)
        assert.deepStrictEqual(yield* dump(withCookie(client, oldCookie)), { a: "1", b: "2" })
      })
  )

  // ---------------------------------------------------------------------------------------------------
  // 5. forked fibers

  for (const route of ["fork-set", "fork-daemon-set"]) {
    const fiber = route === "fork-set" ? "forked, joined fiber" : "joined daemon fiber"
    both(`a write made only in a ${fiber} is committed`, ({ client }) =>
      Effect.gen(function*() {
        const anonymous = new TestBrowser(client)
        const created = yield* anonymous.get(`/${route}/k/v`)
        assert.strictEqual(created.status, 200)
        assert.strictEqual(cookiesSet(created).length, 1)
        assert.deepStrictEqual(yield* dump(anonymous), { k: "v" })

        const browser = yield* existingSession(client)
        assert.strictEqual((yield* browser.get(`/${route}/k/v`)).status, 200)
        assert.deepStrictEqual(yield* dump(browser), { a: "1", b: "2", k: "v" })
      }))
  }
})
