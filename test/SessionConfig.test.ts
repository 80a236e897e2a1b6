import { assert, describe, it } from "@effect/vitest"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as SessionConfig from "../src/SessionConfig.js"
import { SessionConfigError } from "../src/SessionError.js"

const SECRET = "a-secret-of-at-least-32-characters!!"
const SECRET2 = "another-secret-of-at-least-32-chars!!"
const P = SessionConfig.SETTINGS_PREFIX
const seconds = (d: Duration.DurationInput | undefined) => d === undefined ? undefined : Duration.toSeconds(d)
const millis = (d: Duration.DurationInput | undefined) => d === undefined ? undefined : Duration.toMillis(d)

/** A settings record with the secret and the given `redis.sessions.*` entries (short names). */
const settings = (entries: Record<string, unknown> = {}, secret: unknown = SECRET): Record<string, unknown> => {
  const record: Record<string, unknown> = {}
  if (secret !== undefined) record[`${P}secret`] = secret
  for (const [k, v] of Object.entries(entries)) record[P + k] = v
  return record
}

const decode = (entries: Record<string, unknown> = {}, secret: unknown = SECRET) =>
  SessionConfig.fromSettings(settings(entries, secret))

const decodeError = (entries: Record<string, unknown> = {}, secret: unknown = SECRET) =>
  Effect.flip(decode(entries, secret))

const issueKeys = (e: SessionConfigError) => [...new Set(e.issues.map((i) => i.key))].sort()

const assertIssues = (e: SessionConfigError, keys: ReadonlyArray<string>) => {
  assert.instanceOf(e, SessionConfigError)
  assert.strictEqual(e._tag, "SessionConfigError")
  assert.deepStrictEqual(issueKeys(e), keys.map((k) => P + k).sort(), e.message)
  for (const k of keys) assert.include(e.message, P + k)
}

const issueFor = (e: SessionConfigError, key: string) => e.issues.find((i) => i.key === P + key)

describe("SessionConfig", () => {
  describe("fromSettings: which keys are read", () => {
    it.effect("reads only redis.sessions.* keys and ignores the others", () =>
      Effect.gen(function*() {
        const s = yield* SessionConfig.fromSettings({
          "redis.sessions.secret": SECRET,
          "ignore.this.setting": "",
          "redis.session.timeout": "nonsense",
          "redis.sessionstimeout": "nonsense",
          "sessions.timeout": "-5",
          "timeout": "-5",
          "pyramid.reload_templates": "true"
        })
        assert.strictEqual(s.session.secrets.length, 1)
        assert.strictEqual(Redacted.value(s.session.secrets[0]), SECRET)
        assert.strictEqual(seconds(s.session.timeout), 1200)
      }))

    it.effect("is case-sensitive: REDIS.SESSIONS.secret is not recognised (missing secret)", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(SessionConfig.fromSettings({ "REDIS.SESSIONS.secret": SECRET }))
        assertIssues(e, ["secret"])
        assert.include(issueFor(e, "secret")!.message, "required")
        const e2 = yield* Effect.flip(SessionConfig.fromSettings({ "Redis.Sessions.secret": SECRET }))
        assertIssues(e2, ["secret"])
      }))

    it.effect("an empty record and a record holding only prefix report the missing secret", () =>
      Effect.gen(function*() {
        assertIssues(yield* Effect.flip(SessionConfig.fromSettings({})), ["secret"])
        const e = yield* Effect.flip(SessionConfig.fromSettings({ "redis.sessions.prefix": "myapp:" }))
        assertIssues(e, ["secret"])
        assert.include(issueFor(e, "secret")!.message, "is a required setting")
      }))

    it.effect("null and undefined values mean unset", () =>
      Effect.gen(function*() {
        const s = yield* decode({ timeout: null, port: undefined, cookie_secure: null })
        assert.strictEqual(seconds(s.session.timeout), 1200)
        assert.strictEqual(s.redis.port, 6379)
        assert.isFalse(s.session.cookieSecure)
        assertIssues(yield* decodeError({}, null), ["secret"])
      }))

    it.effect("the input record is not mutated", () =>
      Effect.gen(function*() {
        const record = settings({ timeout: " 30 ", cookie_domain: "" })
        const copy = { ...record }
        yield* SessionConfig.fromSettings(record)
        assert.deepStrictEqual(record, copy)
      }))
  })

  describe("fromSettings: defaults", () => {
    it.effect("every seed default", () =>
      Effect.gen(function*() {
        const { redis, session } = yield* decode()
        assert.strictEqual(seconds(session.timeout), 1200)
        assert.strictEqual(session.cookieName, "session")
        assert.strictEqual(session.cookiePath, "/")
        assert.isUndefined(session.cookieMaxAge)
        assert.isUndefined(session.cookieDomain)
        assert.isFalse(session.cookieSecure)
        assert.isTrue(session.cookieHttpOnly)
        assert.isTrue(session.cookieOnException)
        assert.strictEqual(session.cookieSameSite, "lax")
        assert.strictEqual(session.prefix, "")
        assert.isUndefined(session.absoluteTimeout)
        assert.strictEqual(session.idEncoding, "hex")
        assert.isFalse(session.strict)
        assert.isUndefined(redis.url)
        assert.strictEqual(redis.host, "localhost")
        assert.strictEqual(redis.port, 6379)
        assert.strictEqual(redis.db, 0)
        assert.isUndefined(redis.password)
        assert.isUndefined(redis.username)
        assert.isUndefined(redis.unixSocketPath)
        assert.strictEqual(millis(redis.connectTimeout), 5000)
        assert.strictEqual(millis(redis.commandTimeout), 1000)
      }))

    it.effect("explicit values replace the defaults", () =>
      Effect.gen(function*() {
        const { redis, session } = yield* decode({
          timeout: "3600",
          absolute_timeout: "86400",
          cookie_name: "sid",
          cookie_max_age: "600",
          cookie_path: "/app",
          cookie_domain: "example.com",
          cookie_secure: "true",
          cookie_httponly: "false",
          cookie_samesite: "Strict",
          cookie_on_exception: "no",
          prefix: "myapp:",
          id_encoding: "base64url",
          strict: "yes",
          host: "redis.internal",
          port: "6380",
          db: "3",
          username: "app",
          password: "hunter2",
          unix_socket_path: "/run/redis.sock"
        })
        assert.strictEqual(seconds(session.timeout), 3600)
        assert.strictEqual(seconds(session.absoluteTimeout), 86400)
        assert.strictEqual(session.cookieName, "sid")
        assert.strictEqual(seconds(session.cookieMaxAge), 600)
        assert.strictEqual(session.cookiePath, "/app")
        assert.strictEqual(session.cookieDomain, "example.com")
        assert.isTrue(session.cookieSecure)
        assert.isFalse(session.cookieHttpOnly)
        assert.strictEqual(session.cookieSameSite, "strict")
        assert.isFalse(session.cookieOnException)
        assert.strictEqual(session.prefix, "myapp:")
        assert.strictEqual(session.idEncoding, "base64url")
        assert.isTrue(session.strict)
        assert.strictEqual(redis.host, "redis.internal")
        assert.strictEqual(redis.port, 6380)
        assert.strictEqual(redis.db, 3)
        assert.strictEqual(redis.username, "app")
        assert.isTrue(Redacted.isRedacted(redis.password))
        assert.strictEqual(Redacted.value(redis.password!), "hunter2")
        assert.strictEqual(redis.unixSocketPath, "/run/redis.sock")
      }))
  })

  describe("fromSettings: integers", () => {
    it.effect("accepts numbers and decimal digit strings with surrounding spaces and a sign", () =>
      Effect.gen(function*() {
        assert.strictEqual(seconds((yield* decode({ timeout: "999" })).session.timeout), 999)
        assert.strictEqual(seconds((yield* decode({ timeout: " 30 " })).session.timeout), 30)
        assert.strictEqual(seconds((yield* decode({ timeout: "+30" })).session.timeout), 30)
        assert.strictEqual(seconds((yield* decode({ timeout: 45 })).session.timeout), 45)
        assert.strictEqual((yield* decode({ port: "1234" })).redis.port, 1234)
        assert.strictEqual((yield* decode({ db: 9 })).redis.db, 9)
        assert.strictEqual((yield* decode({ db: "0" })).redis.db, 0)
        assert.strictEqual(seconds((yield* decode({ cookie_max_age: "\t60\n" })).session.cookieMaxAge), 60)
      }))

    for (const bad of ["30.0", "0x10", "3e2", "1_000", "30s", "thirty", "3 0", "--3", "Infinity", "NaN"]) {
      it.effect(`rejects timeout ${JSON.stringify(bad)}`, () =>
        Effect.gen(function*() {
          const e = yield* decodeError({ timeout: bad })
          assertIssues(e, ["timeout"])
        }))
    }

    it.effect("rejects non-integer numbers and other types", () =>
      Effect.gen(function*() {
        assertIssues(yield* decodeError({ timeout: 30.5 }), ["timeout"])
        assertIssues(yield* decodeError({ timeout: Number.NaN }), ["timeout"])
        assertIssues(yield* decodeError({ timeout: Number.POSITIVE_INFINITY }), ["timeout"])
        assertIssues(yield* decodeError({ timeout: true }), ["timeout"])
        assertIssues(yield* decodeError({ port: [6379] }), ["port"])
        assertIssues(yield* decodeError({ db: { n: 1 } }), ["db"])
      }))

    it.effect("enforces ranges: timeout >= 1, port 1-65535, db >= 0, cookie_max_age >= 1", () =>
      Effect.gen(function*() {
        assertIssues(yield* decodeError({ timeout: "0" }), ["timeout"])
        assertIssues(yield* decodeError({ timeout: 0 }), ["timeout"])
        assertIssues(yield* decodeError({ timeout: "-5" }), ["timeout"])
        assertIssues(yield* decodeError({ port: "70000" }), ["port"])
        assertIssues(yield* decodeError({ port: 0 }), ["port"])
        assertIssues(yield* decodeError({ db: "-1" }), ["db"])
        assertIssues(yield* decodeError({ cookie_max_age: "0" }), ["cookie_max_age"])
        assertIssues(yield* decodeError({ absolute_timeout: "0" }), ["absolute_timeout"])
        assert.strictEqual(seconds((yield* decode({ timeout: "1" })).session.timeout), 1)
        assert.strictEqual((yield* decode({ port: "65535" })).redis.port, 65535)
        assert.strictEqual((yield* decode({ port: 1 })).redis.port, 1)
      }))
  })

  describe("fromSettings: timeouts in seconds", () => {
    it.effect("command_timeout '1.5' gives 1500 ms", () =>
      Effect.gen(function*() {
        const { redis } = yield* decode({ command_timeout: "1.5" })
        assert.strictEqual(millis(redis.commandTimeout), 1500)
        assert.strictEqual(millis(redis.connectTimeout), 5000)
      }))

    it.effect("connect_timeout alone leaves command at its default", () =>
      Effect.gen(function*() {
        const { redis } = yield* decode({ connect_timeout: "2" })
        assert.strictEqual(millis(redis.connectTimeout), 2000)
        assert.strictEqual(millis(redis.commandTimeout), 1000)
      }))

    it.effect("socket_timeout supplies both connect and command timeouts when those are unset", () =>
      Effect.gen(function*() {
        const both = yield* decode({ socket_timeout: "2.5" })
        assert.strictEqual(millis(both.redis.connectTimeout), 2500)
        assert.strictEqual(millis(both.redis.commandTimeout), 2500)
        const overridden = yield* decode({ socket_timeout: "2.5", command_timeout: "0.5", connect_timeout: "10" })
        assert.strictEqual(millis(overridden.redis.commandTimeout), 500)
        assert.strictEqual(millis(overridden.redis.connectTimeout), 10000)
        const partly = yield* decode({ socket_timeout: 3, command_timeout: "" })
        assert.strictEqual(millis(partly.redis.commandTimeout), 3000)
        assert.strictEqual(millis(partly.redis.connectTimeout), 3000)
      }))

    it.effect("accepts integers, decimals and exponents", () =>
      Effect.gen(function*() {
        assert.strictEqual(millis((yield* decode({ socket_timeout: "1234" })).redis.commandTimeout), 1234000)
        assert.strictEqual(millis((yield* decode({ socket_timeout: "1e3" })).redis.commandTimeout), 1000000)
        assert.strictEqual(millis((yield* decode({ socket_timeout: " 2 " })).redis.commandTimeout), 2000)
        assert.strictEqual(millis((yield* decode({ socket_timeout: ".5" })).redis.commandTimeout), 500)
        assert.strictEqual(millis((yield* decode({ socket_timeout: 0.25 })).redis.commandTimeout), 250)
      }))

    for (const bad of ["inf", "nan", "-1", "Infinity", "-inf", "1.5s", "abc", "0"]) {
      it.effect(`rejects socket/command/connect timeout ${JSON.stringify(bad)}`, () =>
        Effect.gen(function*() {
          assertIssues(yield* decodeError({ socket_timeout: bad }), ["socket_timeout"])
          assertIssues(yield* decodeError({ command_timeout: bad }), ["command_timeout"])
          assertIssues(yield* decodeError({ connect_timeout: bad }), ["connect_timeout"])
        }))
    }

    it.effect("rejects non-finite and negative numbers", () =>
      Effect.gen(function*() {
        assertIssues(yield* decodeError({ socket_timeout: Number.POSITIVE_INFINITY }), ["socket_timeout"])
        assertIssues(yield* decodeError({ socket_timeout: Number.NaN }), ["socket_timeout"])
        assertIssues(yield* decodeError({ command_timeout: -0.5 }), ["command_timeout"])
      }))
  })

  describe("fromSettings: booleans (Pyramid asbool, strict)", () => {
    const truthy = ["true", "True", "TRUE", " YES ", "yes", "on", "ON", "y", "Y", "t", "T", "1", " 1 ", true, 1]
    const falsy = ["false", "False", "FALSE", " no ", "NO", "off", "Off", "n", "N", "f", "F", "0", "\t0\n", false, 0]
    const keys = [
      ["cookie_secure", "cookieSecure"],
      ["cookie_httponly", "cookieHttpOnly"],
      ["cookie_on_exception", "cookieOnException"],
      ["strict", "strict"]
    ] as const

    it.effect("true/yes/on/y/t/1 in any case, with spaces, true and 1 are true", () =>
      Effect.gen(function*() {
        for (const [key, field] of keys) {
          for (const value of truthy) {
            const { session } = yield* decode({ [key]: value })
            assert.strictEqual(session[field], true, `${key}=${JSON.stringify(value)}`)
          }
        }
      }))

    it.effect("false/no/off/n/f/0 in any case, with spaces, false and 0 are false", () =>
      Effect.gen(function*() {
        for (const [key, field] of keys) {
          for (const value of falsy) {
            const { session } = yield* decode({ [key]: value })
            assert.strictEqual(session[field], false, `${key}=${JSON.stringify(value)}`)
          }
        }
      }))

    for (const bad of ["ture", "2", "enabled", "disabled", "yess", "tru e", "none", "null", "-1"]) {
      it.effect(`${JSON.stringify(bad)} is an error, not false`, () =>
        Effect.gen(function*() {
          for (const [key] of keys) {
            const e = yield* decodeError({ [key]: bad })
            assertIssues(e, [key])
          }
        }))
    }

    it.effect("numbers other than 1/0 and other types are errors", () =>
      Effect.gen(function*() {
        assertIssues(yield* decodeError({ cookie_secure: 2 }), ["cookie_secure"])
        assertIssues(yield* decodeError({ cookie_secure: -1 }), ["cookie_secure"])
        assertIssues(yield* decodeError({ cookie_secure: 0.5 }), ["cookie_secure"])
        assertIssues(yield* decodeError({ cookie_secure: ["true"] }), ["cookie_secure"])
        assertIssues(yield* decodeError({ cookie_secure: {} }), ["cookie_secure"])
      }))
  })

  describe("fromSettings: empty values", () => {
    it.effect("an empty or blank optional setting means the default", () =>
      Effect.gen(function*() {
        const { redis, session } = yield* decode({
          timeout: "",
          absolute_timeout: " ",
          cookie_name: "sid",
          cookie_max_age: "",
          cookie_path: "",
          cookie_domain: "",
          cookie_secure: "",
          cookie_httponly: "  ",
          cookie_samesite: "",
          cookie_on_exception: "",
          prefix: "",
          url: "",
          host: "",
          port: "",
          db: "",
          password: "",
          socket_timeout: "",
          connect_timeout: "",
          command_timeout: "",
          unix_socket_path: ""
        })
        assert.strictEqual(seconds(session.timeout), 1200)
        assert.isUndefined(session.absoluteTimeout)
        assert.isUndefined(session.cookieMaxAge)
        assert.strictEqual(session.cookiePath, "/")
        assert.isUndefined(session.cookieDomain)
        assert.isFalse(session.cookieSecure)
        assert.isTrue(session.cookieHttpOnly)
        assert.strictEqual(session.cookieSameSite, "lax")
        assert.isTrue(session.cookieOnException)
        assert.isUndefined(redis.url)
        assert.strictEqual(redis.host, "localhost")
        assert.strictEqual(redis.port, 6379)
        assert.strictEqual(redis.db, 0)
        assert.isUndefined(redis.password)
        assert.isUndefined(redis.unixSocketPath)
        assert.strictEqual(millis(redis.connectTimeout), 5000)
        assert.strictEqual(millis(redis.commandTimeout), 1000)
      }))

    it.effect("an empty or blank secret is an error", () =>
      Effect.gen(function*() {
        assertIssues(yield* decodeError({}, ""), ["secret"])
        assertIssues(yield* decodeError({}, "   "), ["secret"])
        assertIssues(yield* decodeError({}, " ".repeat(40)), ["secret"])
      }))

    it.effect("an empty cookie_name is an error", () =>
      Effect.gen(function*() {
        assertIssues(yield* decodeError({ cookie_name: "" }), ["cookie_name"])
        assertIssues(yield* decodeError({ cookie_name: "  " }), ["cookie_name"])
      }))
  })

  describe("fromSettings: secrets", () => {
    it.effect("a secret shorter than 32 characters is an error; 32 is enough", () =>
      Effect.gen(function*() {
        const e = yield* decodeError({}, "x".repeat(31))
        assertIssues(e, ["secret"])
        assert.include(issueFor(e, "secret")!.message, "32")
        const s = yield* decode({}, "x".repeat(32))
        assert.strictEqual(Redacted.value(s.session.secrets[0]), "x".repeat(32))
      }))

    it.effect("a rejected secret does not appear in the error", () =>
      Effect.gen(function*() {
        const e = yield* decodeError({}, "short-but-very-private")
        assertIssues(e, ["secret"])
        assert.notInclude(e.message, "short-but-very-private")
        assert.notInclude(JSON.stringify(e.issues), "short-but-very-private")
        // one short entry in a rotation list must not echo the list (which holds the good secret too)
        const e2 = yield* Effect.flip(SessionConfig.fromSettings({ [`${P}secrets`]: `${SECRET},tooshort-private` }))
        assertIssues(e2, ["secrets"])
        assert.notInclude(e2.message, SECRET)
        assert.notInclude(e2.message, "tooshort-private")
      }))

    it.effect("a non-string secret is an error", () =>
      Effect.gen(function*() {
        assertIssues(yield* decodeError({}, 12345678901234567890123456789012345), ["secret"])
        assertIssues(yield* decodeError({}, true), ["secret"])
      }))

    it.effect("secrets is a comma list, newest first", () =>
      Effect.gen(function*() {
        const s = yield* SessionConfig.fromSettings({ [`${P}secrets`]: ` ${SECRET} , ${SECRET2},` })
        assert.deepStrictEqual(s.session.secrets.map(Redacted.value), [SECRET, SECRET2])
        for (const secret of s.session.secrets) assert.isTrue(Redacted.isRedacted(secret))
        const one = yield* SessionConfig.fromSettings({ [`${P}secrets`]: SECRET })
        assert.deepStrictEqual(one.session.secrets.map(Redacted.value), [SECRET])
      }))

    it.effect("every entry of secrets must be long enough", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(SessionConfig.fromSettings({ [`${P}secrets`]: `${SECRET},tooshort` }))
        assertIssues(e, ["secrets"])
        const e2 = yield* Effect.flip(SessionConfig.fromSettings({ [`${P}secrets`]: " , " }))
        assert.isTrue(e2.issues.length > 0)
        assert.isTrue(e2.issues.every((i) => i.key.startsWith(P + "secret")))
      }))

    it.effect("secret and secrets together is an error", () =>
      Effect.gen(function*() {
        const e = yield* decodeError({ secrets: `${SECRET},${SECRET2}` })
        assert.isTrue(e.issues.length >= 1)
        assert.isTrue(e.issues.some((i) => i.key === `${P}secrets` || i.key === `${P}secret`))
        assert.include(e.message, "secret")
      }))
  })

  describe("fromSettings: unknown and code-only keys", () => {
    it.effect("an unknown key is an error", () =>
      Effect.gen(function*() {
        const e = yield* decodeError({ charset: "utf-8" })
        assertIssues(e, ["charset"])
        assert.include(issueFor(e, "charset")!.message, "not a known setting")
      }))

    it.effect("a nested key is an unknown key, not an alias", () =>
      Effect.gen(function*() {
        const e = yield* decodeError({ "x.secret": SECRET })
        assert.isTrue(e.issues.some((i) => i.key === `${P}x.secret`))
        const e2 = yield* Effect.flip(SessionConfig.fromSettings({ [`${P}x.secret`]: SECRET }))
        assert.isTrue(e2.issues.some((i) => i.key === `${P}x.secret`), e2.message)
        assert.include(e2.message, `${P}x.secret`)
      }))

    it.effect("redis-py knobs of the seed are unknown", () =>
      Effect.gen(function*() {
        const e = yield* decodeError({ connection_pool: "my.pool", errors: "strict" })
        assertIssues(e, ["connection_pool", "errors"])
      }))

    for (const key of ["id_generator", "serialize", "deserialize", "client_callable"]) {
      it.effect(`${key} is rejected as a code option`, () =>
        Effect.gen(function*() {
          const e = yield* decodeError({ [key]: "myapp.sessions.thing" })
          assertIssues(e, [key])
          assert.include(issueFor(e, key)!.message, "code option")
        }))
    }

    it.effect("keys named like Object.prototype members are unknown keys with a readable message", () =>
      Effect.gen(function*() {
        for (const key of ["toString", "constructor", "hasOwnProperty", "valueOf"]) {
          const e = yield* decodeError({ [key]: "x" })
          assertIssues(e, [key])
          const issue = issueFor(e, key)!
          assert.strictEqual(typeof issue.message, "string", `${key}: message is ${typeof issue.message}`)
          assert.include(issue.message, "not a known setting")
        }
      }))
  })

  describe("fromSettings: cookie rules", () => {
    it.effect("cookie_samesite takes lax/strict/none in any case", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* decode({ cookie_samesite: "Lax" })).session.cookieSameSite, "lax")
        assert.strictEqual((yield* decode({ cookie_samesite: " STRICT " })).session.cookieSameSite, "strict")
        assert.strictEqual(
          (yield* decode({ cookie_samesite: "None", cookie_secure: "true" })).session.cookieSameSite,
          "none"
        )
        assertIssues(yield* decodeError({ cookie_samesite: "relaxed" }), ["cookie_samesite"])
      }))

    it.effect("cookie_samesite=None without cookie_secure is an error", () =>
      Effect.gen(function*() {
        assertIssues(yield* decodeError({ cookie_samesite: "None" }), ["cookie_samesite"])
        assertIssues(yield* decodeError({ cookie_samesite: "none", cookie_secure: "false" }), ["cookie_samesite"])
      }))

    it.effect("a cookie path or domain that cannot be put in a Set-Cookie header is refused at start", () =>
      Effect.gen(function*() {
        assertIssues(
          yield* decodeError({ cookie_path: "/app; HttpOnly=false", cookie_domain: "evil.test; Path=/" }),
          ["cookie_domain", "cookie_path"]
        )
      }))

    it.effect("__Host- needs secure, path / and no domain", () =>
      Effect.gen(function*() {
        const ok = yield* decode({ cookie_name: "__Host-sid", cookie_secure: "true" })
        assert.strictEqual(ok.session.cookieName, "__Host-sid")
        assertIssues(yield* decodeError({ cookie_name: "__Host-sid" }), ["cookie_name"])
        assertIssues(
          yield* decodeError({ cookie_name: "__Host-sid", cookie_secure: "true", cookie_path: "/app" }),
          ["cookie_path"]
        )
        assertIssues(
          yield* decodeError({ cookie_name: "__Host-sid", cookie_secure: "true", cookie_domain: "example.com" }),
          ["cookie_domain"]
        )
        assertIssues(
          yield* decodeError({ cookie_name: "__Host-sid", cookie_path: "/app", cookie_domain: "example.com" }),
          ["cookie_name", "cookie_path", "cookie_domain"]
        )
      }))

    it.effect("__Secure- needs secure", () =>
      Effect.gen(function*() {
        assertIssues(yield* decodeError({ cookie_name: "__Secure-sid" }), ["cookie_name"])
        const ok = yield* decode({ cookie_name: "__Secure-sid", cookie_secure: "yes", cookie_path: "/app" })
        assert.strictEqual(ok.session.cookieName, "__Secure-sid")
      }))

    it.effect("cookie_name must be a cookie token and cookie_path must start with /", () =>
      Effect.gen(function*() {
        for (const bad of ["my session", "a;b", "a=b", "a,b", "sé"]) {
          assertIssues(yield* decodeError({ cookie_name: bad }), ["cookie_name"])
        }
        assertIssues(yield* decodeError({ cookie_path: "app" }), ["cookie_path"])
      }))
  })

  describe("fromSettings: one error naming every bad key", () => {
    it.effect("bad timeout + bad port + unknown key give three issues with full keys", () =>
      Effect.gen(function*() {
        const e = yield* decodeError({ timeout: "-5", port: "70000", colour: "blue" })
        assertIssues(e, ["timeout", "port", "colour"])
        assert.strictEqual(e.issues.length, 3)
        for (const issue of e.issues) {
          assert.isTrue(issue.key.startsWith(P))
          assert.isNotEmpty(issue.message)
        }
        assert.match(e.message, /^Invalid session settings: /)
      }))

    it.effect("a bad value is reported once, with its reason", () =>
      Effect.gen(function*() {
        const e = yield* decodeError({ timeout: "-5" })
        assert.strictEqual(e.issues.length, 1, e.message)
        assert.deepStrictEqual(e.issues[0]!.key, `${P}timeout`)
        assert.notInclude(e.message, "Expected undefined")
      }))

    it.effect("field errors, code-only keys and unknown keys are reported together", () =>
      Effect.gen(function*() {
        const e = yield* decodeError({
          timeout: "30.0",
          db: "-1",
          cookie_secure: "ture",
          socket_timeout: "inf",
          id_generator: "my.gen",
          "x.secret": "y",
          url: "http://localhost"
        })
        assertIssues(e, ["timeout", "db", "cookie_secure", "socket_timeout", "id_generator", "x.secret", "url"])
      }))

    it.effect("cross-field problems are reported together", () =>
      Effect.gen(function*() {
        const e = yield* decodeError({
          secrets: SECRET2,
          cookie_samesite: "none",
          cookie_name: "__Host-x",
          cookie_path: "/x"
        })
        assertIssues(e, ["secrets", "cookie_samesite", "cookie_name", "cookie_path"])
      }))

    it.effect("a missing secret is reported together with bad values", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(SessionConfig.fromSettings({ [`${P}timeout`]: "-5", [`${P}port`]: "70000" }))
        assertIssues(e, ["secret", "timeout", "port"])
      }))

    it.effect("a missing secret is reported together with an unknown key", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(SessionConfig.fromSettings({ [`${P}x.secret`]: SECRET }))
        assertIssues(e, ["secret", "x.secret"])
      }))

    it.effect("cross-field problems are reported together with bad values", () =>
      Effect.gen(function*() {
        const e = yield* decodeError({ cookie_samesite: "none", timeout: "0" })
        assertIssues(e, ["cookie_samesite", "timeout"])
      }))
  })

  describe("fromSettings: Redis connection", () => {
    it.effect("url must be redis:// or rediss://", () =>
      Effect.gen(function*() {
        for (
          const bad of ["http://localhost:6379", "localhost:6379", "unix:///tmp/redis.sock", "redis:/h", "REDISX://h"]
        ) {
          assertIssues(yield* decodeError({ url: bad }), ["url"])
        }
        assert.strictEqual(Redacted.value((yield* decode({ url: "redis://h:6379/2" })).redis.url!), "redis://h:6379/2")
        assert.strictEqual(Redacted.value((yield* decode({ url: "rediss://h:6380" })).redis.url!), "rediss://h:6380")
      }))

    it.effect("a rejected url does not leak its password into the error", () =>
      Effect.gen(function*() {
        const e = yield* decodeError({ url: "http://user:pa55w0rd-XYZ@host:6379" })
        assertIssues(e, ["url"])
        assert.notInclude(e.message, "pa55w0rd-XYZ")
      }))

    it.effect("url, secret and password are Redacted", () =>
      Effect.gen(function*() {
        const s = yield* decode({
          url: "redis://user:topsecretpw@redis.example:6379/1",
          password: "anotherpw",
          sentinel_password: "sentinelpw",
          socket_timeout: "2.5",
          db: "5"
        })
        assert.isTrue(Redacted.isRedacted(s.redis.url))
        assert.isTrue(Redacted.isRedacted(s.redis.password))
        assert.isTrue(Redacted.isRedacted(s.redis.sentinelPassword))
        assert.isTrue(Redacted.isRedacted(s.session.secrets[0]))
        assert.strictEqual(Redacted.value(s.redis.url!), "redis://user:topsecretpw@redis.example:6379/1")
        assert.strictEqual(millis(s.redis.commandTimeout), 2500)
        const shown = [
          String(s.session.secrets[0]),
          String(s.redis.url),
          String(s.redis.password),
          JSON.stringify(s),
          `${s.session.secrets[0]}`
        ].join("\n")
        assert.notInclude(shown, SECRET)
        assert.notInclude(shown, "topsecretpw")
        assert.notInclude(shown, "anotherpw")
        assert.notInclude(shown, "sentinelpw")
      }))

    it.effect("cluster_nodes and sentinels are host:port lists", () =>
      Effect.gen(function*() {
        const c = yield* decode({ cluster_nodes: "a:7000, b:7001" })
        assert.deepStrictEqual(c.redis.clusterNodes, ["a:7000", "b:7001"])
        const s = yield* decode({ sentinels: "s1:26379,s2:26379", sentinel_master_name: "mymaster" })
        assert.deepStrictEqual(s.redis.sentinels, ["s1:26379", "s2:26379"])
        assert.strictEqual(s.redis.sentinelMasterName, "mymaster")
        assertIssues(yield* decodeError({ cluster_nodes: "a" }), ["cluster_nodes"])
        assertIssues(yield* decodeError({ sentinels: "s1:26379" }), ["sentinel_master_name"])
        const both = yield* decodeError({ cluster_nodes: "a:1", sentinels: "s:2", sentinel_master_name: "m" })
        assert.isTrue(both.issues.length >= 1)
      }))
  })

  describe("make (options in code)", () => {
    it.effect("decodes camelCase options with the same rules", () =>
      Effect.gen(function*() {
        const { redis, session } = yield* SessionConfig.make({
          secret: SECRET,
          cookieName: "sid",
          timeout: "60 seconds"
        })
        assert.strictEqual(session.cookieName, "sid")
        assert.strictEqual(seconds(session.timeout), 60)
        assert.strictEqual(Redacted.value(session.secrets[0]), SECRET)
        assert.strictEqual(session.cookiePath, "/")
        assert.isTrue(session.cookieHttpOnly)
        assert.strictEqual(redis.port, 6379)
      }))

    it.effect("maps every multi-word option to its setting", () =>
      Effect.gen(function*() {
        const { redis, session } = yield* SessionConfig.make({
          secret: Redacted.make(SECRET),
          absoluteTimeout: "2 hours",
          cookieMaxAge: Duration.minutes(5),
          cookiePath: "/app",
          cookieDomain: "example.com",
          cookieSecure: true,
          cookieOnException: false,
          idEncoding: "base64url",
          maxSize: 1024,
          unixSocketPath: "/run/redis.sock",
          connectTimeout: "2 seconds",
          commandTimeout: 500
        })
        assert.strictEqual(seconds(session.absoluteTimeout), 7200)
        assert.strictEqual(seconds(session.cookieMaxAge), 300)
        assert.strictEqual(session.cookiePath, "/app")
        assert.strictEqual(session.cookieDomain, "example.com")
        assert.isTrue(session.cookieSecure)
        assert.isFalse(session.cookieOnException)
        assert.strictEqual(session.idEncoding, "base64url")
        assert.strictEqual(session.maxSize, 1024)
        assert.strictEqual(redis.unixSocketPath, "/run/redis.sock")
        assert.strictEqual(millis(redis.connectTimeout), 2000)
        assert.strictEqual(millis(redis.commandTimeout), 500)
      }))

    it.effect("cookieHttpOnly is accepted", () =>
      Effect.gen(function*() {
        const { session } = yield* SessionConfig.make({ secret: SECRET, cookieHttpOnly: false })
        assert.isFalse(session.cookieHttpOnly)
      }))

    it.effect("cookieSameSite is accepted", () =>
      Effect.gen(function*() {
        const { session } = yield* SessionConfig.make({ secret: SECRET, cookieSameSite: "strict" })
        assert.strictEqual(session.cookieSameSite, "strict")
        const none = yield* SessionConfig.make({ secret: SECRET, cookieSameSite: "none", cookieSecure: true })
        assert.strictEqual(none.session.cookieSameSite, "none")
      }))

    it.effect("a list of secrets is a rotation list, newest first", () =>
      Effect.gen(function*() {
        const { session } = yield* SessionConfig.make({ secret: [SECRET2, Redacted.make(SECRET)] })
        assert.deepStrictEqual(session.secrets.map(Redacted.value), [SECRET2, SECRET])
      }))

    it.effect("undefined options mean the default", () =>
      Effect.gen(function*() {
        const { redis, session } = yield* SessionConfig.make({ secret: SECRET, timeout: undefined, port: undefined })
        assert.strictEqual(seconds(session.timeout), 1200)
        assert.strictEqual(redis.port, 6379)
      }))

    it.effect("fails the same way on bad input", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(SessionConfig.make({ secret: "short", timeout: 0, port: 70000, cookieName: "" }))
        assert.instanceOf(e, SessionConfigError)
        assertIssues(e, ["secret", "timeout", "port", "cookie_name"])
        const e2 = yield* Effect.flip(SessionConfig.make({ secret: SECRET, timeout: "1.5 seconds" }))
        assertIssues(e2, ["timeout"])
        const e3 = yield* Effect.flip(SessionConfig.make({ secret: SECRET, url: "http://x" }))
        assertIssues(e3, ["url"])
      }))

    it.effect("SameSite=None without Secure fails in code too", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(SessionConfig.make({ secret: SECRET, cookieSameSite: "none" }))
        assertIssues(e, ["cookie_samesite"])
      }))

    it.effect("layer fails at build time with the SessionConfigError", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(
          Effect.provide(SessionConfig.SessionConfig, SessionConfig.layer({ secret: SECRET, timeout: -1 }))
        )
        assertIssues(e, ["timeout"])
        const ok = yield* Effect.provide(
          SessionConfig.SessionConfig,
          SessionConfig.layer({ secret: SECRET, timeout: "9 seconds" })
        )
        assert.strictEqual(seconds(ok.timeout), 9)
        const fromSettings = yield* Effect.provide(
          SessionConfig.SessionConfig,
          SessionConfig.layerFromSettings(settings({ timeout: "77" }))
        )
        assert.strictEqual(seconds(fromSettings.timeout), 77)
      }))
  })

  describe("config (Effect Config)", () => {
    const provider = (entries: ReadonlyArray<readonly [string, string]>) =>
      ConfigProvider.fromMap(new Map(entries), { pathDelim: "_" }).pipe(ConfigProvider.constantCase)

    const load = (entries: ReadonlyArray<readonly [string, string]>) =>
      Effect.withConfigProvider(SessionConfig.config, provider(entries))

    /** Every failure in a ConfigError: its kind, path and message, sorted by path. */
    const leaves = (error: ConfigError.ConfigError): Array<[string, string, string]> => {
      switch (error._op) {
        case "And":
        case "Or":
          return [...leaves(error.left), ...leaves(error.right)].sort((a, b) => a[1].localeCompare(b[1]))
        case "InvalidData":
        case "MissingData":
          return [[error._op, error.path.join("."), error.message]]
        default:
          return [[error._op, "", String(error)]]
      }
    }

    it.effect("reads REDIS_SESSIONS_* through a constant-case provider", () =>
      Effect.gen(function*() {
        const s = yield* load([
          ["REDIS_SESSIONS_SECRET", SECRET],
          ["REDIS_SESSIONS_TIMEOUT", "60"],
          ["REDIS_SESSIONS_COOKIE_NAME", "sid"],
          ["REDIS_SESSIONS_COOKIE_SECURE", "yes"],
          ["REDIS_SESSIONS_COOKIE_SAMESITE", "None"],
          ["REDIS_SESSIONS_COOKIE_HTTPONLY", "off"],
          ["REDIS_SESSIONS_SOCKET_TIMEOUT", "2.5"],
          ["REDIS_SESSIONS_URL", "rediss://cache.example:6380/0"],
          ["REDIS_SESSIONS_PORT", ""],
          ["REDIS_SESSIONS_UNKNOWN_THING", "ignored"],
          ["OTHER_SETTING", "ignored"]
        ])
        assert.strictEqual(Redacted.value(s.session.secrets[0]), SECRET)
        assert.strictEqual(seconds(s.session.timeout), 60)
        assert.strictEqual(s.session.cookieName, "sid")
        assert.isTrue(s.session.cookieSecure)
        assert.isFalse(s.session.cookieHttpOnly)
        assert.strictEqual(s.session.cookieSameSite, "none")
        assert.strictEqual(millis(s.redis.commandTimeout), 2500)
        assert.strictEqual(millis(s.redis.connectTimeout), 2500)
        assert.strictEqual(s.redis.port, 6379)
        assert.isTrue(Redacted.isRedacted(s.redis.url))
        assert.strictEqual(Redacted.value(s.redis.url!), "rediss://cache.example:6380/0")
      }))

    it.effect("without constantCase the upper-case names are not found", () =>
      Effect.gen(function*() {
        const lower = ConfigProvider.fromMap(new Map([["REDIS_SESSIONS_SECRET", SECRET]]), { pathDelim: "_" })
        const e = yield* Effect.flip(Effect.withConfigProvider(SessionConfig.config, lower))
        assert.include(String(e), "redis.sessions.secret")
        const matching = ConfigProvider.fromMap(new Map([["redis_sessions_secret", SECRET]]), { pathDelim: "_" })
        const s = yield* Effect.withConfigProvider(SessionConfig.config, matching)
        assert.strictEqual(Redacted.value(s.session.secrets[0]), SECRET)
      }))

    it.effect("reads SECRETS as a comma list", () =>
      Effect.gen(function*() {
        const s = yield* load([["REDIS_SESSIONS_SECRETS", `${SECRET},${SECRET2}`]])
        assert.deepStrictEqual(s.session.secrets.map(Redacted.value), [SECRET, SECRET2])
      }))

    it.effect("defaults apply when only the secret is set", () =>
      Effect.gen(function*() {
        const s = yield* load([["REDIS_SESSIONS_SECRET", SECRET]])
        assert.strictEqual(seconds(s.session.timeout), 1200)
        assert.strictEqual(s.session.cookieName, "session")
        assert.strictEqual(s.redis.host, "localhost")
      }))

    it.effect("invalid values give a ConfigError naming every bad setting", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(load([
          ["REDIS_SESSIONS_SECRET", SECRET],
          ["REDIS_SESSIONS_TIMEOUT", "abc"],
          ["REDIS_SESSIONS_COOKIE_SECURE", "ture"]
        ]))
        assert.isTrue(ConfigError.isConfigError(e))
        assert.deepStrictEqual(leaves(e), [
          [
            "InvalidData",
            "redis.sessions.cookie_secure",
            "Expected a boolean (true/yes/on/y/t/1 or false/no/off/n/f/0), actual \"ture\""
          ],
          ["InvalidData", "redis.sessions.timeout", "Expected an integer, actual \"abc\""]
        ])
      }))

    it.effect("a rule that spans settings fails at the path of the setting it names", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(
          load([["REDIS_SESSIONS_SECRET", SECRET], ["REDIS_SESSIONS_COOKIE_NAME", "__Host-sid"]])
        )
        assert.deepStrictEqual(leaves(e), [
          ["InvalidData", "redis.sessions.cookie_name", "a __Host- cookie requires cookie_secure = true"]
        ])
        const missing = yield* Effect.flip(load([["REDIS_SESSIONS_TIMEOUT", "60"]]))
        assert.deepStrictEqual(leaves(missing).map(([kind, path]) => [kind, path]), [[
          "MissingData",
          "redis.sessions.secret"
        ]])
      }))

    it.effect("a bad credential fails at its path without repeating the value", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(load([
          ["REDIS_SESSIONS_SECRET", "short-but-very-private"],
          ["REDIS_SESSIONS_URL", "http://user:hunter2@cache.example"]
        ]))
        const failures = leaves(e)
        assert.deepStrictEqual(failures.map(([kind, path]) => [kind, path]), [
          ["InvalidData", "redis.sessions.secret"],
          ["InvalidData", "redis.sessions.url"]
        ])
        assert.notInclude(String(e), "short-but-very-private")
        assert.notInclude(String(e), "hunter2")
      }))

    it.effect("a missing secret is a ConfigError naming the secret", () =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(load([["REDIS_SESSIONS_TIMEOUT", "60"]]))
        assert.isTrue(ConfigError.isConfigError(e))
        assert.include(String(e), "redis.sessions.secret")
      }))

    it.effect("reads process.env through ConfigProvider.fromEnv().pipe(constantCase)", () =>
      Effect.gen(function*() {
        const keys = ["REDIS_SESSIONS_SECRET", "REDIS_SESSIONS_TIMEOUT", "REDIS_SESSIONS_COOKIE_NAME"] as const
        const saved = keys.map((k) => [k, process.env[k]] as const)
        const restore = Effect.sync(() => {
          for (const [k, v] of saved) {
            if (v === undefined) delete process.env[k]
            else process.env[k] = v
          }
        })
        const env = ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase)
        const run = Effect.gen(function*() {
          process.env.REDIS_SESSIONS_SECRET = SECRET
          process.env.REDIS_SESSIONS_TIMEOUT = "90"
          process.env.REDIS_SESSIONS_COOKIE_NAME = "envsid"
          const s = yield* Effect.withConfigProvider(SessionConfig.config, env)
          assert.strictEqual(Redacted.value(s.session.secrets[0]), SECRET)
          assert.strictEqual(seconds(s.session.timeout), 90)
          assert.strictEqual(s.session.cookieName, "envsid")

          process.env.REDIS_SESSIONS_TIMEOUT = "0"
          const e = yield* Effect.flip(Effect.withConfigProvider(SessionConfig.config, env))
          assert.include(String(e), "redis.sessions.timeout")
        })
        yield* Effect.ensuring(run, restore)
        for (const k of keys) {
          const before = saved.find(([key]) => key === k)![1]
          assert.strictEqual(process.env[k], before)
        }
      }))

    it.effect("layerConfig builds SessionConfig from Config", () =>
      Effect.gen(function*() {
        const options = yield* Effect.provide(SessionConfig.SessionConfig, SessionConfig.layerConfig()).pipe(
          Effect.withConfigProvider(provider([["REDIS_SESSIONS_SECRET", SECRET], ["REDIS_SESSIONS_TIMEOUT", "61"]]))
        )
        assert.strictEqual(seconds(options.timeout), 61)
        const failed = yield* Effect.either(
          Effect.provide(SessionConfig.SessionConfig, SessionConfig.layerConfig()).pipe(
            Effect.withConfigProvider(provider([["REDIS_SESSIONS_TIMEOUT", "61"]]))
          )
        )
        assert.isTrue(Either.isLeft(failed))
      }))
  })
})

describe("https: the secure preset, and the warning about cookies sent over plain HTTP", () => {
  it.effect("https = true: Secure and __Host-session by default, __Secure-session with a domain; explicit settings win", () =>
    Effect.gen(function*() {
      const preset = (yield* decode({ https: "true" })).session
      assert.deepStrictEqual([preset.cookieSecure, preset.cookieName], [true, "__Host-session"])
      const withDomain = (yield* decode({ https: "true", cookie_domain: "example.com" })).session
      assert.deepStrictEqual([withDomain.cookieSecure, withDomain.cookieName], [true, "__Secure-session"])
      const named = (yield* decode({ https: "true", cookie_name: "sid" })).session
      assert.deepStrictEqual([named.cookieSecure, named.cookieName], [true, "sid"])
      const optedOut = (yield* decode({ https: "true", cookie_secure: "false" })).session
      assert.deepStrictEqual([optedOut.cookieSecure, optedOut.cookieName], [false, "session"])
      const seed = (yield* decode()).session
      assert.deepStrictEqual([seed.cookieSecure, seed.cookieName], [false, "session"], "the seed's defaults stay")
      const fromCode = yield* SessionConfig.make({ secret: SECRET, https: true })
      assert.strictEqual(fromCode.session.cookieName, "__Host-session")
    }))

  /** The warnings logged while building `layer` with `NODE_ENV` set to `env`. */
  const warningsBuilding = (env: string, layer: Layer.Layer<SessionConfig.SessionConfig, unknown>) =>
    Effect.gen(function*() {
      const warnings: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel === LogLevel.Warning) warnings.push(String(message))
      })
      yield* Layer.build(layer).pipe(
        Effect.scoped,
        Effect.withConfigProvider(
          ConfigProvider.fromMap(new Map([["NODE_ENV", env], ["redis.sessions.secret", SECRET]]))
        ),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      return warnings
    })

  it.effect("a cookie that is not Secure is warned about once at startup outside development", () =>
    Effect.gen(function*() {
      const production = yield* warningsBuilding("production", SessionConfig.layer({ secret: SECRET }))
      assert.strictEqual(production.length, 1)
      assert.include(production[0]!, "redis.sessions.https = true")
      assert.strictEqual((yield* warningsBuilding("production", SessionConfig.layerConfig())).length, 1)
      assert.deepStrictEqual(yield* warningsBuilding("development", SessionConfig.layer({ secret: SECRET })), [])
      assert.deepStrictEqual(yield* warningsBuilding("test", SessionConfig.layer({ secret: SECRET })), [])
      assert.deepStrictEqual(
        yield* warningsBuilding("production", SessionConfig.layer({ secret: SECRET, https: true })),
        []
      )
      const secure = SessionConfig.layer({ secret: SECRET, cookieSecure: true })
      assert.deepStrictEqual(yield* warningsBuilding("production", secure), [])
    }))
})
