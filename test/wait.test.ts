import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as RedisSession from "../src/RedisSession.js"
import { Browser } from "./utils/Browser.js"
import { type RedisServer, startRedisServer } from "./utils/RedisServer.js"
import { serve } from "./utils/testApp.js"

const SECRET = "a-wait-for-replicas-test-secret-40-chars"

class Replicated extends Context.Tag("test/Replicated")<Replicated, {
  readonly master: RedisServer
  readonly replica: RedisServer
  readonly url: string
}>() {}

const until = async (what: string, check: () => Promise<boolean>) => {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

const ReplicatedLive = Layer.scoped(
  Replicated,
  Effect.gen(function*() {
    const master = yield* Effect.acquireRelease(
      Effect.promise(() => startRedisServer()),
      (s) => Effect.promise(() => s.stop())
    )
    const replica = yield* Effect.acquireRelease(
      Effect.promise(() => startRedisServer({ args: ["--replicaof", "127.0.0.1", String(master.port)] })),
      (s) => Effect.promise(() => s.stop())
    )
    yield* Effect.promise(() =>
      until(
        "the replica link",
        async () => (await replica.admin().info("replication")).includes("master_link_status:up")
      )
    )
    const url = yield* serve(
      RedisSession.layer({ secret: SECRET, url: master.url, commandTimeout: "2 seconds", waitReplicas: 1 })
    )
    return { master, replica, url }
  })
)

layer(ReplicatedLive, { excludeTestServices: true, timeout: "60 seconds" })("wait_replicas", (it) => {
  it.effect("login and logout are reported done only once a replica has them", () =>
    Effect.flatMap(Replicated, ({ master, replica, url }) =>
      Effect.promise(async () => {
        const browser = new Browser(url)
        await browser.get("/incr")
        const login = await browser.get("/login/alice")
        assert.strictEqual(login.status, 200)
        const keys = await master.admin().keys("*")
        assert.isAbove(keys.length, 0)
        for (const key of keys) assert.strictEqual(await replica.admin().exists(key), 1)

        replica.pause()
        try {
          const logout = await browser.get("/logout")
          assert.strictEqual(logout.status, 503)
          assert.isTrue(logout.cookies.every((c) => c.value !== ""))
          const other = new Browser(url)
          await other.get("/incr")
          const unconfirmedLogin = await other.get("/login/bob")
          assert.strictEqual(unconfirmedLogin.status, 503)
          assert.strictEqual(unconfirmedLogin.cookies.length, 0)
        } finally {
          replica.resume()
        }
        await until("the replica to catch up", async () => (await browser.get("/logout")).status === 200)
        assert.strictEqual((await browser.get("/whoami")).body, "anonymous")
      })))
})
