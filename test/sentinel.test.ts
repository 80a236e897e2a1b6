/**
 * Sessions on Redis Sentinel (master, replica and three Sentinels from the harness): the store contract,
 * the HTTP basics, settings, and two failovers under traffic — `SENTINEL FAILOVER`, then a SIGKILL of the
 * master — each with a bounded 503 window, no hung request and recovery without restarting the app.
 * Measured numbers are printed with console.log.
 *
 * One setup serves the whole file; the failover tests run last, in that order (the second kills the
 * master the first promoted, once the old master has become its replica).
 */
import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Redis } from "ioredis"
import { setTimeout as delay } from "node:timers/promises"
import { afterAll } from "vitest"
import { sessionKey } from "../src/internal/keys.js"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisSession from "../src/RedisSession.js"
import * as RedisSessionStore from "../src/RedisSessionStore.js"
import * as SessionConfig from "../src/SessionConfig.js"
import { SessionStore } from "../src/SessionStore.js"
import { storeContract } from "./contract/storeContract.js"
import { Browser } from "./utils/Browser.js"
import { type RedisSentinelSetup, type RedisServer, startSentinel } from "./utils/RedisServer.js"
import { serve, storeFromSettings, writeKeysConcurrently } from "./utils/testApp.js"
import {
  describeSummary,
  FAULT_TEST_TIMEOUT_MS,
  keyOfCookie,
  type LogCapture,
  makeLogCapture,
  REQUEST_BOUND_MS,
  type Sample,
  startTraffic,
  summarize,
  type Traffic,
  User,
  waitUntil
} from "./utils/traffic.js"

const SECRET = "a-redis-sentinel-test-secret-of-40-chars"

// ---------------------------------------------------------------------------------------------------
// One Sentinel setup for the whole file

let started: Promise<RedisSentinelSetup> | undefined
const sharedSetup = () => (started ??= startSentinel())
/**
 * A second setup for the kill test: after `SENTINEL FAILOVER` the Sentinels take 10+ s to turn the old
 * master into a synced replica, while a fresh setup starts in ~2 s (and in the background meanwhile).
 */
let startedForKill: Promise<RedisSentinelSetup> | undefined
const killSetup = () => (startedForKill ??= startSentinel())
let startedForPause: Promise<RedisSentinelSetup> | undefined
const pausedSetup = () => (startedForPause ??= startSentinel())
afterAll(async () => {
  const setups = [started, startedForKill, startedForPause]
  for (const setup of await Promise.all(setups.map((p) => p?.catch(() => undefined)))) await setup?.stop()
})

const sentinelsOf = (setup: RedisSentinelSetup) => setup.sentinelAddresses.map((a) => `${a.host}:${a.port}`)

const roleOf = async (server: RedisServer): Promise<string> =>
  String(((await server.admin().call("ROLE")) as Array<unknown>)[0])

/** The harness server that currently is the master, as the Sentinels say. */
const currentMaster = async (setup: RedisSentinelSetup): Promise<RedisServer> => {
  const { port } = await setup.currentMaster()
  return port === setup.master.port ? setup.master : setup.replica
}

// ---------------------------------------------------------------------------------------------------
// 1. the store contract on a Sentinel client

storeContract(
  "RedisSessionStore on Redis Sentinel",
  RedisSessionStore.layer().pipe(
    Layer.provide(
      Layer.unwrapEffect(
        Effect.map(
          Effect.promise(sharedSetup),
          (setup) => RedisClient.layer({ sentinels: sentinelsOf(setup), sentinelMasterName: setup.masterName })
        )
      )
    )
  ),
  { live: true, advance: (millis) => Effect.promise(() => delay(millis)) }
)

// ---------------------------------------------------------------------------------------------------
// 2. settings

layer(Layer.empty, { excludeTestServices: true, timeout: "120 seconds" })("Redis Sentinel from settings", (it) => {
  it.effect("redis.sessions.sentinels + sentinel_master_name give Sentinel options and a working store", () =>
    Effect.gen(function*() {
      const setup = yield* Effect.promise(sharedSetup)
      const sentinels = sentinelsOf(setup)
      const settings = {
        "redis.sessions.secret": SECRET,
        "redis.sessions.sentinels": sentinels.join(","),
        "redis.sessions.sentinel_master_name": setup.masterName
      }
      const decoded = yield* SessionConfig.fromSettings(settings)
      assert.deepStrictEqual(decoded.redis.sentinels, sentinels)
      assert.strictEqual(decoded.redis.sentinelMasterName, setup.masterName)
      assert.isUndefined(decoded.redis.clusterNodes)
      const missingName = yield* Effect.either(
        SessionConfig.fromSettings({ "redis.sessions.secret": SECRET, "redis.sessions.sentinels": sentinels[0] })
      )
      assert.isTrue(Either.isLeft(missingName))
      assert.include(JSON.stringify(missingName), "redis.sessions.sentinel_master_name")
      const client = yield* RedisClient.make(decoded.redis)
      assert.instanceOf(client.client, Redis)
      assert.strictEqual((client.client as Redis).options.sentinels?.length, 3)
      assert.strictEqual((client.client as Redis).options.name, setup.masterName)
      yield* Effect.gen(function*() {
        const store = yield* SessionStore
        const key = `settings:sentinel:${Date.now()}`
        const session = {
          fields: new Map([["a", "1"]]),
          created: Date.now(),
          timeout: 60,
          absoluteDeadline: undefined,
          principal: undefined
        }
        assert.isTrue(yield* store.create(key, session, { maxSize: 1024, maxSessionsPerPrincipal: undefined }))
        assert.strictEqual(Option.getOrThrow(yield* store.load(key)).fields.get("a"), "1")
        // it went to the master the Sentinels named
        const master = yield* Effect.promise(() => currentMaster(setup))
        assert.strictEqual(yield* Effect.promise(() => master.admin().exists(sessionKey("", key))), 1)
      }).pipe(Effect.provide(storeFromSettings(settings)))
    }).pipe(Effect.scoped))
})

// ---------------------------------------------------------------------------------------------------
// 3. HTTP end to end

class App extends Context.Tag("test/SentinelApp")<App, {
  readonly url: string
  readonly setup: RedisSentinelSetup
  readonly logs: LogCapture
}>() {}

const appOn = (setup: () => Promise<RedisSentinelSetup>) =>
  Layer.scoped(
    App,
    Effect.gen(function*() {
      const sentinel = yield* Effect.promise(setup)
      const logs = makeLogCapture()
      const url = yield* logs.capture(
        serve(
          RedisSession.layer({
            secret: SECRET,
            sentinels: sentinelsOf(sentinel),
            sentinelMasterName: sentinel.masterName
          })
        )
      )
      return { url, setup: sentinel, logs }
    })
  )

const withApp = (f: (app: App["Type"]) => Promise<void>) => Effect.flatMap(App, (app) => Effect.promise(() => f(app)))

const makeUsers = async (url: string, count: number): Promise<Array<User>> => {
  const users = Array.from({ length: count }, (_, i) => new User(url, i, 20))
  for (const user of users) assert.strictEqual((await user.request("/incr")).status, 200)
  return users
}

/**
 * Waits until the application serves again from `master`: in the last 1.5 s every request succeeded, and a
 * session created now is stored on `master`.
 */
const waitForRecovery = (url: string, traffic: Traffic, master: RedisServer) =>
  waitUntil(`the application to recover on ${master.port} by itself`, 20_000, async () => {
    const recent = traffic.samples.filter((s) => s.started > Date.now() - 1_500)
    if (recent.length === 0 || !recent.every((s) => s.status === 200)) return false
    const probe = new Browser(url)
    if ((await probe.get("/incr")).status !== 200) return false
    return (await master.admin().exists(keyOfCookie(probe.cookie!))) === 1
  })

/** A field/value reply (a flat RESP2 array, or a RESP3 map) as a record of strings. */
const recordOf = (reply: unknown): Record<string, string> => {
  const entries: Array<[unknown, unknown]> = Array.isArray(reply)
    ? Array.from({ length: Math.floor(reply.length / 2) }, (_, i) => [reply[2 * i], reply[2 * i + 1]])
    : reply instanceof Map
    ? [...reply.entries()]
    : Object.entries(reply as object)
  return Object.fromEntries(entries.map(([k, v]) => [String(k), String(v)]))
}

/** Waits until `server` replicates `master` with its link up, as the Sentinels see it too. */
const waitForReplica = (setup: RedisSentinelSetup, server: RedisServer, master: RedisServer) =>
  waitUntil(`${server.port} to become a healthy replica of ${master.port}`, 30_000, async () => {
    const info = await server.admin().info("replication")
    if (!info.includes("role:slave") || !info.includes(`master_port:${master.port}`)) return false
    if (!info.includes("master_link_status:up")) return false
    for (const sentinel of setup.sentinels) {
      const replicas = (await sentinel.admin().call("SENTINEL", "REPLICAS", setup.masterName)) as Array<unknown>
      const healthy = replicas.map(recordOf).some((record) =>
        record["port"] === String(server.port) && record["flags"] === "slave" &&
        record["master-link-status"] === "ok"
      )
      if (!healthy) return false
    }
    return true
  })

const report = (label: string, samples: ReadonlyArray<Sample>, since: number, users: ReadonlyArray<User>) => {
  const summary = summarize(samples)
  const lost = users.flatMap((u) => u.lost)
  console.log(describeSummary(label, summary))
  console.log(
    `${label}: failures from +${summary.firstFailure === undefined ? "-" : summary.firstFailure - since} ms ` +
      `to +${summary.lastFailure === undefined ? "-" : summary.lastFailure - since} ms after the fault; ` +
      `lost acknowledged writes: ${lost.reduce((n, a) => n + a.expected - a.actual, 0)} increments in ` +
      `${new Set(lost.map((a) => a.user)).size} of ${users.length} sessions (largest ${
        Math.max(0, ...lost.map((a) => a.expected - a.actual))
      })`
  )
  return summary
}

/** Every failure a clean 503 in one bounded window, no hung request, every user served again at the end. */
const assertBoundedOutage = (samples: ReadonlyArray<Sample>, users: ReadonlyArray<User>, windowMs: number) => {
  const summary = summarize(samples)
  assert.deepStrictEqual([...new Set(samples.filter((s) => s.status !== 200).map((s) => s.status))], [
    ...(summary.failed > 0 ? [503] : [])
  ])
  assert.isAtMost(summary.maxLatencyMs, REQUEST_BOUND_MS)
  assert.isAtMost(summary.errorWindowMs, windowMs)
  for (const user of users) assert.strictEqual(user.samples.at(-1)!.status, 200)
}

layer(appOn(sharedSetup), { excludeTestServices: true, timeout: "120 seconds" })("HTTP on Redis Sentinel", (it) => {
  it.effect("sessions are written and read back across requests, on the master", () =>
    withApp(async ({ setup, url }) => {
      const master = await currentMaster(setup)
      for (let i = 0; i < 4; i++) {
        const browser = new Browser(url)
        assert.strictEqual((await browser.get("/incr")).body, "1")
        assert.strictEqual((await browser.get(`/set/name/b${i}`)).status, 200)
        assert.strictEqual((await browser.get("/incr")).body, "2")
        assert.deepStrictEqual(JSON.parse((await browser.get("/dump")).body), { count: 2, name: `b${i}` })
        const key = keyOfCookie(browser.cookie!)
        assert.strictEqual(await master.admin().exists(key), 1)
        assert.isAbove(await master.admin().pttl(key), 0)
      }
    }))

  it.effect("login regenerates the id (old key gone, data moved); logout deletes the session", () =>
    withApp(async ({ setup, url }) => {
      const master = await currentMaster(setup)
      const browser = new Browser(url)
      await browser.get("/incr")
      const oldCookie = browser.cookie!
      assert.strictEqual((await browser.get("/login/erin")).status, 200)
      assert.notStrictEqual(browser.cookie, oldCookie)
      assert.strictEqual(await master.admin().exists(keyOfCookie(oldCookie)), 0)
      assert.strictEqual((await browser.get("/whoami")).body, "erin")
      assert.strictEqual((await browser.get("/read")).body, "1")
      const attacker = new Browser(url)
      attacker.cookie = oldCookie
      assert.strictEqual((await attacker.get("/whoami")).body, "anonymous")
      const key = keyOfCookie(browser.cookie!)
      assert.strictEqual((await browser.get("/logout")).status, 200)
      assert.isUndefined(browser.cookie)
      assert.strictEqual(await master.admin().exists(key), 0)
      assert.strictEqual((await browser.get("/whoami")).body, "anonymous")
    }))

  it.effect("200 concurrent requests writing their own keys on one session all persist", () =>
    withApp(async ({ url }) => {
      const browser = new Browser(url)
      await browser.get("/incr")
      const { data, failed, missing } = await writeKeysConcurrently(browser, 200)
      assert.deepStrictEqual(failed, [])
      assert.deepStrictEqual(missing, [])
      assert.strictEqual(data["count"], 1)
    }))

  it.effect(
    "SENTINEL FAILOVER under traffic: bounded 503 window, no hang, the app follows the new master",
    () =>
      withApp(async ({ logs, setup, url }) => {
        void killSetup().catch(() => undefined) // start the kill test's setup meanwhile
        const oldMaster = await currentMaster(setup)
        const newMaster = oldMaster === setup.master ? setup.replica : setup.master
        const users = await makeUsers(url, 12)
        const traffic = startTraffic(users, { maxRequests: 100_000, maxDurationMs: 60_000 })
        await delay(500)
        const failoverAt = Date.now()
        let switchedAfter: number, followedAfter: number
        try {
          await setup.failover()
          switchedAfter = Date.now() - failoverAt
          followedAfter = await waitForRecovery(url, traffic, newMaster)
        } finally {
          await traffic.stop()
        }
        const samples = traffic.samples
        // what each user reads now (from the new master) tells whether acknowledged writes were lost
        for (const user of users) await user.request("/read")
        report("sentinel SENTINEL FAILOVER", samples, failoverAt, users)
        console.log(
          `sentinel SENTINEL FAILOVER: every Sentinel names the new master ${switchedAfter} ms after the command; ` +
            `the app serves from it (1.5 s without failure, new sessions stored there) ${followedAfter} ms later; ` +
            `app logs ${JSON.stringify(logs.summary())}`
        )
        assertBoundedOutage(samples, users, 15_000)
        // every write after the switch goes to the new master soon: a client left on the old master would
        // have its writes acknowledged and then discarded when the Sentinels demote it (10+ s later)
        assert.isAtMost(followedAfter, 5_000)
      }),
    FAULT_TEST_TIMEOUT_MS
  )
})

/** Kills the current master under traffic (after pausing the first Sentinel, if asked) and checks recovery. */
const killUnderTraffic = async (
  label: string,
  { setup, url }: App["Type"],
  options: { readonly pauseFirstSentinel: boolean }
) => {
  const victim = await currentMaster(setup)
  const survivor = victim === setup.master ? setup.replica : setup.master
  // the survivor must be a synced replica the Sentinels trust, or no failover happens
  await waitForReplica(setup, survivor, victim)
  const users = await makeUsers(url, 12)
  const traffic = startTraffic(users, { maxRequests: 100_000, maxDurationMs: 60_000 })
  // the client asks the Sentinels in order and keeps the one that answered first in front: the first
  if (options.pauseFirstSentinel) setup.sentinels[0]!.pause()
  await delay(500)
  const killedAt = Date.now()
  let promotedAfter: number, recoveredAfter: number
  try {
    await victim.kill()
    promotedAfter = await waitUntil(
      "the Sentinels to promote the replica",
      20_000,
      async () => (await setup.currentMaster()).port === survivor.port && (await roleOf(survivor)) === "master"
    )
    recoveredAfter = await waitForRecovery(url, traffic, survivor) + promotedAfter
  } finally {
    await traffic.stop()
    if (options.pauseFirstSentinel) setup.sentinels[0]!.resume()
  }
  const samples = traffic.samples
  for (const user of users) await user.request("/read")
  report(label, samples, killedAt, users)
  console.log(
    `${label}: replica promoted ${promotedAfter} ms after the kill, ` +
      `app serving from it (1.5 s without failure, new sessions stored there) by +${recoveredAfter} ms`
  )
  assertBoundedOutage(samples, users, 15_000)
}

layer(appOn(killSetup), { excludeTestServices: true, timeout: "120 seconds" })(
  "HTTP on Redis Sentinel, master killed",
  (it) => {
    it.effect(
      "master killed under traffic: bounded 503 window, no hang, the app follows the promoted replica",
      () =>
        Effect.flatMap(App, (app) =>
          Effect.promise(() => {
            void pausedSetup().catch(() => undefined) // start the next test's setup meanwhile
            return killUnderTraffic("sentinel master kill", app, { pauseFirstSentinel: false })
          })),
      FAULT_TEST_TIMEOUT_MS
    )
  }
)

layer(appOn(pausedSetup), { excludeTestServices: true, timeout: "120 seconds" })(
  "HTTP on Redis Sentinel, master killed while a Sentinel hangs",
  (it) => {
    it.effect(
      "a hung (SIGSTOPped) Sentinel does not keep the client from finding the promoted replica",
      () =>
        Effect.flatMap(
          App,
          (app) =>
            Effect.promise(() =>
              killUnderTraffic("sentinel master kill, first Sentinel paused", app, { pauseFirstSentinel: true })
            )
        ),
      FAULT_TEST_TIMEOUT_MS
    )
  }
)
