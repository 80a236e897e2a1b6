import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import { readFileSync } from "node:fs"
import * as HttpSession from "../src/HttpSession.js"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisSessionStore from "../src/RedisSessionStore.js"
import * as SessionConfig from "../src/SessionConfig.js"
import { storeContract } from "./contract/storeContract.js"
import { type RedisServer, startRedisServer, TestRedis, withAdmin } from "./utils/RedisServer.js"
import { serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-secret-of-at-least-32-characters-for-the-acl"
const PASSWORD = "acl-test-password"

/** The `ACL SETUSER` line of docs/operations.md, its placeholder password replaced: the test runs what the docs say. */
const documentedAcl = (() => {
  const docs = readFileSync(new URL("../docs/operations.md", import.meta.url), "utf8")
  const line = docs.split("\n").find((text) => text.startsWith("ACL SETUSER sessions "))
  if (line === undefined) throw new Error("docs/operations.md has no 'ACL SETUSER sessions' line")
  return line.split(" ").slice(2).map((word) => word.startsWith(">") ? `>${PASSWORD}` : word)
})()

/** Creates the documented user, with `change` (an ACL rule such as `-hdel`) applied after the documented rules. */
const createUser = (server: RedisServer, ...change: ReadonlyArray<string>) =>
  withAdmin(server, (admin) => admin.call("ACL", "SETUSER", ...documentedAcl, ...change))

const clientAsUser = (server: RedisServer) =>
  RedisClient.layer({ host: server.host, port: server.port, username: "sessions", password: Redacted.make(PASSWORD) })

storeContract(
  "RedisSessionStore as the documented ACL user",
  RedisSessionStore.layer({ prefix: "session:" }).pipe(
    Layer.provide(Layer.unwrapEffect(Effect.gen(function*() {
      const server = yield* TestRedis
      yield* createUser(server)
      return clientAsUser(server)
    }))),
    Layer.provide(TestRedis.layer)
  ),
  { live: true, advance: (millis) => Effect.sleep(millis) }
)

/** The test app over HTTP as the ACL user, on a server of its own. */
const appAsUser = (...change: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const server = yield* Effect.acquireRelease(
      Effect.promise(() => startRedisServer()),
      (started) => Effect.promise(() => started.stop())
    )
    yield* createUser(server, ...change)
    const sessions = HttpSession.layerRouter.pipe(
      Layer.provide(RedisSessionStore.layer({ prefix: "session:" })),
      Layer.provide(clientAsUser(server)),
      Layer.provide(SessionConfig.layer({ secret: SECRET, maxSessionsPerPrincipal: 2 }))
    )
    return new TestBrowser(yield* serveClient(sessions))
  })

describe("the documented ACL", () => {
  it.scoped("is enough for sign-in, bound sessions, their index, revocation and logout", () =>
    Effect.gen(function*() {
      const laptop = yield* appAsUser()
      const phone = new TestBrowser(laptop.client)
      const tablet = new TestBrowser(laptop.client)
      for (const browser of [laptop, phone, tablet]) {
        assert.strictEqual((yield* browser.get("/sign-in/alice")).body, "welcome")
      }
      assert.strictEqual((yield* tablet.get("/whoami")).body, "alice")
      assert.strictEqual((yield* phone.get("/incr")).status, 200)
      assert.strictEqual((yield* tablet.get("/sessions/alice")).status, 200)
      assert.strictEqual((yield* tablet.get("/logout")).status, 200)
      assert.strictEqual((yield* phone.get("/revoke-all/alice")).body, "1")
      assert.strictEqual((yield* phone.get("/whoami")).body, "anonymous")
    }), { timeout: 30_000 })

  it.scoped(
    "misses nothing: without HDEL, logging out a bound session fails with a 503, typed",
    () =>
      Effect.gen(function*() {
        const browser = yield* appAsUser("-hdel")
        assert.strictEqual((yield* browser.get("/sign-in/bob")).body, "welcome")
        assert.strictEqual((yield* browser.get("/logout")).status, 503)
      }).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.None))),
    { timeout: 30_000 }
  )
})
