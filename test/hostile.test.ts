/**
 * Hostile input over HTTP: property tests over the Cookie header (random bytes, tampered, truncated,
 * extended, stripped and wrongly signed cookies, duplicate and look-alike names, 10 KB values, 500
 * cookies), prototype keys and values, deep and oversized values, client-chosen ids, secret rotation,
 * the absolute timeout and `__Host-` cookies.
 *
 * One private redis-server for the file. Command counts come from `INFO commandstats` around every
 * property run (so a failing run shrinks) and from the MONITOR recorder over every property.
 */
import { HttpLayerRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import fc, { type Arbitrary } from "fast-check"
import type { Redis } from "ioredis"
import { createServer } from "node:http"
import { sessionKey } from "../src/internal/keys.js"
import * as RedisSession from "../src/RedisSession.js"
import * as Session from "../src/Session.js"
import type * as SessionConfig from "../src/SessionConfig.js"
import { SessionConfigError } from "../src/SessionError.js"
import * as SessionId from "../src/SessionId.js"
import type * as SessionIndex from "../src/SessionIndex.js"
import { Browser, parseSetCookie, type Reply } from "./utils/Browser.js"
import { rawRequest, type RawResponse, sleep } from "./utils/load.js"
import { type CommandRecorder, commandsDuring, freePort, type RedisServer, TestRedis } from "./utils/RedisServer.js"
import { memorySessions, Routes } from "./utils/testApp.js"

const SECRET = "a-hostile-input-test-secret-of-40-chars!"
const NEW_SECRET = "the-rotated-in-secret-of-at-least-32-chars"
const MAX_SIZE = 1024
const RUNS = 300
const SEED = Number(process.env["FC_SEED"] ?? 20_261_125)

// ---------------------------------------------------------------------------------------------------
// the app: the shared test routes plus two of our own

const param = (name: string) => Effect.map(HttpLayerRouter.params, (p) => p[name] ?? "")

const Extra = HttpLayerRouter.addAll([
  HttpLayerRouter.route(
    "POST",
    "/json/:key",
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const text = yield* request.text
      const value = yield* Effect.try(() => JSON.parse(text) as unknown)
      yield* Session.set(yield* param("key"), value)
      return HttpServerResponse.text("stored")
    }).pipe(
      Effect.catchTags({
        SessionEncodeError: (e) =>
          Effect.succeed(HttpServerResponse.text(`SessionEncodeError ${e.key}`, { status: 422 })),
        UnknownException: () => Effect.succeed(HttpServerResponse.text("bad json", { status: 400 }))
      })
    )
  ),
  HttpLayerRouter.route("GET", "/keys", Effect.map(Session.keys, (keys) => HttpServerResponse.text(keys.join(","))))
])

interface Served {
  readonly url: string
  readonly port: number
}

const serveWith = <E>(
  session: Layer.Layer<
    | HttpLayerRouter.Request<"Requires", Session.Session>
    | HttpLayerRouter.Request<"Requires", SessionIndex.SessionIndex>,
    E
  >
): Effect.Effect<Served, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      HttpLayerRouter.serve(Layer.merge(Routes, Extra).pipe(Layer.provide(session)), {
        disableLogger: true,
        disableListenLog: true
      }).pipe(Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })))
    )
    const address = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
    return { url: `http://127.0.0.1:${address.port}`, port: address.port }
  })

const serveRedis = (redis: RedisServer, options: Partial<SessionConfig.Options> = {}) =>
  serveWith(RedisSession.layer({ secret: SECRET, url: redis.url, ...options }))

class Hostile extends Context.Tag("test/Hostile")<Hostile, {
  readonly redis: RedisServer
  /** On Redis, `maxSize` 1024. */
  readonly main: Served
  /** On the memory store, `maxSize` 1024. */
  readonly memory: Served
}>() {}

const HostileLive = Layer.scoped(
  Hostile,
  Effect.gen(function*() {
    const redis = yield* TestRedis
    const main = yield* serveRedis(redis, { maxSize: MAX_SIZE })
    const memory = yield* serveWith(memorySessions({ secret: SECRET, maxSize: MAX_SIZE }))
    return { redis, main, memory }
  }).pipe(Logger.withMinimumLogLevel(LogLevel.None))
).pipe(Layer.provide(TestRedis.layer))

/** A test body with the shared app, its own scope (for extra servers) and muted logs. */
const hostile = (f: (h: Hostile["Type"]) => Effect.Effect<void, unknown, Scope.Scope>) =>
  Effect.flatMap(Hostile, f).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None))

const run = <A>(f: () => Promise<A>) => Effect.promise(f)

// ---------------------------------------------------------------------------------------------------
// helpers

const keyOf = (cookie: string) => sessionKey("", cookie.slice(0, cookie.lastIndexOf(".")))
const idOf = (cookie: string) => cookie.slice(0, cookie.lastIndexOf("."))

/** A browser holding a stored session with count=1, the scripts loaded into Redis. */
const withSession = async (url: string, cookieName = "session") => {
  const browser = new Browser(url, cookieName)
  await browser.get("/incr")
  await browser.get("/read")
  assert.isDefined(browser.cookie)
  return browser
}

/** POSTs `body` with the browser's cookie, keeping `Set-Cookie` like `Browser.get`. */
const post = async (browser: Browser, route: string, body: string): Promise<Reply> => {
  const response = await fetch(browser.baseUrl + route, {
    method: "POST",
    body,
    headers: browser.cookie === undefined ? {} : { cookie: `${browser.cookieName}=${browser.cookie}` },
    signal: AbortSignal.timeout(10_000)
  })
  const cookies = response.headers.getSetCookie().map(parseSetCookie)
  for (const cookie of cookies) {
    if (cookie.name === browser.cookieName) {
      browser.cookie = cookie.attributes.get("max-age") === "0" ? undefined : cookie.value
    }
  }
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: await response.text(),
    cookies
  }
}

const withCookie = async (url: string, cookie: string, route: string) => {
  const browser = new Browser(url)
  browser.cookie = cookie
  return { reply: await browser.get(route), browser }
}

/** Commands of the harness itself, left out of the counts. */
const HARNESS_COMMANDS = new Set(["info", "dbsize", "echo", "monitor", "ping", "hello", "client", "command"])

/**
 * Calls since the server started, from `INFO commandstats`: of every command but the harness's own
 * (`total`; commands run inside scripts count too), and of script calls (`scripts`).
 */
const appCommandCount = async (admin: Redis) => {
  const info = await admin.info("commandstats")
  let total = 0
  let scripts = 0
  for (const [, name = "", calls = "0"] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (!HARNESS_COMMANDS.has(name.split("|")[0]!)) total += Number(calls)
    if (name === "evalsha" || name === "eval") scripts += Number(calls)
  }
  return { total, scripts }
}

const notPolluted = () => {
  assert.isUndefined(({} as Record<string, unknown>)["polluted"])
  assert.isFalse(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted"))
  assert.strictEqual(({}).constructor, Object)
}

// ---------------------------------------------------------------------------------------------------
// Cookie header model

/** RFC 6265 §5.2: names and values are trimmed of SP and HTAB only. */
const trimWsp = (s: string) => s.replace(/^[ \t]+|[ \t]+$/g, "")

/** Whether some `session` pair of the header carries exactly `valid` (the only validly signed value). */
const carries = (header: string, valid: string) =>
  header.split(";").some((pair) => {
    const eq = pair.indexOf("=")
    if (eq === -1 || trimWsp(pair.slice(0, eq)) !== "session") return false
    let value = trimWsp(pair.slice(eq + 1))
    if (value.length >= 2 && value.startsWith("\"") && value.endsWith("\"")) value = value.slice(1, -1)
    return value === valid
  })

/** Bytes Node's HTTP parser refuses in a header value: it answers 400 before the app runs. */
const refusedByNode = (header: Buffer) => header.some((b) => (b < 0x20 && b !== 0x09) || b === 0x7f)

const B64URL = [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"]

const withoutCrLf = (bytes: Uint8Array) => Buffer.from(bytes.filter((b) => b !== 10 && b !== 13))

/** Mutations of a valid `id.mac` cookie value; none equals it. */
const tamperedValues = (valid: string): Arbitrary<string> => {
  const id = idOf(valid)
  const mac = valid.slice(id.length + 1)
  const replaceAt = (s: string, i: number, c: string) => s.slice(0, i) + c + s.slice(i + 1)
  const last = B64URL.indexOf(mac.at(-1)!)
  const macBytes = Buffer.from(mac, "base64url")
  const suffix = fc.string({
    unit: fc.constantFrom(...B64URL, ".", "=", "%", "~", "!", ":"),
    minLength: 1,
    maxLength: 60
  })
  return fc.oneof(
    // one character of the id changed, signature unchanged
    fc.tuple(fc.nat(id.length - 1), fc.constantFrom(...B64URL)).map(([i, c]) => `${replaceAt(id, i, c)}.${mac}`),
    // one character of the MAC changed
    fc.tuple(fc.nat(mac.length - 1), fc.constantFrom(...B64URL)).map(([i, c]) => `${id}.${replaceAt(mac, i, c)}`),
    // the same MAC bytes, non-canonical last character (its 2 unused bits set)
    fc.integer({ min: 1, max: 3 }).map((bits) =>
      `${id}.${mac.slice(0, -1)}${B64URL[(last & ~3) | ((last + bits) & 3)]}`
    ),
    // truncated, extended, prefixed
    fc.nat(valid.length - 1).map((n) => valid.slice(0, n)),
    suffix.map((s) => valid + s),
    suffix.map((s) => s + valid),
    // stripped or re-encoded signatures
    fc.constantFrom(
      id,
      `${id}.`,
      `.${mac}`,
      mac,
      `s:${valid}`,
      `s%3A${valid}`,
      `${id}..${mac}`,
      `${valid}.${mac}`,
      `${id}%2E${mac}`,
      `${id}%2e${mac}`,
      `${id.toUpperCase()}.${mac}`,
      `${id}.${mac.toLowerCase()}`,
      `${valid}=`,
      `${valid}==`,
      `${id}.${macBytes.toString("base64")}`,
      `${id}.${macBytes.toString("hex")}`,
      `${id}.${mac.slice(0, 42)}`,
      encodeURIComponent(`${id}.${macBytes.toString("base64")}`)
    ),
    // signed with a wrong secret, the real id or another well-formed one
    fc.tuple(
      fc.string({ minLength: 32, maxLength: 64 }),
      fc.oneof(fc.constant(id), fc.stringMatching(/^[A-Za-z0-9_-]{16,128}$/))
    ).map(([secret, anId]) => SessionId.sign(anId, Redacted.make(secret))),
    // 10 KB values
    fc.uint8Array({ minLength: 7_500, maxLength: 7_500 }).map((bytes) => Buffer.from(bytes).toString("base64url")),
    fc.constant(valid.repeat(93))
  ).filter((value) => value !== valid)
}

/** 500 unrelated cookies. */
const FILLER = Array.from({ length: 500 }, (_, i) => `c${i}=v${i}`).join("; ")

interface Probe {
  readonly admin: Redis
  readonly port: number
  readonly valid: string
  readonly keys: number
  /** Runs whose header carried the valid cookie (each costs exactly one load). */
  verified: number
}

/** Sends the header to `/read` and checks status, body, cookies, Redis commands and key count. */
const probe = async (p: Probe, header: Buffer) => {
  const verifies = carries(header.toString("latin1"), p.valid)
  const refused = refusedByNode(header)
  const before = await appCommandCount(p.admin)
  const response: RawResponse = await rawRequest({
    port: p.port,
    path: "/read",
    headers: [Buffer.concat([Buffer.from("Cookie: "), header])]
  })
  const after = await appCommandCount(p.admin)
  // a load is one script call (plus the commands it runs inside Redis); anything else is one too many
  const commands = verifies && !refused ? after.scripts - before.scripts : after.total - before.total
  const keys = await p.admin.dbsize()
  const issued = response.headers
    .filter(([name]) => name === "set-cookie")
    .map(([, value]) => parseSetCookie(value))
    .filter((cookie) => cookie.value !== "")
  if (verifies && !refused) p.verified++
  assert.deepStrictEqual(
    { status: response.status, body: refused ? "" : response.body, commands, keys, issued: issued.length },
    {
      status: refused ? 400 : 200,
      body: refused ? "" : verifies ? "1" : "0",
      commands: verifies && !refused ? 1 : 0,
      keys: p.keys,
      issued: 0
    },
    `Cookie: ${JSON.stringify(header.toString("latin1").slice(0, 300))}`
  )
}

/** Runs a property of Cookie headers against `/read` of the main app, with the recorder around it. */
const cookieProperty = (
  h: Hostile["Type"],
  label: string,
  headers: (valid: string) => Arbitrary<Buffer>
) =>
  run(async () => {
    const owner = await withSession(h.main.url)
    const admin = h.redis.admin()
    const p: Probe = { admin, port: h.main.port, valid: owner.cookie!, keys: await admin.dbsize(), verified: 0 }
    let recorder: CommandRecorder | undefined
    const started = Date.now()
    try {
      recorder = await h.redis.recordCommands()
      await recorder.settle()
      recorder.reset()
      await fc.assert(fc.asyncProperty(headers(p.valid), (header) => probe(p, header)), { numRuns: RUNS, seed: SEED })
      await recorder.settle()
      const names = recorder.commands().map((c) => c.name)
      console.log(
        `${label}: ${RUNS} runs in ${Date.now() - started} ms (seed ${SEED}); ${p.verified} carried the valid ` +
          `cookie; Redis received ${names.length} command(s)`
      )
      assert.deepStrictEqual(names, Array(p.verified).fill("EVALSHA"), "one load per verified cookie, none otherwise")
    } catch (error) {
      console.log(`${label}: failed with fast-check seed ${SEED} (rerun with FC_SEED=${SEED})`)
      throw error
    } finally {
      await recorder?.close()
    }
  })

const raw = (port: number, ...cookieHeader: ReadonlyArray<Buffer | string>) =>
  rawRequest({
    port,
    path: "/read",
    headers: [
      Buffer.concat([
        Buffer.from("Cookie: "),
        ...cookieHeader.map((part) => typeof part === "string" ? Buffer.from(part, "latin1") : part)
      ])
    ]
  })

// ---------------------------------------------------------------------------------------------------

layer(HostileLive, { excludeTestServices: true, timeout: "60 seconds" })("hostile input", (it) => {
  it.effect("property: random bytes and strings as the Cookie header never cost a command or a 5xx", () =>
    hostile((h) =>
      cookieProperty(h, "random Cookie headers", () =>
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map(withoutCrLf),
          fc.string({ unit: "binary", maxLength: 120 }).map((s) => withoutCrLf(Buffer.from(s, "utf8"))),
          fc.tuple(
            fc.constantFrom("session=", " session = ", "session=\"", "session=s:", "session=.", "session=%"),
            fc.uint8Array({ maxLength: 250 })
          ).map(([prefix, bytes]) => Buffer.concat([Buffer.from(prefix), withoutCrLf(bytes)])),
          fc.stringMatching(/^[A-Za-z0-9_-]{16,128}\.[A-Za-z0-9_-]{43}$/).map((v) => Buffer.from(`session=${v}`))
        ))
    ))

  it.effect("property: tampered, truncated, extended, stripped and wrongly signed cookies are anonymous", () =>
    hostile((h) =>
      cookieProperty(
        h,
        "tampered cookies",
        (valid) =>
          fc.tuple(tamperedValues(valid), fc.constantFrom("", " ", "\t"), fc.boolean()).map(([value, pad, quoted]) =>
            Buffer.from(`session=${pad}${quoted ? `"${value}"` : value}${pad}`, "latin1")
          )
      )
    ))

  it.effect("property: duplicate, look-alike and percent-encoded names, 500 cookies: only the real one counts", () =>
    hostile((h) =>
      cookieProperty(h, "composed Cookie headers", (valid) => {
        const piece = fc.oneof(
          { weight: 2, arbitrary: fc.constant(`session=${valid}`) },
          { weight: 3, arbitrary: tamperedValues(valid).map((value) => `session=${value}`) },
          {
            weight: 3,
            arbitrary: fc.constantFrom(
              `%73ession=${valid}`,
              `sess%69on=${valid}`,
              `Session=${valid}`,
              `SESSION=${valid}`,
              `session%3D${valid}`,
              `"session"=${valid}`,
              `session_=${valid}`,
              `_session=${valid}`,
              `session.=${valid}`,
              `session==${valid}`,
              `=${valid}`,
              "session=",
              "session",
              valid
            )
          },
          { weight: 1, arbitrary: fc.constant(FILLER) },
          { weight: 2, arbitrary: fc.stringMatching(/^[a-z_]{1,8}=[A-Za-z0-9]{0,16}$/) }
        )
        return fc.tuple(fc.array(piece, { minLength: 1, maxLength: 5 }), fc.constantFrom("; ", ";", " ; "))
          .map(([parts, separator]) => Buffer.from(parts.join(separator), "latin1"))
          .filter((header) => header.length < 15_000)
      })
    ))

  it.effect("duplicates: the first cookie that verifies wins, in either order and behind 500 other cookies", () =>
    hostile((h) =>
      run(async () => {
        const owner = await withSession(h.main.url)
        await owner.get("/incr")
        const valid = owner.cookie!
        const forged = `${idOf(valid)}.${"A".repeat(43)}`
        const bodies = await Promise.all([
          raw(h.main.port, `session=${forged}; session=${valid}`),
          raw(h.main.port, `session=${valid}; session=${forged}`),
          raw(h.main.port, `${FILLER}; session=${valid}`),
          raw(h.main.port, `session=${valid}; ${FILLER}`),
          raw(h.main.port, `session=${"x".repeat(10_000)}; session=${valid}`)
        ])
        assert.deepStrictEqual(bodies.map((r) => `${r.status} ${r.body}`), Array(5).fill("200 2"))
      })
    ))

  it.effect("look-alike names sent by browsers (UTF-8 NBSP, U+2000 before the name) are not the session cookie", () =>
    hostile((h) =>
      run(async () => {
        const valid = (await withSession(h.main.url)).cookie!
        const replies = await Promise.all([
          raw(h.main.port, Buffer.from([0xc2, 0xa0]), `session=${valid}`),
          raw(h.main.port, Buffer.from([0xe2, 0x80, 0x80]), `session=${valid}`),
          raw(h.main.port, "session=", Buffer.from([0xc2, 0xa0]), valid),
          raw(h.main.port, `session=${valid}`, Buffer.from([0xe3, 0x80, 0x80]))
        ])
        assert.deepStrictEqual(replies.map((r) => `${r.status} ${r.body}`), Array(4).fill("200 0"))
      })
    ))

  it.effect("cookie names and values are trimmed of SP and HTAB only (RFC 6265 §5.2): a raw NBSP byte is not", () =>
    hostile((h) =>
      run(async () => {
        const valid = (await withSession(h.main.url)).cookie!
        const trimmed = await Promise.all([
          raw(h.main.port, ` \tsession \t= \t${valid} \t`),
          raw(h.main.port, `other=1;session=${valid}`)
        ])
        assert.deepStrictEqual(trimmed.map((r) => `${r.status} ${r.body}`), ["200 1", "200 1"])
        const nbsp = await Promise.all([
          raw(h.main.port, Buffer.from([0xa0]), `session=${valid}`),
          raw(h.main.port, "session=", Buffer.from([0xa0]), valid),
          raw(h.main.port, `session=${valid}`, Buffer.from([0xa0]))
        ])
        assert.deepStrictEqual(nbsp.map((r) => `${r.status} ${r.body}`), ["200 0", "200 0", "200 0"])
      })
    ))

  it.effect("keys named __proto__, constructor, prototype are plain keys, on Redis and in memory", () =>
    hostile((h) =>
      run(async () => {
        const names = ["__proto__", "constructor", "prototype", "hasOwnProperty", "toString", "valueOf"]
        for (const app of [h.main, h.memory]) {
          const browser = new Browser(app.url)
          for (const name of names) assert.strictEqual((await browser.get(`/set/${name}/v-${name}`)).status, 200)
          const dump = await browser.get("/dump")
          assert.strictEqual(dump.status, 200)
          const data = JSON.parse(dump.body) as Record<string, unknown>
          for (const name of names) assert.strictEqual(Object.getOwnPropertyDescriptor(data, name)?.value, `v-${name}`)
          assert.deepStrictEqual((await browser.get("/keys")).body.split(",").sort(), [...names].sort())
          assert.strictEqual((await browser.get("/read")).body, "0")
          assert.strictEqual((await browser.get("/incr")).body, "1")
          notPolluted()
        }
        const browser = new Browser(h.main.url)
        await browser.get("/set/__proto__/x")
        assert.strictEqual(await h.redis.admin().hget(keyOf(browser.cookie!), ".__proto__"), "\"x\"")
      })
    ))

  it.effect("values carrying __proto__ / constructor.prototype are stored and read back as inert data", () =>
    hostile((h) =>
      run(async () => {
        const payload = "{\"__proto__\":{\"polluted\":1},\"constructor\":{\"prototype\":{\"polluted\":1}}}"
        for (const app of [h.main, h.memory]) {
          const browser = await withSession(app.url)
          assert.strictEqual((await post(browser, "/json/prefs", payload)).status, 200)
          assert.strictEqual((await post(browser, "/json/__proto__", "{\"polluted\":1}")).status, 200)
          assert.strictEqual((await post(browser, "/json/constructor", "{\"prototype\":{\"polluted\":1}}")).status, 200)
          const data = JSON.parse((await browser.get("/dump")).body) as Record<string, unknown>
          assert.strictEqual(Object.getPrototypeOf(data), Object.prototype)
          assert.strictEqual(data["count"], 1)
          assert.deepStrictEqual(JSON.stringify(data["prefs"]), payload)
          assert.deepStrictEqual(Object.getOwnPropertyDescriptor(data, "__proto__")?.value, { polluted: 1 })
          assert.strictEqual((await browser.get("/incr")).body, "2")
          notPolluted()
        }
      })
    ))

  it.effect("a 10 000- or 100 000-level nested value is a typed SessionEncodeError (422 here), never a 500", () =>
    hostile((h) =>
      run(async () => {
        for (const app of [h.main, h.memory]) {
          const browser = await withSession(app.url)
          for (const depth of [10_000, 100_000]) {
            const deep = "[".repeat(depth) + "]".repeat(depth)
            const reply = await post(browser, "/json/deep", deep)
            assert.strictEqual(reply.status, 422, `depth ${depth}: ${reply.body}`)
            assert.strictEqual(reply.body, "SessionEncodeError deep")
            const anonymous = new Browser(app.url)
            const fresh = await post(anonymous, "/json/deep", deep)
            assert.strictEqual(fresh.status, 422)
            assert.strictEqual(fresh.cookies.length, 0)
          }
          assert.strictEqual((await browser.get("/keys")).body, "count")
          assert.strictEqual((await browser.get("/incr")).body, "2")
        }
      })
    ))

  it.effect("maxSize: oversized values and growth past the limit answer 413 and leave the stored session as it was", () =>
    hostile((h) =>
      run(async () => {
        const admin = h.redis.admin()
        for (const app of [h.main, h.memory]) {
          const browser = await withSession(app.url)
          const key = keyOf(browser.cookie!)
          const huge = await post(browser, "/json/big", JSON.stringify("x".repeat(1_000_000)))
          assert.strictEqual(huge.status, 413)
          assert.strictEqual((await post(browser, "/json/a", JSON.stringify("a".repeat(600)))).status, 200)
          const stored = app === h.main ? await admin.hgetall(key) : undefined
          const grown = await post(browser, "/json/b", JSON.stringify("b".repeat(600)))
          assert.strictEqual(grown.status, 413)
          assert.deepStrictEqual(grown.cookies, [])
          if (stored !== undefined) assert.deepStrictEqual(await admin.hgetall(key), stored)
          assert.strictEqual((await browser.get("/big/2000")).status, 413)
          const data = JSON.parse((await browser.get("/dump")).body) as Record<string, unknown>
          assert.deepStrictEqual(Object.keys(data).sort(), ["a", "count"])
          assert.strictEqual(data["a"], "a".repeat(600))
          const keysBefore = await admin.dbsize()
          const anonymous = new Browser(app.url)
          const fresh = await post(anonymous, "/json/big", JSON.stringify("x".repeat(2_000)))
          assert.strictEqual(fresh.status, 413)
          assert.strictEqual(fresh.cookies.length, 0)
          assert.strictEqual(await admin.dbsize(), keysBefore)
        }
      })
    ))

  it.effect("adjustTimeout(1e14 s): Redis behaves as the memory store, and a failed commit changes nothing", () =>
    hostile((h) =>
      run(async () => {
        // 1e14 s is a whole number ≥ 1, so adjustTimeout accepts it; its TTL in ms is 1e17
        const outcome = async (app: Served) => {
          const browser = await withSession(app.url)
          const adjust = await browser.get("/adjust/100000000000000")
          const timeout = (await browser.get("/timeout")).body
          const incr = await browser.get("/incr")
          const set = await browser.get("/set/k/v")
          const data = JSON.parse((await browser.get("/dump")).body) as Record<string, unknown>
          return { adjust: adjust.status, timeout, incr: incr.status, set: set.status, data }
        }
        const memory = await outcome(h.memory)
        const redis = await outcome(h.main)
        console.log(`adjustTimeout(1e14): memory ${JSON.stringify(memory)}; Redis ${JSON.stringify(redis)}`)
        // whatever a store answers, a commit reported as failed must have changed nothing
        if (redis.adjust !== 200) assert.strictEqual(redis.timeout, "1200", "a failed adjustTimeout was applied")
        if (redis.incr !== 200) assert.strictEqual(redis.data["count"], 1, "a failed increment was applied")
        if (redis.set !== 200) assert.notProperty(redis.data, "k", "a failed set was applied")
        assert.include([200, 400], memory.adjust)
        assert.deepStrictEqual(redis, memory)
      })
    ))

  it.effect("a cookie carrying a storage key or an id the server never issued (validly signed) is anonymous", () =>
    hostile((h) =>
      run(async () => {
        const admin = h.redis.admin()
        const owner = await withSession(h.main.url)
        const storageKey = keyOf(owner.cookie!)
        const secret = Redacted.make(SECRET)
        const keysBefore = await admin.dbsize()

        // the Redis key itself, bare and signed: hashed again, it names no session
        const asKey = await commandsDuring(h.redis, async () => {
          assert.strictEqual((await withCookie(h.main.url, storageKey, "/read")).reply.body, "0")
        })
        assert.deepStrictEqual(asKey, [])
        const signedKey = SessionId.sign(storageKey, secret)
        const loads = await commandsDuring(h.redis, async () => {
          const { reply } = await withCookie(h.main.url, signedKey, "/read")
          assert.deepStrictEqual([reply.status, reply.body], [200, "0"])
        })
        assert.deepStrictEqual(loads.map((c) => c.name), ["EVALSHA"])
        assert.strictEqual(await admin.dbsize(), keysBefore)

        // an attacker-chosen id with a valid signature: reads are anonymous, writes get a new id
        const chosen = "attacker-chosen-session-id-0000000000"
        const planted = SessionId.sign(chosen, secret)
        for (const route of ["/read", "/whoami", "/dump", "/logout"]) {
          const { reply } = await withCookie(h.main.url, planted, route)
          assert.strictEqual(reply.status, 200)
          assert.isTrue(reply.cookies.every((c) => c.value === ""))
        }
        assert.strictEqual(await admin.dbsize(), keysBefore)
        for (const route of ["/incr", "/set/a/b", "/login/eve", "/sign-in/eve", "/csrf"]) {
          const { reply, browser } = await withCookie(h.main.url, planted, route)
          assert.strictEqual(reply.status, 200, route)
          assert.strictEqual(reply.cookies.length, 1, route)
          assert.notStrictEqual(idOf(browser.cookie!), chosen, route)
          assert.strictEqual(await admin.exists(keyOf(browser.cookie!)), 1, route)
        }
        assert.strictEqual(await admin.exists(sessionKey("", chosen)), 0)
        assert.strictEqual(await admin.exists(sessionKey("", storageKey)), 0)
        assert.strictEqual((await owner.get("/read")).body, "1")
      })
    ))

  it.effect("secret rotation on Redis: old-secret cookies are accepted and re-signed; a dropped secret is refused", () =>
    hostile((h) =>
      Effect.gen(function*() {
        const before = yield* serveRedis(h.redis, { secret: SECRET })
        const rotated = yield* serveRedis(h.redis, { secret: [NEW_SECRET, SECRET] })
        const dropped = yield* serveRedis(h.redis, { secret: NEW_SECRET })
        yield* run(async () => {
          const admin = h.redis.admin()
          const browser = await withSession(before.url)
          const oldCookie = browser.cookie!
          const id = idOf(oldCookie)
          const keys = await admin.dbsize()
          const { reply, browser: next } = await withCookie(rotated.url, oldCookie, "/read")
          assert.strictEqual(reply.body, "1")
          assert.strictEqual(reply.cookies.length, 1)
          assert.strictEqual(next.cookie, SessionId.sign(id, Redacted.make(NEW_SECRET)))
          assert.strictEqual(await admin.dbsize(), keys, "rotation keeps the Redis key")
          assert.strictEqual((await next.get("/incr")).body, "2")
          assert.strictEqual((await next.get("/read")).cookies.length, 0, "re-issued once")
          const refused = await commandsDuring(h.redis, async () => {
            assert.strictEqual((await withCookie(dropped.url, oldCookie, "/read")).reply.body, "0")
            assert.strictEqual((await withCookie(before.url, next.cookie!, "/read")).reply.body, "0")
          })
          assert.deepStrictEqual(refused, [])
          assert.strictEqual((await withCookie(dropped.url, next.cookie!, "/read")).reply.body, "2")
        })
      })
    ))

  it.effect("absolute timeout: a session used every 300 ms ends 2 s after creation; its TTL never outlives that", () =>
    hostile((h) =>
      Effect.gen(function*() {
        const app = yield* serveRedis(h.redis, { absoluteTimeout: "2 seconds", timeout: "20 minutes" })
        yield* run(async () => {
          const admin = h.redis.admin()
          const browser = new Browser(app.url)
          const t0 = Date.now()
          assert.strictEqual((await browser.get("/incr")).body, "1")
          const created = Date.now()
          const cookie = browser.cookie!
          const key = keyOf(cookie)
          // the session was created within [t0, created]: its deadline is at most created + 2000
          const limit = created + 2000
          const observations: Array<{ at: number; end: number; route: string; body: string; same: boolean }> = []
          const ttls: Array<{ pttl: number; at: number }> = []
          for (let i = 0; i < 20 && Date.now() - t0 < 3500; i++) {
            await sleep(300)
            const route = i % 3 === 2 ? "/read" : "/incr"
            const at = Date.now()
            const reply = await browser.get(route)
            const end = Date.now()
            observations.push({ at, end, route, body: reply.body, same: browser.cookie === cookie })
            const asked = Date.now()
            const pttl = await admin.pttl(key)
            if (pttl >= 0) ttls.push({ pttl, at: asked })
          }
          const ended = observations.find((o) => !o.same || o.body === "0")
          console.log(
            `absolute timeout 2 s: ${observations.length} requests; first refused ${
              ended === undefined ? "never" : `${ended.at - t0} ms after creation`
            }; largest PTTL + now - deadline bound: ${Math.max(...ttls.map((t) => t.pttl + t.at - limit))} ms`
          )
          assert.isAbove(ttls.length, 2)
          for (const { pttl, at } of ttls) assert.isAtMost(pttl + at, limit + 10, "TTL beyond the absolute deadline")
          const early = observations.filter((o) => o.end < t0 + 2000 - 50)
          const late = observations.filter((o) => o.at > limit + 50)
          assert.isAbove(early.length, 2)
          assert.isAbove(late.length, 0)
          assert.isTrue(early.every((o) => o.same && o.body !== "0"), "alive before the deadline")
          const counts = early.filter((o) => o.route === "/incr").map((o) => Number(o.body))
          assert.deepStrictEqual(counts, counts.map((_, i) => i + 2), "the same session, counting")
          assert.isTrue(late.every((o) => !o.same || o.body === "0"), "refused after the deadline however active")
          assert.strictEqual((await withCookie(app.url, cookie, "/read")).reply.body, "0")
          assert.strictEqual(await admin.exists(key), 0)
        })
      })
    ))

  it.effect("__Host- cookies work end to end (Secure, Path=/, no Domain); a __Host- cookie with a domain is refused", () =>
    hostile((h) =>
      Effect.gen(function*() {
        const app = yield* serveRedis(h.redis, { cookieName: "__Host-sid", cookieSecure: true })
        yield* run(async () => {
          const browser = new Browser(app.url, "__Host-sid")
          const first = await browser.get("/incr")
          assert.strictEqual(first.cookies.length, 1)
          const cookie = first.cookies[0]!
          assert.strictEqual(cookie.name, "__Host-sid")
          assert.isTrue(cookie.attributes.has("secure"))
          assert.isTrue(cookie.attributes.has("httponly"))
          assert.strictEqual(cookie.attributes.get("path"), "/")
          assert.isFalse(cookie.attributes.has("domain"))
          assert.strictEqual((await browser.get("/incr")).body, "2")
          const valid = browser.cookie!
          for (const name of ["session", "__host-sid", "__Host%2Dsid", "%5F_Host-sid", "__Secure-sid", "sid"]) {
            assert.strictEqual((await raw(app.port, `${name}=${valid}`)).body, "0", name)
          }
          const logout = await browser.get("/logout")
          const deletion = logout.cookies[0]!
          assert.strictEqual(deletion.name, "__Host-sid")
          assert.strictEqual(deletion.value, "")
          assert.isTrue(deletion.attributes.has("secure"))
          assert.strictEqual(deletion.attributes.get("path"), "/")
          assert.isFalse(deletion.attributes.has("domain"))
          assert.strictEqual(await h.redis.admin().exists(keyOf(valid)), 0)
        })
        const port = yield* run(() => freePort())
        const error = yield* serveRedis(h.redis, {
          url: `redis://127.0.0.1:${port}`,
          cookieName: "__Host-sid",
          cookieSecure: true,
          cookieDomain: "example.test"
        }).pipe(Effect.flip)
        assert.instanceOf(error, SessionConfigError)
        assert.include((error as SessionConfigError).issues.map((i) => i.key), "redis.sessions.cookie_domain")
      })
    ))
})
