/**
 * Redis faults seen from HTTP: down at start, killed and restarted under traffic, hung (SIGSTOP),
 * slow (DEBUG SLEEP), half-open (lost replies), writes paused (CLIENT PAUSE WRITE), a connection cut
 * after a commit was sent, and hostile data planted in a live session. Every case has its own
 * redis-server; the app runs with `commandTimeout: 0.5` and `connectTimeout: 1` (seconds).
 *
 * Latencies are printed for reference, never asserted except as a hang guard: every request must end
 * well before the 10 s abort of `Browser`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as HttpSession from "../src/HttpSession.js"
import { sessionKey } from "../src/internal/keys.js"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisSession from "../src/RedisSession.js"
import * as RedisSessionStore from "../src/RedisSessionStore.js"
import * as SessionConfig from "../src/SessionConfig.js"
import { RedisError } from "../src/SessionError.js"
import * as SessionId from "../src/SessionId.js"
import { Browser, type Reply } from "./utils/Browser.js"
import { startFaultProxy } from "./utils/faultProxy.js"
import { burst, collectGarbage, latency, quantiles, runWorkers, type Sample, sleep } from "./utils/load.js"
import { freePort, type RedisServer, startRedisServer } from "./utils/RedisServer.js"
import { serve, storedSession } from "./utils/testApp.js"

const SECRET = "a-fault-injection-test-secret-of-40-chars"
/** Seconds, as `RedisSession.layer` takes them. */
const FAST = { commandTimeout: "500 millis", connectTimeout: "1 second" } as const
/** Half of the 10 s client abort of `Browser`: a request that takes longer is a hang. */
const HANG_GUARD_MS = 5_000
const TIMEOUT = 60_000

const scopedRedis = (options?: Parameters<typeof startRedisServer>[0]) =>
  Effect.acquireRelease(
    Effect.promise(() => startRedisServer(options)),
    (redis) => Effect.promise(() => redis.stop())
  )

/** A fault proxy in front of `redis`, closed with the test's scope. */
const scopedProxy = (redis: RedisServer) =>
  Effect.acquireRelease(run(() => startFaultProxy(redis)), (proxy) => run(() => proxy.close()))

/** The test routes on `RedisSession.layer` with the fast deadlines; the error logs of 503s are muted. */
const serveOn = (url: string, options: Partial<SessionConfig.Options> = {}) =>
  serve(RedisSession.layer({ secret: SECRET, url, ...FAST, ...options }))

/** A test with its own scope, live clock and muted logs. */
const test = (name: string, body: () => Effect.Effect<void, unknown, Scope.Scope>) =>
  it.scopedLive(name, () => body().pipe(Logger.withMinimumLogLevel(LogLevel.None)), TIMEOUT)

const run = <A>(f: () => Promise<A>) => Effect.promise(f)

const keyOf = (cookie: string) => sessionKey("", cookie.slice(0, cookie.lastIndexOf(".")))

interface Timed extends Reply {
  readonly ms: number
}

const timedGet = async (browser: Browser, route: string): Promise<Timed> => {
  const started = Date.now()
  const reply = await browser.get(route)
  return { ...reply, ms: Date.now() - started }
}

/** Retries `attempt` every 50 ms until it says done; returns the milliseconds it took, or -1. */
const recovery = async (attempt: () => Promise<boolean>, maxMillis = 10_000) => {
  const started = Date.now()
  for (let i = 0; i < 400 && Date.now() - started < maxMillis; i++) {
    if (await attempt()) return Date.now() - started
    await sleep(50)
  }
  return -1
}

/** Whether a fresh connection gets an answer to PING within `millis`. */
const answersPing = (redis: { readonly host: string; readonly port: number }, millis: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.createConnection({ host: redis.host, port: redis.port })
    const done = (answered: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(answered)
    }
    const timer = setTimeout(() => done(false), millis)
    socket.once("data", () => done(true))
    socket.once("error", () => done(false))
    socket.write("PING\r\n")
  })

/** `ioredis` internals behind the service, for the queue checks. */
const queues = (client: RedisClient.RedisClient["Type"]["client"]) => {
  if (!(client instanceof Redis)) return undefined
  const internals = client as unknown as { readonly offlineQueue?: { readonly length: number } }
  return { offline: internals.offlineQueue?.length, command: client.commandQueue.length }
}

describe("Redis faults over HTTP", () => {
  test("down at build: typed RedisError without hanging; lazyConnect serves 503 then recovers by itself", () =>
    Effect.gen(function*() {
      const port = yield* run(() => freePort())
      const url = `redis://127.0.0.1:${port}`
      const started = Date.now()
      const error = yield* Layer.build(RedisSession.layer({ secret: SECRET, url, ...FAST })).pipe(
        Effect.scoped,
        Effect.flip
      )
      const elapsed = Date.now() - started
      console.log(`down at build: layer failed with ${error._tag} after ${elapsed} ms`)
      assert.instanceOf(error, RedisError)
      assert.strictEqual(error._tag, "RedisError")
      assert.strictEqual((error as RedisError).reason, "Connection")
      assert.strictEqual((error as RedisError).operation, "connect")
      assert.isBelow(elapsed, HANG_GUARD_MS, "building the layer must not hang")

      const app = yield* serveOn(url, { lazyConnect: true })
      yield* run(async () => {
        const returning = new Browser(app)
        returning.cookie = SessionId.sign(randomBytes(32).toString("hex"), Redacted.make(SECRET))
        const replies = {
          anonymousWrite: await timedGet(new Browser(app), "/incr"),
          read: await timedGet(returning, "/read"),
          write: await timedGet(returning, "/set/a/b"),
          untouched: await timedGet(returning, "/none"),
          anonymousRead: await timedGet(new Browser(app), "/read")
        }
        console.log(
          "lazyConnect, Redis down:",
          Object.entries(replies).map(([k, r]) => `${k} ${r.status} in ${r.ms} ms`).join(", ")
        )
        assert.strictEqual(replies.anonymousWrite.status, 503)
        assert.strictEqual(replies.anonymousWrite.cookies.length, 0)
        assert.strictEqual(replies.read.status, 503)
        assert.strictEqual(replies.write.status, 503)
        assert.strictEqual(replies.untouched.status, 200)
        assert.strictEqual(replies.anonymousRead.status, 200)
        assert.strictEqual(replies.anonymousRead.body, "0")
        for (const reply of Object.values(replies)) assert.isBelow(reply.ms, HANG_GUARD_MS)
      })

      yield* scopedRedis({ port })
      const upAt = Date.now()
      yield* run(async () => {
        const browser = new Browser(app)
        const took = await recovery(async () => (await browser.get("/incr")).status === 200)
        console.log(`lazyConnect: first session request succeeded ${Date.now() - upAt} ms after redis-server started`)
        assert.isAtLeast(took, 0, "the app never recovered")
        assert.strictEqual((await browser.get("/incr")).body, "2")
        assert.strictEqual((await browser.get("/read")).body, "2")
      })
    }))

  test("killed mid-traffic then restarted: 503s while down, 200s elsewhere, no hang, bounded memory, recovery", () =>
    Effect.gen(function*() {
      const redis = yield* scopedRedis()
      // RedisSession.layer's composition, with the client at hand for the queue checks
      const clientContext = yield* Layer.build(
        RedisClient.layer({ url: Redacted.make(redis.url), commandTimeout: "500 millis", connectTimeout: "1 second" })
      )
      const client = Context.get(clientContext, RedisClient.RedisClient).client
      const app = yield* serve(
        HttpSession.layerRouter.pipe(
          Layer.provide(SessionConfig.layer({ secret: SECRET })),
          Layer.provide(RedisSessionStore.layer().pipe(Layer.provide(Layer.succeedContext(clientContext))))
        )
      )
      yield* run(async () => {
        const browsers = await Promise.all(Array.from({ length: 12 }, () => storedSession(app)))
        const routes = ["/incr", "/none", "/read"] as const
        const marks = { kill: 0, killed: 0, restart: 0, restarted: 0, stop: Number.POSITIVE_INFINITY }
        const traffic = runWorkers({
          workers: browsers.length,
          maxRequests: 50_000,
          maxMillis: 20_000,
          stop: () => Date.now() > marks.stop,
          step: async (worker, i) => {
            const route = routes[(worker + i) % routes.length]!
            return { route, status: (await browsers[worker]!.get(route)).status }
          }
        })
        await sleep(800)
        marks.kill = Date.now()
        await redis.kill()
        marks.killed = Date.now()

        // a burst while Redis is down: memory and ioredis queues stay bounded
        await sleep(100)
        collectGarbage()
        const heapBefore = process.memoryUsage().heapUsed
        const burstStarted = Date.now()
        const burstStatuses = await burst(2000, 50, async (i) => {
          const route = routes[i % routes.length]!
          return { route, status: (await browsers[i % browsers.length]!.get(route)).status }
        })
        const burstMillis = Date.now() - burstStarted
        const queued = queues(client)
        collectGarbage()
        const heapGrowth = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024
        console.log(
          `Redis down: burst of 2000 requests in ${burstMillis} ms, heap growth ${heapGrowth.toFixed(1)} MB, ` +
            `ioredis offline queue ${queued?.offline}, command queue ${queued?.command}`
        )
        assert.deepStrictEqual(
          [...new Set(burstStatuses.map(({ route, status }) => `${route} ${status}`))].sort(),
          ["/incr 503", "/none 200", "/read 503"]
        )
        assert.isBelow(heapGrowth, 50)
        assert.isDefined(queued, "a single-node client")
        if (queued?.offline !== undefined) assert.strictEqual(queued.offline, 0)
        assert.strictEqual(queued?.command, 0)

        await sleep(Math.max(0, marks.killed + 1500 - Date.now()))
        marks.restart = Date.now()
        await redis.restart()
        marks.restarted = Date.now()
        let firstRecovery: number | undefined
        for (let i = 0; i < 200 && firstRecovery === undefined; i++) {
          const reply = await new Browser(app).get("/incr")
          if (reply.status === 200) firstRecovery = Date.now()
          else await sleep(50)
        }
        marks.stop = Date.now() + 1000
        const samples = await traffic

        const isSession = (s: Sample) => s.route !== "/none"
        const between = (from: number, to: number) => samples.filter((s) => s.started >= from && s.ended <= to)
        const before = between(0, marks.kill)
        const down = between(marks.killed, marks.restart)
        const after = samples.filter((s) => firstRecovery !== undefined && s.started >= firstRecovery + 200)
        const describe = (list: ReadonlyArray<Sample>) => {
          const [p50, p99, max] = quantiles(list.map(latency))
          return `${list.length} requests, p50 ${p50} ms, p99 ${p99} ms, max ${max} ms`
        }
        console.log(
          `traffic: ${samples.length} requests; before kill ${describe(before)}; ` +
            `down: session ${describe(down.filter(isSession))}, /none ${
              describe(down.filter((s) => !isSession(s)))
            }; ` +
            `first success ${firstRecovery === undefined ? "never" : `${firstRecovery - marks.restarted} ms`} ` +
            `after restart; after recovery ${describe(after)}`
        )

        assert.deepStrictEqual(samples.filter((s) => s.status === 0), [], "no request failed or hung")
        assert.isBelow(Math.max(...samples.map(latency)), HANG_GUARD_MS)
        assert.isTrue(samples.every((s) => s.status === 200 || (isSession(s) && s.status === 503)))
        assert.isTrue(samples.filter((s) => !isSession(s)).every((s) => s.status === 200))
        assert.isAbove(before.length, 0)
        assert.isTrue(before.every((s) => s.status === 200))
        assert.isAbove(down.filter(isSession).length, 0)
        assert.isTrue(down.filter(isSession).every((s) => s.status === 503))
        assert.isAbove(down.filter((s) => !isSession(s)).length, 0)
        assert.isDefined(firstRecovery, "service never returned after the restart")
        assert.isAbove(after.filter(isSession).length, 0)
        assert.deepStrictEqual(after.filter((s) => s.status !== 200), [])
      })
    }))

  test("hung Redis (SIGSTOP): 503 at the deadline, not a wait; recovers by itself after SIGCONT", () =>
    Effect.gen(function*() {
      const redis = yield* scopedRedis()
      const app = yield* serveOn(redis.url)
      yield* run(async () => {
        const browser = await storedSession(app)
        redis.pause()
        let replies: Array<Timed & { readonly route: string }> = []
        try {
          const stoppedAt = Date.now()
          // 2.5 s of sequential requests: past the command deadline, the socket timeout and reconnect attempts
          for (let i = 0; i < 100 && Date.now() - stoppedAt < 2500; i++) {
            const route = ["/read", "/incr", "/none"][i % 3]!
            replies.push({ route, ...(await timedGet(browser, route)) })
            await sleep(50)
          }
        } finally {
          redis.resume()
        }
        const took = await recovery(async () => {
          const reply = await browser.get("/read")
          return reply.status === 200 && reply.body === "1"
        })
        const session = replies.filter((r) => r.route !== "/none")
        const [p50, , max] = quantiles(session.map((r) => r.ms))
        console.log(
          `SIGSTOP: ${session.length} session requests → ${[...new Set(session.map((r) => r.status))]} ` +
            `(p50 ${p50} ms, max ${max} ms); /none → ${[
              ...new Set(replies.filter((r) => r.route === "/none").map((r) => r.status))
            ]}; recovered ${took} ms after SIGCONT`
        )
        assert.isAbove(session.length, 2)
        assert.isTrue(session.every((r) => r.status === 503))
        assert.isTrue(replies.every((r) => r.ms < HANG_GUARD_MS))
        assert.isTrue(replies.filter((r) => r.route === "/none").every((r) => r.status === 200))
        assert.isAtLeast(took, 0, "the app never recovered after SIGCONT")
        // the connection is not wedged: a run of requests right after all succeed with the right data
        replies = []
        for (let i = 0; i < 20; i++) replies.push({ route: "/read", ...(await timedGet(browser, "/read")) })
        assert.deepStrictEqual(replies.map((r) => `${r.status} ${r.body}`), Array(20).fill("200 1"))
        assert.strictEqual((await browser.get("/incr")).body, "2")
      })
    }))

  test("slow Redis (DEBUG SLEEP 2 from another connection): 503 at the deadline, recovers when it ends", () =>
    Effect.gen(function*() {
      const redis = yield* scopedRedis()
      const app = yield* serveOn(redis.url)
      yield* run(async () => {
        const browser = await storedSession(app)
        // a raw connection, so that no client-side timeout or reconnect of the admin client is involved
        const sleeper = net.createConnection({ host: redis.host, port: redis.port })
        const slept = new Promise<number>((resolve, reject) => {
          sleeper.once(
            "data",
            (chunk: Buffer) =>
              chunk.toString().startsWith("+OK") ? resolve(Date.now()) : reject(new Error(chunk.toString()))
          )
          sleeper.once("error", reject)
        })
        try {
          sleeper.write("*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$1\r\n2\r\n")
          let asleep = false
          for (let i = 0; i < 50 && !asleep; i++) asleep = !(await answersPing(redis, 100))
          assert.isTrue(asleep, "DEBUG SLEEP did not start")
          const during: Array<Timed & { readonly ended: number }> = []
          for (let i = 0; i < 3; i++) {
            const reply = await timedGet(browser, i === 1 ? "/incr" : "/read")
            during.push({ ...reply, ended: Date.now() })
          }
          const untouched = await timedGet(browser, "/none")
          const sleepEnded = await slept
          const took = await recovery(async () => {
            const reply = await browser.get("/read")
            return reply.status === 200 && reply.body === "1"
          })
          console.log(
            `DEBUG SLEEP 2: session requests → ${during.map((r) => `${r.status} in ${r.ms} ms`).join(", ")}; ` +
              `/none ${untouched.status} in ${untouched.ms} ms; recovered ${took} ms after the sleep ended ` +
              `(${Date.now() - sleepEnded} ms incl. checks)`
          )
          // the requests answered while Redis slept (all of them unless this machine is very slow)
          const whileAsleep = during.filter((r) => r.ended < sleepEnded)
          assert.isAtLeast(whileAsleep.length, 2)
          assert.isTrue(whileAsleep.every((r) => r.status === 503))
          assert.isTrue(during.every((r) => r.ms < HANG_GUARD_MS))
          assert.strictEqual(untouched.status, 200)
          assert.isAtLeast(took, 0, "the app never recovered after the sleep")
          const after: Array<string> = []
          for (let i = 0; i < 20; i++) after.push((await browser.get("/read")).body)
          assert.deepStrictEqual(after, Array(20).fill("1"))
          assert.strictEqual((await browser.get("/incr")).body, "2")
        } finally {
          sleeper.destroy()
        }
      })
    }))

  test("lost replies (half-open connection): the client drops the silent connection and recovers", () =>
    Effect.gen(function*() {
      const redis = yield* scopedRedis()
      const proxy = yield* scopedProxy(redis)
      const app = yield* serveOn(proxy.url)
      yield* run(async () => {
        const browser = await storedSession(app)
        const connections = proxy.accepted
        proxy.blackhole()
        const lostAt = Date.now()
        const first = await timedGet(browser, "/read")
        const took = await recovery(async () => {
          const reply = await browser.get("/read")
          return reply.status === 200 && reply.body === "1"
        })
        console.log(
          `lost replies: first request ${first.status} in ${first.ms} ms; recovered ${
            took < 0 ? "never" : `${Date.now() - lostAt} ms after the replies stopped`
          }; proxy connections ${connections} → ${proxy.accepted}`
        )
        assert.strictEqual(first.status, 503)
        assert.isBelow(first.ms, HANG_GUARD_MS)
        assert.isAtLeast(took, 0, "the connection stayed wedged")
        assert.isAbove(proxy.accepted, connections, "the client never reconnected")
        const after: Array<string> = []
        for (let i = 0; i < 20; i++) after.push((await browser.get("/read")).body)
        assert.deepStrictEqual(after, Array(20).fill("1"))
      })
    }))

  test("writes paused (CLIENT PAUSE WRITE): reads answer, a logout and a login are never reported done", () =>
    Effect.gen(function*() {
      const redis = yield* scopedRedis()
      const app = yield* serveOn(redis.url)
      yield* run(async () => {
        const admin = redis.admin()
        const reader = await storedSession(app)
        await reader.get("/set/name/alice")
        const leaving = await storedSession(app)
        const joining = await storedSession(app)
        const leavingCookie = leaving.cookie!
        const joiningCookie = joining.cookie!
        const keysBefore = await admin.dbsize()

        await admin.call("CLIENT", "PAUSE", "3000", "WRITE")
        const pausedAt = Date.now()
        const reads: Array<Timed> = []
        for (let i = 0; i < 5; i++) reads.push(await timedGet(reader, i % 2 === 0 ? "/read" : "/dump"))
        const [logout, login] = await Promise.all([timedGet(leaving, "/logout"), timedGet(joining, "/login/mallory")])
        const readAfterWrite = await timedGet(reader, "/read")
        const pausedFor = Date.now() - pausedAt
        console.log(
          `CLIENT PAUSE WRITE: reads ${reads.map((r) => `${r.status} in ${r.ms} ms`).join(", ")}; ` +
            `logout ${logout.status} in ${logout.ms} ms; login ${login.status} in ${login.ms} ms; ` +
            `a read queued behind the paused writes on the same connection: ${readAfterWrite.status} in ` +
            `${readAfterWrite.ms} ms (${pausedFor} ms into the pause)`
        )
        assert.deepStrictEqual(reads.map((r) => r.status), [200, 200, 200, 200, 200])
        assert.strictEqual(reads[0]!.body, "1")
        assert.deepStrictEqual(JSON.parse(reads[1]!.body), { count: 1, warm: "up", name: "alice" })
        assert.strictEqual(logout.status, 503)
        assert.deepStrictEqual(logout.cookies, [], "an unconfirmed logout must not clear the cookie")
        assert.strictEqual(leaving.cookie, leavingCookie)
        assert.strictEqual(login.status, 503)
        assert.deepStrictEqual(login.cookies, [], "an unconfirmed login must not issue a cookie")
        assert.strictEqual(joining.cookie, joiningCookie)
        assert.isTrue([logout, login, readAfterWrite].every((r) => r.ms < HANG_GUARD_MS))
        assert.isBelow(pausedFor, 3000, "the checks above ran inside the pause")

        // the rest of the pause: reads of the same session with a write now and then, on the shared connection
        const mixedReads: Array<number> = []
        const mixedWrites: Array<Promise<Reply>> = []
        while (Date.now() < pausedAt + 2700 && mixedReads.length < 200) {
          // only writes whose 500 ms deadline ends inside the pause: a later one may legitimately run after it
          if (mixedReads.length % 15 === 5 && Date.now() < pausedAt + 2200) {
            mixedWrites.push(new Browser(app).get(`/set/paused/${mixedWrites.length}`))
          }
          mixedReads.push((await reader.get("/read")).status)
          await sleep(20)
        }
        const writeStatuses = (await Promise.all(mixedWrites)).map((r) => r.status)
        console.log(
          `rest of the pause: ${mixedReads.length} reads → ${mixedReads.filter((s) => s === 200).length}×200, ` +
            `${mixedReads.filter((s) => s === 503).length}×503 with ${mixedWrites.length} new-session writes ` +
            `interleaved → ${[...new Set(writeStatuses)]}`
        )
        assert.isTrue(mixedReads.every((s) => s === 200 || s === 503))
        assert.isTrue(writeStatuses.every((s) => s === 503), "no write may succeed while writes are paused")

        await sleep(pausedAt + 3200 - Date.now())
        const took = await recovery(async () => (await reader.get("/read")).status === 200)
        const stillThere = await admin.exists(keyOf(leavingCookie))
        const joiningAlive = await admin.exists(keyOf(joiningCookie))
        const orphans: Array<string> = []
        for (const key of await admin.keys("*")) {
          if ((await admin.hget(key, ".user")) === "\"mallory\"") orphans.push(key)
        }
        console.log(
          `after the pause: reads recovered in ${took} ms; the session whose logout failed ${
            stillThere === 1 ? "is still alive (its DEL never ran)" : "is gone (the paused DEL ran late)"
          }; the pre-login session ${joiningAlive === 1 ? "is alive" : "is gone"}; ` +
            `${orphans.length} stored session(s) hold the failed login's user (no cookie was ever issued for them); ` +
            `keys ${keysBefore} → ${await admin.dbsize()}`
        )
        assert.isAtLeast(took, 0)
        // whatever the paused commands did meanwhile, the user can log out now and is then anonymous
        assert.strictEqual((await leaving.get("/logout")).status, 200)
        assert.strictEqual(await admin.exists(keyOf(leavingCookie)), 0)
        assert.strictEqual((await leaving.get("/read")).body, "0")
        const retry = await joining.get("/login/mallory")
        assert.strictEqual(retry.status, 200)
        assert.strictEqual((await joining.get("/whoami")).body, "mallory")
        assert.strictEqual(await admin.exists(keyOf(joiningCookie)), 0)
      })
    }))

  test("a commit whose connection dies after it was sent answers 503, runs exactly once, and is not resent", () =>
    Effect.gen(function*() {
      const redis = yield* scopedRedis()
      const proxy = yield* scopedProxy(redis)
      const app = yield* serveOn(proxy.url)
      yield* run(async () => {
        const browser = await storedSession(app)
        const other = await storedSession(app)
        const recorder = await redis.recordCommands()
        try {
          await recorder.settle()
          recorder.reset()
          const connections = proxy.accepted
          const cut = proxy.dropAfterNext(/evalsha/i)
          const reply = await timedGet(browser, "/set/color/blue")
          await cut
          const took = await recovery(async () => (await other.get("/read")).status === 200)
          await sleep(300)
          await recorder.settle()
          const scripts = recorder.commands().filter((c) => c.name === "EVALSHA" || c.name === "EVAL")
          const commits = scripts.filter((c) => c.args.includes(".color"))
          console.log(
            `connection cut after the commit was sent: ${reply.status} in ${reply.ms} ms; the app reconnected and ` +
              `served again after ${took} ms; Redis received the commit ${commits.length} time(s); proxy connections ` +
              `${connections} → ${proxy.accepted}`
          )
          assert.strictEqual(reply.status, 503)
          assert.deepStrictEqual(reply.cookies, [])
          assert.isBelow(reply.ms, HANG_GUARD_MS)
          assert.isAtLeast(took, 0, "the app never reconnected")
          assert.isAbove(proxy.accepted, connections)
          assert.strictEqual(commits.length, 1, "the commit must reach Redis exactly once, never resent")
          // the outcome was unknown to the client but the commit ran once; repeating it is harmless
          assert.strictEqual(await redis.admin().hget(keyOf(browser.cookie!), ".color"), "\"blue\"")
        } finally {
          await recorder.close()
        }
        const next = await browser.get("/set/color/blue")
        assert.strictEqual(next.status, 200)
        assert.deepStrictEqual(JSON.parse((await browser.get("/dump")).body), { count: 1, warm: "up", color: "blue" })
        assert.strictEqual((await browser.get("/incr")).body, "2")
      })
    }))

  test("serialized-code and prototype-pollution payloads planted in a live session are inert, never a 500", () =>
    Effect.gen(function*() {
      const redis = yield* scopedRedis()
      const app = yield* serveOn(redis.url)
      yield* run(async () => {
        const admin = redis.admin()
        const marker = path.join(os.tmpdir(), `effect-redis-sessions-pwned-${randomBytes(6).toString("hex")}`)
        const gadget = `_$$ND_FUNC$$_function(){require('fs').writeFileSync(${JSON.stringify(marker)},'x')}()`
        const browser = await storedSession(app)
        const key = keyOf(browser.cookie!)
        await admin.hset(
          key,
          ".prefs",
          "{\"__proto__\":{\"polluted\":1}}",
          ".ctor",
          "{\"constructor\":{\"prototype\":{\"polluted\":1}}}",
          ".__proto__",
          "{\"polluted\":1}",
          ".gadget",
          JSON.stringify({ rce: gadget }),
          ".user",
          "{\"__proto__\":{\"polluted\":1}}"
        )
        const read = await browser.get("/read")
        const dump = await browser.get("/dump")
        const whoami = await browser.get("/whoami")
        const write = await browser.get("/set/after/yes")
        assert.deepStrictEqual([read.status, dump.status, whoami.status, write.status], [200, 200, 200, 200])
        assert.strictEqual(read.body, "1")
        assert.strictEqual(whoami.body, "anonymous", "a value that does not match its schema reads as absent")
        const data = JSON.parse(dump.body) as Record<string, unknown>
        assert.strictEqual(Object.getPrototypeOf(data), Object.prototype)
        assert.deepStrictEqual(Object.getOwnPropertyDescriptor(data, "__proto__")?.value, { polluted: 1 })
        assert.deepStrictEqual(data["gadget"], { rce: gadget })
        assert.strictEqual(JSON.parse((await browser.get("/dump")).body).after, "yes")
        assert.isUndefined(({} as Record<string, unknown>)["polluted"])
        assert.isFalse(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted"))
        assert.isFalse(fs.existsSync(marker))

        // a pickle in a field makes the whole record unreadable: anonymous, not a 500
        const pickled = await storedSession(app)
        await admin.hset(keyOf(pickled.cookie!), ".count", "cos\nsystem\n(S'echo pwned'\ntR.")
        const replies = [await pickled.get("/read"), await pickled.get("/dump"), await pickled.get("/whoami")]
        assert.deepStrictEqual(replies.map((r) => `${r.status} ${r.body}`), ["200 0", "200 {}", "200 anonymous"])
        assert.isUndefined(({} as Record<string, unknown>)["polluted"])
        assert.isFalse(fs.existsSync(marker))
      })
    }))

  test("corrupt meta fields planted in a live session never leave it permanently unwritable", () =>
    Effect.gen(function*() {
      const redis = yield* scopedRedis()
      const app = yield* serveOn(redis.url)
      yield* run(async () => {
        const admin = redis.admin()
        const cases: ReadonlyArray<readonly [string, string]> = [
          ["s", "abc"],
          ["t", "1e308"],
          ["t", "inf"],
          ["t", "0.5"],
          ["t", "-5"],
          ["a", "abc"],
          ["a", "0"],
          ["c", "abc"],
          ["l", "abc"],
          ["x", "abc"]
        ]
        const outcomes: Array<{ readonly label: string; readonly replies: ReadonlyArray<Reply> }> = []
        for (const [field, value] of cases) {
          const browser = await storedSession(app)
          await admin.hset(keyOf(browser.cookie!), field, value)
          const replies = [await browser.get("/read"), await browser.get("/incr"), await browser.get("/incr")]
          replies.push(await browser.get("/logout"))
          outcomes.push({ label: `${field}=${value}`, replies })
        }
        const show = ({ label, replies }: (typeof outcomes)[number]) =>
          `${label}: ${
            replies.map((r, i) => `${["read", "incr", "incr", "logout"][i]} ${r.status} ${r.body}`).join(", ")
          }`
        console.log(`corrupt meta fields:\n  ${outcomes.map(show).join("\n  ")}`)
        // readable or not, a corrupt record must not turn every write into a 503 (retrying never helps)
        for (const outcome of outcomes) {
          const [read, first, second, logout] = outcome.replies
          assert.deepStrictEqual(
            [read!.status, first!.status, second!.status, logout!.status],
            [200, 200, 200, 200],
            show(outcome)
          )
          assert.strictEqual(Number(second!.body), Number(first!.body) + 1, show(outcome))
        }
      })
    }))
})
