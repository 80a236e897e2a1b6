import type { HttpClient } from "@effect/platform"
import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as RedisSession from "../src/RedisSession.js"
import { type RedisServer, startRedisServer } from "./utils/RedisServer.js"
import { serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-wait-for-replicas-test-secret-40-chars"

class Replicated extends Context.Tag("test/Replicated")<Replicated, {
  readonly master: RedisServer
  readonly replica: RedisServer
  readonly client: HttpClient.HttpClient
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
    const client = yield* serveClient(
      RedisSession.layer({ secret: SECRET, url: master.url, commandTimeout: "2 seconds", waitReplicas: 1 })
    )
    return { master, replica, client }
  })
)

layer(ReplicatedLive, { excludeTestServices: true, timeout: "60 seconds" })("wait_replicas", (it) => {
  it.effect("login and logout are reported done only once a replica has them", () =>
    Effect.gen(function*() {
      const { client, master, replica } = yield* Replicated
      const browser = new TestBrowser(client)
      yield* browser.get("/incr")
      const login = yield* browser.get("/login/alice")
      assert.strictEqual(login.status, 200)
      const keys = yield* Effect.promise(() => master.admin().keys("*"))
      assert.isAbove(keys.length, 0)
      for (const key of keys) assert.strictEqual(yield* Effect.promise(() => replica.admin().exists(key)), 1)

      const [logout, unconfirmedLogin] = yield* Effect.acquireUseRelease(
        Effect.sync(() => replica.pause()),
        () =>
          Effect.gen(function*() {
            const logout = yield* browser.get("/logout")
            const other = new TestBrowser(client)
            yield* other.get("/incr")
            return [logout, yield* other.get("/login/bob")] as const
          }),
        () => Effect.sync(() => replica.resume())
      )
      assert.strictEqual(logout.status, 503)
      assert.isTrue(logout.cookies.every((c) => c.value !== ""))
      assert.strictEqual(unconfirmedLogin.status, 503)
      assert.strictEqual(unconfirmedLogin.cookies.length, 0)
      yield* Effect.promise(() =>
        until("the replica to catch up", () =>
          Effect.runPromise(Effect.map(browser.get("/logout"), (r) => r.status === 200)))
      )
      assert.strictEqual((yield* browser.get("/whoami")).body, "anonymous")
    }))
})
