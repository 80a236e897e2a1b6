import { Cookies, HttpClient, HttpClientResponse, HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as HttpSession from "../src/HttpSession.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as SessionId from "../src/SessionId.js"
import * as SessionStore from "../src/SessionStore.js"

const SECRET = "a-secret-of-at-least-32-characters!!"

const Described = Schema.Struct({
  id: Schema.String,
  idShown: Schema.String,
  created: Schema.Number,
  timeout: Schema.Number
})

const describeSession = Effect.gen(function*() {
  const id = yield* Session.id
  return {
    id: Redacted.value(id),
    idShown: `${id}`,
    created: DateTime.toEpochMillis(yield* Session.created),
    timeout: Duration.toMillis(yield* Session.timeout)
  }
})

const router = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/login",
    Session.set("user", "alice").pipe(
      Effect.zipRight(Session.bind("alice")),
      Effect.zipRight(describeSession),
      Effect.flatMap(HttpServerResponse.json)
    )
  ),
  HttpRouter.get("/describe", Effect.flatMap(describeSession, HttpServerResponse.json)),
  HttpRouter.post(
    "/edit",
    Session.set("user", "carol").pipe(
      Effect.zipRight(Session.remove("role")),
      Effect.zipRight(Session.entries),
      Effect.flatMap((entries) => HttpServerResponse.json(Object.fromEntries(entries)))
    )
  ),
  HttpRouter.post(
    "/timeout/:value",
    Effect.gen(function*() {
      const { value } = yield* HttpRouter.params
      return yield* Session.adjustTimeout(value as Duration.DurationInput).pipe(
        Effect.as(HttpServerResponse.text("ok")),
        Effect.catchTag("InvalidTimeout", (error) => HttpServerResponse.text(error.timeout, { status: 400 }))
      )
    })
  )
)

const serve = (store: Layer.Layer<SessionStore.SessionStore> = SessionStore.layerMemory) =>
  HttpServer.serve(router.pipe(HttpSession.middleware)).pipe(
    Layer.provide([store, SessionConfig.layer({ secret: SECRET, timeout: "20 minutes" })]),
    Layer.provideMerge(NodeHttpServer.layerTest)
  )

describe("Session speaks Effect's types", () => {
  it.scoped("id is Redacted, created a DateTime.Utc from the Clock, timeout a Duration; adjustTimeout takes a DurationInput", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2026, 11, 3, 12, 0, 0))
      const jar = yield* Ref.make(Cookies.empty)
      const client = (yield* HttpClient.HttpClient).pipe(HttpClient.withCookiesRef(jar))
      const read = (request: Effect.Effect<HttpClientResponse.HttpClientResponse, unknown>) =>
        Effect.flatMap(request, HttpClientResponse.schemaBodyJson(Described))

      const login = yield* read(client.post("/login"))
      assert.strictEqual(login.idShown, "<redacted>")
      assert.match(login.id, /^[0-9a-f]{32,}$/)
      assert.strictEqual(login.created, Date.UTC(2026, 11, 3, 12, 0, 0))
      assert.strictEqual(login.timeout, 20 * 60 * 1000)

      yield* TestClock.adjust("5 minutes")
      assert.strictEqual((yield* client.post("/timeout/90 minutes")).status, 200)
      const later = yield* read(client.get("/describe"))
      assert.strictEqual(later.id, login.id)
      assert.strictEqual(later.created, login.created, "created is when the session began, not this request")
      assert.strictEqual(later.timeout, 90 * 60 * 1000)

      const refused = yield* client.post("/timeout/1500 millis")
      assert.strictEqual(refused.status, 400)
      assert.strictEqual(yield* refused.text, "1s 500ms")
      assert.strictEqual(
        (yield* read(client.get("/describe"))).timeout,
        90 * 60 * 1000,
        "a refused timeout changes nothing"
      )
    }).pipe(Effect.provide(serve())))
})

describe("a broken id generator is a programming error", () => {
  const attempt = (generate: SessionId.Generator["Type"]) =>
    Effect.gen(function*() {
      const store = yield* SessionStore.makeMemory
      const response = yield* Effect.flatMap(HttpClient.HttpClient, (client) => client.post("/login")).pipe(
        Effect.provide(serve(Layer.succeed(SessionStore.SessionStore, store))),
        Effect.provideService(SessionId.Generator, generate)
      )
      const stored = yield* store.list("alice")
      return { status: response.status, body: yield* response.text, cookie: response.headers["set-cookie"], stored }
    })

  it.scoped("an id that is not cookie-safe: 500 with a body that says nothing, no cookie, nothing stored", () =>
    Effect.gen(function*() {
      const result = yield* attempt(() => Effect.succeed("../../etc/passwd"))
      assert.strictEqual(result.status, 500)
      assert.strictEqual(result.body, "Internal Server Error")
      assert.isUndefined(result.cookie)
      assert.deepStrictEqual(result.stored, [])
    }))

  it.scoped("only ids already in use: 500 after a bounded number of attempts, the existing session untouched", () =>
    Effect.gen(function*() {
      let calls = 0
      const store = yield* SessionStore.makeMemory
      yield* store.create("fixed-id-0123456789", {
        fields: new Map([["user", "\"bob\""]]),
        created: 0,
        timeout: 60,
        absoluteDeadline: undefined,
        principal: undefined
      }, SessionStore.noLimits)
      const exit = yield* Effect.flatMap(HttpClient.HttpClient, (client) => client.post("/login")).pipe(
        Effect.provide(serve(Layer.succeed(SessionStore.SessionStore, store))),
        Effect.provideService(SessionId.Generator, () => Effect.sync(() => (calls++, "fixed-id-0123456789"))),
        Effect.exit
      )
      assert.isTrue(Exit.isSuccess(exit))
      if (Exit.isSuccess(exit)) {
        assert.strictEqual(exit.value.status, 500)
        assert.strictEqual(yield* exit.value.text, "Internal Server Error")
      }
      assert.strictEqual(calls, 5)
      const kept = yield* store.load("fixed-id-0123456789")
      assert.strictEqual(kept._tag === "Some" ? kept.value.fields.get("user") : undefined, "\"bob\"")
    }))
})

/** A map that refuses changes once built: what a store hands the request path is read, never changed. */
class SealedMap<K, V> extends Map<K, V> {
  private sealed = true
  override set(key: K, value: V) {
    if (this.sealed) throw new Error("the request path changed a record its store loaded")
    return super.set(key, value)
  }
  override delete(key: K): boolean {
    throw new Error(`the request path changed a record its store loaded (delete ${String(key)})`)
  }
  override clear(): void {
    throw new Error("the request path changed a record its store loaded (clear)")
  }
}

describe("a store's records", () => {
  it.scoped("the request path never changes the record a store loaded: it copies it before the first change", () =>
    Effect.gen(function*() {
      const memory = yield* SessionStore.makeMemory
      const store: SessionStore.SessionStore["Type"] = {
        ...memory,
        load: (id) =>
          Effect.map(memory.load(id), Option.map((stored) => ({ ...stored, fields: new SealedMap(stored.fields) })))
      }
      yield* store.create("sealed-session-0123456789", {
        fields: new Map([["user", "\"alice\""], ["role", "\"admin\""]]),
        created: 0,
        timeout: 600,
        absoluteDeadline: undefined,
        principal: undefined
      }, SessionStore.noLimits)
      const cookie = `session=${SessionId.sign("sealed-session-0123456789", Redacted.make(SECRET))}`
      const response = yield* Effect.flatMap(
        HttpClient.HttpClient,
        (client) => client.post("/edit", { headers: { cookie } })
      ).pipe(Effect.provide(serve(Layer.succeed(SessionStore.SessionStore, store))))
      assert.strictEqual(response.status, 200, yield* response.text)
      assert.deepStrictEqual(yield* response.json, { user: "carol" })
      const stored = yield* memory.load("sealed-session-0123456789")
      assert.deepStrictEqual(
        Option.map(stored, (s) => Object.fromEntries(s.fields)),
        Option.some({ user: "\"carol\"" })
      )
    }))
})
