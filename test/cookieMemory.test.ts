import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import * as SessionId from "../src/SessionId.js"
import { memorySessions, serveClient } from "./utils/testApp.js"

const SECRET = "a-secret-of-at-least-32-characters-for-memory"

setFlagsFromString("--expose-gc")
const collect = runInNewContext("gc") as () => void

const heapAfterCollection = () => {
  collect()
  collect()
  return process.memoryUsage().heapUsed
}

describe("remembered cookies", () => {
  it.scoped("do not keep the Cookie header they came in alive", () =>
    Effect.gen(function*() {
      const client = yield* serveClient(memorySessions({ secret: SECRET }))
      const padding = "x".repeat(8 * 1024)
      const requests = 1_000
      /** Heap growth over `requests` requests, each with an 8 KB Cookie header holding a fresh signed id. */
      const growthWith = (cookieName: string) =>
        Effect.gen(function*() {
          const before = heapAfterCollection()
          for (let i = 0; i < requests; i++) {
            const id = SessionId.sign(randomBytes(32).toString("hex"), Redacted.make(SECRET))
            const response = yield* client.get("/read", {
              headers: { cookie: `tracking=${padding}${i}; ${cookieName}=${id}` }
            })
            assert.strictEqual(yield* response.text, "0")
          }
          return heapAfterCollection() - before
        })
      yield* growthWith("warm-up")
      // the same requests with a cookie the session layer ignores: what the test itself leaves behind
      const control = yield* growthWith("not-the-session")
      const remembered = yield* growthWith("session")
      // every id verified and is remembered; had each kept its header, that would be 8 MB more than the control
      const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`
      assert.isBelow(remembered - control, 4 * 1024 * 1024, `grew by ${mb(remembered)}, control ${mb(control)}`)
    }), { timeout: 60_000 })
})
