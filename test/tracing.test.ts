import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { assert, describe, it } from "@effect/vitest"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as HttpSession from "../src/HttpSession.js"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisSessionStore from "../src/RedisSessionStore.js"
import * as SessionConfig from "../src/SessionConfig.js"
import { startRedisServer } from "./utils/RedisServer.js"
import { serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-secret-of-at-least-32-characters-for-tracing"

/** The test app on a private Redis, its client tracing or not, spans exported to memory. */
const tracedApp = (tracing: boolean) =>
  Effect.gen(function*() {
    const redis = yield* Effect.acquireRelease(
      Effect.promise(() => startRedisServer()),
      (server) => Effect.promise(() => server.stop())
    )
    const exporter = new InMemorySpanExporter()
    // built in the test's scope: the tracer stays installed, and its provider open, while the test runs
    yield* Layer.build(NodeSdk.layer(() => ({
      resource: { serviceName: "sessions-test" },
      spanProcessor: new SimpleSpanProcessor(exporter)
    })))
    const sessions = HttpSession.layerRouter.pipe(
      Layer.provide(RedisSessionStore.layer({ prefix: "traced:" })),
      Layer.provide(RedisClient.layer({ url: Redacted.make(redis.url), tracing, commandTimeout: "500 millis" })),
      Layer.provide(SessionConfig.layer({ secret: SECRET }))
    )
    const client = yield* serveClient(sessions)
    return { browser: new TestBrowser(client), exporter, redis }
  })

const redisSpans = (exporter: InMemorySpanExporter) =>
  exporter.getFinishedSpans().filter((span) => span.attributes["db.system.name"] === "redis")

const parentOf = (span: ReadableSpan, all: ReadonlyArray<ReadableSpan>) =>
  all.find((candidate) => candidate.spanContext().spanId === span.parentSpanContext?.spanId)

describe("tracing", () => {
  it.effect("is off by default, on with the redis.sessions.tracing setting or the tracing option", () =>
    Effect.gen(function*() {
      const secret = { "redis.sessions.secret": SECRET }
      assert.isFalse((yield* SessionConfig.fromSettings(secret)).redis.tracing)
      assert.isTrue((yield* SessionConfig.fromSettings({ ...secret, "redis.sessions.tracing": "true" })).redis.tracing)
      assert.isTrue((yield* SessionConfig.make({ secret: SECRET, tracing: true })).redis.tracing)
    }))

  it.scoped("a client span per Redis call, a child of the request's span, with the database attributes", () =>
    Effect.gen(function*() {
      const { browser, exporter, redis } = yield* tracedApp(true)
      yield* browser.get("/incr")
      yield* browser.get("/read")
      yield* browser.get("/logout")
      const all = exporter.getFinishedSpans()
      const spans = redisSpans(exporter)
      assert.deepStrictEqual(spans.map((span) => span.name), ["EVALSHA create", "EVALSHA load", "EVALSHA retire"])
      for (const span of spans) {
        assert.strictEqual(span.kind, 2) // SpanKind.CLIENT
        assert.strictEqual(span.attributes["db.operation.name"], "EVALSHA")
        assert.strictEqual(span.attributes["db.stored_procedure.name"], span.name.slice("EVALSHA ".length))
        assert.strictEqual(span.attributes["db.namespace"], "0")
        assert.strictEqual(span.attributes["server.port"], redis.port)
        assert.match(parentOf(span, all)?.name ?? "no parent", /^http\.server GET/)
      }
      const cookieId = browser.cookie ?? ""
      const exported = JSON.stringify(all.map((span) => ({ name: span.name, attributes: span.attributes })))
      assert.notInclude(exported, SECRET)
      assert.notInclude(exported, "traced:")
      if (cookieId !== "") assert.notInclude(exported, cookieId.slice(0, 16))
    }))

  it.scoped("a failed call's span carries the error type and the Redis status code", () =>
    Effect.gen(function*() {
      const { browser, exporter, redis } = yield* tracedApp(true)
      yield* browser.get("/incr")
      yield* Effect.promise(() => redis.kill())
      assert.strictEqual((yield* browser.get("/read")).status, 503)
      const failed = redisSpans(exporter).filter((span) => span.status.code === 2) // SpanStatusCode.ERROR
      assert.lengthOf(failed, 1)
      assert.strictEqual(failed[0]!.attributes["error.type"], "Connection")
    }).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.None))), { timeout: 30_000 })

  it.scoped("a command Redis refuses: its span carries the error prefix Redis answered", () =>
    Effect.gen(function*() {
      const { exporter, redis } = yield* tracedApp(true)
      const client = yield* RedisClient.make({ url: Redacted.make(redis.url), tracing: true })
      const refused = yield* Effect.flip(client.run("hset", (c) => c.hset("not-a-hash-op", "field")))
      assert.strictEqual(refused.reason, "Command")
      const [span] = redisSpans(exporter).filter((s) => s.name === "hset")
      assert.strictEqual(span?.attributes["db.response.status_code"], "ERR")
      assert.strictEqual(span?.attributes["error.type"], "Command")
    }))

  it.scoped("without tracing, no span for Redis calls", () =>
    Effect.gen(function*() {
      const { browser, exporter } = yield* tracedApp(false)
      yield* browser.get("/incr")
      yield* browser.get("/read")
      assert.lengthOf(redisSpans(exporter), 0)
      assert.isAbove(exporter.getFinishedSpans().length, 0)
    }))
})
