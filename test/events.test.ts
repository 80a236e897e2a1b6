import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import * as SessionEvents from "../src/SessionEvents.js"
import * as SessionMetrics from "../src/SessionMetrics.js"
import { memorySessions, racingIncrements, serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-secret-of-at-least-32-characters-for-events"

/** The test app on the memory store with events on; its browser, and a subscription made before any request. */
const eventfulApp = (options: { readonly capacity?: number; readonly strict?: boolean } = {}) =>
  Effect.gen(function*() {
    const events = yield* SessionEvents.make({ capacity: options.capacity })
    const subscription = yield* events.subscribe
    const sessions = memorySessions({ secret: SECRET, strict: options.strict ?? false }).pipe(
      Layer.provide(Layer.succeed(SessionEvents.SessionEvents, events))
    )
    const browser = new TestBrowser(yield* serveClient(sessions))
    return { browser, subscription }
  })

const drained = (subscription: Queue.Dequeue<SessionEvents.SessionEvent>) =>
  Effect.map(Queue.takeAll(subscription), Chunk.toReadonlyArray)

const withoutTime = (events: ReadonlyArray<SessionEvents.SessionEvent>) => events.map(({ at: _, ...event }) => event)

describe("SessionEvents", () => {
  it.scoped("without the layer, subscribing is a defect that names the layer", () =>
    Effect.gen(function*() {
      const events = yield* SessionEvents.SessionEvents
      assert.isFalse(events.active)
      const exit = yield* Effect.exit(events.subscribe)
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      if (Exit.isFailure(exit)) assert.include(String(Cause.squash(exit.cause)), "SessionEvents.layer()")
    }))

  it.scoped("a visit, a sign-in, a sign-out: created, regenerated and bound, invalidated, in order", () =>
    Effect.gen(function*() {
      const { browser, subscription } = yield* eventfulApp()
      yield* browser.get("/incr")
      yield* browser.get("/read")
      yield* browser.get("/sign-in/alice")
      yield* browser.get("/whoami")
      yield* browser.get("/logout")
      assert.deepStrictEqual(withoutTime(yield* drained(subscription)), [
        { _tag: "Created", principal: Option.none() },
        { _tag: "Regenerated", principal: Option.some("alice") },
        { _tag: "Bound", principal: "alice", previous: Option.none() },
        { _tag: "Invalidated", principal: Option.some("alice") }
      ])
    }))

  it.scoped("events carry the time of the Effect Clock, and never the session id", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2026, 11, 4, 12))
      const { browser, subscription } = yield* eventfulApp()
      yield* browser.get("/sign-in/bob")
      const events = yield* drained(subscription)
      assert.lengthOf(events, 2)
      for (const event of events) {
        assert.strictEqual(DateTime.toEpochMillis(event.at), Date.UTC(2026, 11, 4, 12))
        const cookieId = browser.cookie!.slice(0, browser.cookie!.lastIndexOf("."))
        assert.notInclude(JSON.stringify(event), cookieId)
      }
    }))

  it.scoped("rebinding names the previous principal; revocations count the sessions they ended", () =>
    Effect.gen(function*() {
      const { browser, subscription } = yield* eventfulApp()
      yield* browser.get("/sign-in/carol")
      const laptop = new TestBrowser(browser.client)
      yield* laptop.get("/sign-in/carol")
      yield* browser.get("/sign-in/dave")
      yield* drained(subscription)
      assert.strictEqual((yield* browser.get("/revoke-all/carol")).body, "1")
      assert.strictEqual((yield* browser.get("/revoke-all/nobody")).body, "0")
      assert.deepStrictEqual(withoutTime(yield* drained(subscription)), [
        { _tag: "Revoked", principal: "carol", sessions: 1 }
      ])
    }))

  it.scoped("a cookie whose session was logged out elsewhere, or timed out, is reported when read", () =>
    Effect.gen(function*() {
      const { browser, subscription } = yield* eventfulApp()
      yield* browser.get("/incr")
      const stale = browser.tab()
      yield* browser.get("/logout")
      yield* drained(subscription)
      assert.strictEqual((yield* stale.get("/read")).body, "0")
      yield* stale.get("/incr")
      yield* TestClock.adjust("21 minutes")
      yield* stale.get("/read")
      assert.deepStrictEqual(withoutTime(yield* drained(subscription)), [
        { _tag: "ExpiredOnRead" },
        { _tag: "Created", principal: Option.none() },
        { _tag: "ExpiredOnRead" }
      ])
    }))

  it.scoped("in strict mode, the write refused because another request changed the key is a conflict", () =>
    Effect.gen(function*() {
      const { browser, subscription } = yield* eventfulApp({ strict: true })
      yield* browser.get("/sign-in/frank")
      yield* drained(subscription)
      const replies = yield* racingIncrements(browser)
      assert.deepStrictEqual(replies.map((reply) => reply.status).sort(), [200, 409])
      assert.deepStrictEqual(withoutTime(yield* drained(subscription)), [
        { _tag: "Conflict", principal: Option.some("frank") }
      ])
    }))

  it.scoped("a subscriber that does not keep up misses events, counted; requests neither wait nor fail", () =>
    Effect.gen(function*() {
      const { browser, subscription } = yield* eventfulApp({ capacity: 2 })
      const droppedBefore = (yield* Metric.value(SessionMetrics.eventsDropped)).count
      for (let i = 0; i < 5; i++) {
        const visitor = new TestBrowser(browser.client)
        assert.strictEqual((yield* visitor.get("/incr")).body, "1")
      }
      assert.lengthOf(yield* drained(subscription), 2)
      assert.strictEqual((yield* Metric.value(SessionMetrics.eventsDropped)).count - droppedBefore, 3)
    }))

  it.scoped("without the layer nothing is published, and the requests behave the same", () =>
    Effect.gen(function*() {
      const browser = new TestBrowser(yield* serveClient(memorySessions({ secret: SECRET })))
      const bus = yield* SessionEvents.SessionEvents
      assert.isFalse(bus.active)
      assert.strictEqual((yield* browser.get("/incr")).body, "1")
      assert.strictEqual((yield* browser.get("/sign-in/erin")).body, "welcome")
    }))
})
