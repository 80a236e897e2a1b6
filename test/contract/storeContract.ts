import { assert, layer as vitestLayer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { randomUUID } from "node:crypto"
import { type Changes, type NewSession, SessionStore } from "../../src/SessionStore.js"

/** How a store's clock moves forward in its tests: TestClock for memory, real time for Redis. */
export interface StoreClock {
  readonly live: boolean
  readonly advance: (millis: number) => Effect.Effect<void>
}

const fresh = (
  fields: Record<string, string> | Map<string, string> = {},
  overrides: Partial<NewSession> = {}
): NewSession => ({
  fields: fields instanceof Map ? fields : new Map(Object.entries(fields)),
  created: 1_000,
  timeout: 60,
  absoluteDeadline: undefined,
  principal: undefined,
  indexExpiry: undefined,
  ...overrides
})

const changes = (overrides: Partial<Changes> = {}): Changes => ({
  clear: false,
  set: new Map(),
  remove: [],
  timeout: undefined,
  principal: undefined,
  indexExpiry: undefined,
  expected: undefined,
  ...overrides
})

const MAX = 64 * 1024

/**
 * The store contract: every implementation must pass it unchanged.
 */
export const storeContract = (
  name: string,
  layer: Layer.Layer<SessionStore, unknown>,
  clock: StoreClock
) =>
  vitestLayer(layer, { timeout: "60 seconds", excludeTestServices: clock.live })(name, (it) => {
    const test = (title: string, body: (key: string) => Effect.Effect<void, unknown, SessionStore>) =>
      it.effect(title, () => body(`contract:${randomUUID()}`))

    test("load of a missing key is None", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        assert.isTrue(Option.isNone(yield* store.load(key)))
      }))

    test("create stores fields, meta and a TTL of the timeout", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        assert.isTrue(yield* store.create(key, fresh({ a: "1", b: "\"x\"" }), MAX))
        const loaded = Option.getOrThrow(yield* store.load(key))
        assert.deepStrictEqual(Object.fromEntries(loaded.fields), { a: "1", b: "\"x\"" })
        assert.strictEqual(loaded.created, 1_000)
        assert.strictEqual(loaded.timeout, 60)
        assert.isUndefined(loaded.absoluteDeadline)
        assert.isAbove(loaded.ttl, 59_000)
        assert.isAtMost(loaded.ttl, 60_000)
      }))

    test("create never overwrites an existing session", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        assert.isTrue(yield* store.create(key, fresh({ a: "1" }), MAX))
        assert.isFalse(yield* store.create(key, fresh({ a: "2" }), MAX))
        const loaded = Option.getOrThrow(yield* store.load(key))
        assert.strictEqual(loaded.fields.get("a"), "1")
      }))

    test("commits merge per key: two writers of different keys both persist", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(key, fresh({ x: "0" }), MAX)
        assert.strictEqual((yield* store.commit(key, changes({ set: new Map([["a", "1"]]) }), MAX))._tag, "Committed")
        assert.strictEqual((yield* store.commit(key, changes({ set: new Map([["b", "2"]]) }), MAX))._tag, "Committed")
        assert.strictEqual((yield* store.commit(key, changes({ remove: ["x"] }), MAX))._tag, "Committed")
        const loaded = Option.getOrThrow(yield* store.load(key))
        assert.deepStrictEqual(Object.fromEntries(loaded.fields), { a: "1", b: "2" })
      }))

    test("a commit to a deleted session is Gone and does not recreate it", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(key, fresh({ user: "\"alice\"" }), MAX)
        assert.isTrue(yield* store.remove(key))
        assert.isFalse(yield* store.remove(key))
        assert.strictEqual((yield* store.commit(key, changes({ set: new Map([["cart", "[]"]]) }), MAX))._tag, "Gone")
        assert.isTrue(Option.isNone(yield* store.load(key)))
      }))

    test("clear removes every key but keeps the session", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(key, fresh({ a: "1", b: "2" }), MAX)
        yield* store.commit(key, changes({ clear: true, set: new Map([["c", "3"]]) }), MAX)
        const loaded = Option.getOrThrow(yield* store.load(key))
        assert.deepStrictEqual(Object.fromEntries(loaded.fields), { c: "3" })
        assert.strictEqual(loaded.created, 1_000)
      }))

    test("a new timeout is stored and sets the TTL", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(key, fresh(), MAX)
        yield* store.commit(key, changes({ timeout: 5 }), MAX)
        const loaded = Option.getOrThrow(yield* store.load(key))
        assert.strictEqual(loaded.timeout, 5)
        assert.isAtMost(loaded.ttl, 5_000)
        assert.isAbove(loaded.ttl, 4_000)
      }))

    test("strict mode: a key changed since it was read is a conflict and nothing is applied", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(key, fresh({ a: "1" }), MAX)
        yield* store.commit(key, changes({ set: new Map([["a", "2"]]) }), MAX)
        const exit = yield* Effect.exit(store.commit(
          key,
          changes({ set: new Map([["a", "3"], ["b", "9"]]), expected: new Map([["a", "1"], ["b", undefined]]) }),
          MAX
        ))
        assert.isTrue(Exit.isFailure(exit))
        assert.include(JSON.stringify(exit), "SessionConflict")
        const loaded = Option.getOrThrow(yield* store.load(key))
        assert.deepStrictEqual(Object.fromEntries(loaded.fields), { a: "2" })
        assert.strictEqual(
          (yield* store.commit(
            key,
            changes({ set: new Map([["a", "3"]]), remove: ["z"], expected: new Map([["a", "2"], ["z", undefined]]) }),
            MAX
          ))._tag,
          "Committed"
        )
      }))

    test("a session over max size is refused and the stored one is unchanged", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const big = "x".repeat(200)
        const created = yield* Effect.either(store.create(key, fresh({ a: big }), 100))
        assert.isTrue(created._tag === "Left" && created.left._tag === "SessionTooLarge")
        yield* store.create(key, fresh({ a: "1" }), 100)
        const committed = yield* Effect.either(store.commit(key, changes({ set: new Map([["b", big]]) }), 100))
        assert.isTrue(committed._tag === "Left" && committed.left._tag === "SessionTooLarge")
        assert.deepStrictEqual(Object.fromEntries(Option.getOrThrow(yield* store.load(key)).fields), { a: "1" })
        // replacing a value counts the new size, not both
        assert.strictEqual(
          (yield* store.commit(key, changes({ set: new Map([["a", "y".repeat(90)]]) }), 100))._tag,
          "Committed"
        )
        assert.strictEqual(
          (yield* store.commit(key, changes({ set: new Map([["a", "z".repeat(98)]]) }), 100))._tag,
          "Committed"
        )
        const tooBig = yield* Effect.either(store.commit(key, changes({ set: new Map([["a", "z".repeat(100)]]) }), 100))
        assert.isTrue(tooBig._tag === "Left")
      }))

    test("touch sets the remaining life of a live session only", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(key, fresh(), MAX)
        yield* store.touch(key, 10_000)
        const loaded = Option.getOrThrow(yield* store.load(key))
        assert.isAtMost(loaded.ttl, 10_000)
        assert.isAbove(loaded.ttl, 9_000)
        yield* store.touch(`${key}:missing`, 10_000)
        assert.isTrue(Option.isNone(yield* store.load(`${key}:missing`)))
      }))

    test("sessions expire after their timeout", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(key, fresh({ a: "1" }, { timeout: 1 }), MAX)
        assert.isTrue(Option.isSome(yield* store.load(key)))
        yield* clock.advance(1_300)
        assert.isTrue(Option.isNone(yield* store.load(key)))
      }))

    test("the TTL never extends past the absolute deadline", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
        yield* store.create(key, fresh({}, { created: now, absoluteDeadline: now + 1_000 }), MAX)
        assert.isAtMost(Option.getOrThrow(yield* store.load(key)).ttl, 1_000)
        yield* store.commit(key, changes({ set: new Map([["a", "1"]]) }), MAX)
        assert.isAtMost(Option.getOrThrow(yield* store.load(key)).ttl, 1_000)
        yield* clock.advance(1_300)
        assert.strictEqual((yield* store.commit(key, changes({ set: new Map([["a", "2"]]) }), MAX))._tag, "Gone")
        assert.isTrue(Option.isNone(yield* store.load(key)))
      }))

    test("a bound session carries its principal and last-seen time", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
        yield* store.create(key, fresh({}, { principal: "user-1", indexExpiry: now + 120_000 }), MAX)
        const loaded = Option.getOrThrow(yield* store.load(key))
        assert.strictEqual(loaded.principal, "user-1")
        assert.strictEqual(loaded.indexExpiry, now + 120_000)
        assert.isAtLeast(loaded.lastSeen, now)
        const unbound = `${key}:unbound`
        yield* store.create(unbound, fresh(), MAX)
        assert.isUndefined(Option.getOrThrow(yield* store.load(unbound)).principal)
      }))

    test("binding by commit; a life that outgrows the index asks for one renewal", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
        yield* store.create(key, fresh(), MAX)
        const bound = yield* store.commit(key, changes({ principal: "user-2", indexExpiry: now + 120_000 }), MAX)
        assert.deepStrictEqual(bound, { _tag: "Committed", renewal: undefined })
        assert.strictEqual(Option.getOrThrow(yield* store.load(key)).principal, "user-2")
        // a longer timeout makes the session outlive the index: the store records and reports a renewal
        const longer = yield* store.commit(key, changes({ timeout: 200 }), MAX)
        assert.strictEqual(longer._tag, "Committed")
        const renewal = longer._tag === "Committed" ? longer.renewal : undefined
        assert.strictEqual(renewal?.principal, "user-2")
        assert.strictEqual(renewal?.created, 1_000)
        assert.isAtLeast(renewal!.until, now + 400_000)
        assert.strictEqual(Option.getOrThrow(yield* store.load(key)).indexExpiry, renewal!.until)
        const again = yield* store.commit(key, changes({ set: new Map([["a", "1"]]) }), MAX)
        assert.deepStrictEqual(again, { _tag: "Committed", renewal: undefined })
        assert.isUndefined(yield* store.touch(key, 50_000))
        assert.isUndefined(yield* store.touch(`${key}:missing`, 50_000))
        const unboundKey = `${key}:unbound`
        yield* store.create(unboundKey, fresh(), MAX)
        assert.isUndefined(yield* store.touch(unboundKey, 10_000_000))
      }))

    test("a principal's index adds, lists and removes sessions", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const index = `${key}:principal:{x}`
        assert.strictEqual((yield* store.indexed(index)).size, 0)
        yield* store.index(index, "s1", 10, 60_000)
        yield* store.index(index, "s2", 20, 1_000)
        assert.deepStrictEqual(Object.fromEntries(yield* store.indexed(index)), { s1: 10, s2: 20 })
        yield* clock.advance(1_300)
        assert.deepStrictEqual(Object.fromEntries(yield* store.indexed(index)), { s1: 10, s2: 20 })
        yield* store.unindex(index, ["s1", "missing"])
        assert.deepStrictEqual(Object.fromEntries(yield* store.indexed(index)), { s2: 20 })
        yield* store.unindex(index, ["s2"])
        assert.strictEqual((yield* store.indexed(index)).size, 0)
      }))

    test("an index expires after the longest life it was given", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const index = `${key}:principal:{y}`
        yield* store.index(index, "s1", 10, 1_000)
        yield* clock.advance(1_300)
        assert.strictEqual((yield* store.indexed(index)).size, 0)
      }))

    test("keys and values are stored byte for byte", (key) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const fields = new Map([
          ["__proto__", "{\"polluted\":true}"],
          ["constructor", "1"],
          ["é ключ 🔑", "\"ünï\""],
          ["", "0"]
        ])
        yield* store.create(key, fresh(fields), MAX)
        yield* store.commit(key, changes({ set: new Map([["toString", "2"]]) }), MAX)
        const loaded = Option.getOrThrow(yield* store.load(key))
        assert.strictEqual(loaded.fields.get("__proto__"), "{\"polluted\":true}")
        assert.strictEqual(loaded.fields.get("é ключ 🔑"), "\"ünï\"")
        assert.strictEqual(loaded.fields.size, 5)
        assert.isUndefined(({} as any).polluted)
      }))
  })
