import { assert, layer as vitestLayer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import { type Changes, type Limits, type NewSession, SessionStore } from "../../src/SessionStore.js"

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
  ...overrides
})

const changes = (overrides: Partial<Changes> = {}): Changes => ({
  clear: false,
  set: new Map(),
  remove: [],
  timeout: undefined,
  principal: undefined,
  expected: undefined,
  ...overrides
})

const MAX: Limits = { maxSize: 64 * 1024, maxSessionsPerPrincipal: undefined }
const SMALL: Limits = { maxSize: 100, maxSessionsPerPrincipal: undefined }

/**
 * The store contract: every implementation must pass it unchanged.
 */
export const storeContract = (
  name: string,
  layer: Layer.Layer<SessionStore, unknown>,
  clock: StoreClock
) =>
  vitestLayer(layer, { timeout: "60 seconds", excludeTestServices: clock.live })(name, (it) => {
    const test = (title: string, body: (id: string) => Effect.Effect<void, unknown, SessionStore>) =>
      it.effect(title, () => body(`contract-${randomUUID()}`))

    test("load of a missing key is None", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        assert.isTrue(Option.isNone(yield* store.load(id)))
      }))

    test("create stores fields, meta and a TTL of the timeout", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        assert.isTrue(yield* store.create(id, fresh({ a: "1", b: "\"x\"" }), MAX))
        const loaded = Option.getOrThrow(yield* store.load(id))
        assert.deepStrictEqual(Object.fromEntries(loaded.fields), { a: "1", b: "\"x\"" })
        assert.strictEqual(loaded.created, 1_000)
        assert.strictEqual(loaded.timeout, 60)
        assert.isUndefined(loaded.absoluteDeadline)
        assert.isAbove(loaded.ttl, 59_000)
        assert.isAtMost(loaded.ttl, 60_000)
      }))

    test("create never overwrites an existing session", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        assert.isTrue(yield* store.create(id, fresh({ a: "1" }), MAX))
        assert.isFalse(yield* store.create(id, fresh({ a: "2" }), MAX))
        const loaded = Option.getOrThrow(yield* store.load(id))
        assert.strictEqual(loaded.fields.get("a"), "1")
      }))

    test("commits merge per key: two writers of different keys both persist", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(id, fresh({ x: "0" }), MAX)
        assert.strictEqual(yield* store.commit(id, changes({ set: new Map([["a", "1"]]) }), MAX), "Committed")
        assert.strictEqual(yield* store.commit(id, changes({ set: new Map([["b", "2"]]) }), MAX), "Committed")
        assert.strictEqual(yield* store.commit(id, changes({ remove: ["x"] }), MAX), "Committed")
        const loaded = Option.getOrThrow(yield* store.load(id))
        assert.deepStrictEqual(Object.fromEntries(loaded.fields), { a: "1", b: "2" })
      }))

    test("a commit to a deleted session is Gone and does not recreate it", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(id, fresh({ user: "\"alice\"" }), MAX)
        assert.isTrue(yield* store.remove(id))
        assert.isFalse(yield* store.remove(id))
        assert.strictEqual(yield* store.commit(id, changes({ set: new Map([["cart", "[]"]]) }), MAX), "Gone")
        assert.isTrue(Option.isNone(yield* store.load(id)))
      }))

    test("clear removes every key but keeps the session", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(id, fresh({ a: "1", b: "2" }), MAX)
        yield* store.commit(id, changes({ clear: true, set: new Map([["c", "3"]]) }), MAX)
        const loaded = Option.getOrThrow(yield* store.load(id))
        assert.deepStrictEqual(Object.fromEntries(loaded.fields), { c: "3" })
        assert.strictEqual(loaded.created, 1_000)
      }))

    test("a new timeout is stored and sets the TTL", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(id, fresh(), MAX)
        yield* store.commit(id, changes({ timeout: 5 }), MAX)
        const loaded = Option.getOrThrow(yield* store.load(id))
        assert.strictEqual(loaded.timeout, 5)
        assert.isAtMost(loaded.ttl, 5_000)
        assert.isAbove(loaded.ttl, 4_000)
      }))

    test("the last authentication and remember-me are stored, changed only when a commit says so", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const plain = `${id}-plain`
        yield* store.create(plain, fresh(), MAX)
        const neither = Option.getOrThrow(yield* store.load(plain))
        assert.deepStrictEqual([neither.authenticated, neither.persistent], [undefined, false])
        yield* store.create(id, fresh({}, { authenticated: 1_500, persistent: true }), MAX)
        const created = Option.getOrThrow(yield* store.load(id))
        assert.deepStrictEqual([created.authenticated, created.persistent], [1_500, true])
        yield* store.commit(id, changes({ set: new Map([["a", "1"]]) }), MAX)
        const kept = Option.getOrThrow(yield* store.load(id))
        assert.deepStrictEqual([kept.authenticated, kept.persistent], [1_500, true])
        yield* store.commit(id, changes({ authenticated: 2_500, persistent: false }), MAX)
        const changed = Option.getOrThrow(yield* store.load(id))
        assert.deepStrictEqual([changed.authenticated, changed.persistent], [2_500, false])
        yield* store.commit(id, changes({ persistent: true }), MAX)
        assert.isTrue(Option.getOrThrow(yield* store.load(id)).persistent)
      }))

    test("removeAll deletes every session and principal index in batches, with running totals; a rerun finds none", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const principal = `everyone-${id}`
        const ids = Array.from({ length: 5 }, (_, i) => `${id}-all-${i}`)
        for (const [i, each] of ids.entries()) {
          yield* store.create(each, fresh({ a: "1" }, { principal: i < 3 ? principal : undefined }), MAX)
        }
        const progress = yield* Stream.runCollect(store.removeAll(2)).pipe(Effect.map(Chunk.toReadonlyArray))
        assert.isAbove(progress.length, 0)
        for (let i = 1; i < progress.length; i++) {
          assert.isAtLeast(progress[i]!.sessions, progress[i - 1]!.sessions, "totals only grow")
          assert.isAtLeast(progress[i]!.scanned, progress[i - 1]!.scanned)
        }
        const totals = progress.at(-1)!
        assert.isAtLeast(totals.sessions, 5)
        assert.isAtLeast(totals.indexes, 1)
        assert.isAtLeast(totals.scanned, totals.sessions + totals.indexes)
        for (const each of ids) assert.isTrue(Option.isNone(yield* store.load(each)))
        assert.deepStrictEqual(yield* store.list(principal), [])
        const again = yield* Stream.runCollect(store.removeAll(100)).pipe(Effect.map(Chunk.toReadonlyArray))
        assert.deepStrictEqual([again.at(-1)?.sessions ?? 0, again.at(-1)?.indexes ?? 0], [0, 0])
        assert.isTrue(yield* store.create(id, fresh({ b: "2" }), MAX), "the store works on afterwards")
      }))

    test("reindex puts every live bound session in its principal's index, and is idempotent", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const principal = `reindexed-${id}`
        for (let i = 0; i < 4; i++) {
          yield* store.create(`${id}-re-${i}`, fresh({}, { principal: i < 3 ? principal : undefined }), MAX)
        }
        const first = (yield* Stream.runCollect(store.reindex(2))).pipe(Chunk.toReadonlyArray).at(-1)!
        assert.isAtLeast(first.bound, 3)
        assert.isAtLeast(first.sessions, 4)
        yield* Stream.runDrain(store.reindex(2))
        const listed = yield* store.list(principal)
        assert.strictEqual(listed.length, 3)
        assert.strictEqual(new Set(listed.map((s) => s.handle)).size, 3)
      }))

    test("renew: the old id forwards loads and commits to the new session for the grace, then names nothing", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const principal = `renewed-${id}`
        const [old, renewed] = [`${id}-old`, `${id}-new`]
        yield* store.create(old, fresh({ a: "1" }, { principal }), MAX)
        assert.strictEqual(yield* store.renew(old, renewed, 1_000), "Renewed")
        assert.strictEqual(yield* store.renew(old, `${id}-other`, 1_000), "AlreadyRenewed")
        const through = Option.getOrThrow(yield* store.load(old))
        assert.deepStrictEqual([Object.fromEntries(through.fields), through.forwarded], [{ a: "1" }, true])
        assert.notStrictEqual(Option.getOrThrow(yield* store.load(renewed)).forwarded, true)
        assert.strictEqual(yield* store.commit(old, changes({ set: new Map([["b", "2"]]) }), MAX), "Forwarded")
        assert.deepStrictEqual(Object.fromEntries(Option.getOrThrow(yield* store.load(renewed)).fields), {
          a: "1",
          b: "2"
        })
        assert.strictEqual((yield* store.list(principal)).length, 1, "only the new session is indexed")
        yield* clock.advance(1_200)
        assert.isTrue(Option.isNone(yield* store.load(old)))
        assert.strictEqual(yield* store.commit(old, changes({ set: new Map([["c", "3"]]) }), MAX), "Gone")
        assert.deepStrictEqual(Object.fromEntries(Option.getOrThrow(yield* store.load(renewed)).fields), {
          a: "1",
          b: "2"
        })
      }))

    test("renew keeps everything the session holds, and refuses a missing session or a taken id", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const [old, renewed, taken] = [`${id}-old`, `${id}-new`, `${id}-taken`]
        assert.strictEqual(yield* store.renew(old, renewed, 1_000), "Gone")
        yield* store.create(old, fresh({ a: "1" }, { authenticated: 1_500, persistent: true, timeout: 90 }), MAX)
        yield* store.create(taken, fresh(), MAX)
        assert.strictEqual(yield* store.renew(old, taken, 1_000), "Taken")
        assert.isTrue(Option.getOrThrow(yield* store.load(old)).forwarded !== true, "nothing written")
        yield* store.commit(old, changes({ set: new Map([["late", "1"]]) }), MAX)
        assert.strictEqual(yield* store.renew(old, renewed, 1_000), "Renewed")
        const moved = Option.getOrThrow(yield* store.load(renewed))
        assert.deepStrictEqual(Object.fromEntries(moved.fields), { a: "1", late: "1" }, "as stored, not as read")
        assert.deepStrictEqual(
          [moved.created, moved.timeout, moved.authenticated, moved.persistent],
          [1_000, 90, 1_500, true]
        )
        assert.isAbove(moved.ttl, 80_000)
      }))

    test("removing a renewed id within its grace ends the session it forwards to", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const [old, renewed] = [`${id}-old`, `${id}-new`]
        yield* store.create(old, fresh({ a: "1" }), MAX)
        yield* store.renew(old, renewed, 60_000)
        assert.isTrue(yield* store.remove(old))
        assert.isTrue(Option.isNone(yield* store.load(renewed)))
        assert.isTrue(Option.isNone(yield* store.load(old)))
      }))

    test("the client a session recorded is stored, and list marks the current session", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const principal = `client-${id}`
        const client = { userAgent: "Phone/1.0 (ünïcode)", network: "2001:db8:85a3::/48" }
        yield* store.create(`${id}-a`, fresh({}, { principal, client }), MAX)
        yield* store.create(`${id}-b`, fresh({}, { principal }), MAX)
        assert.deepStrictEqual(Option.getOrThrow(yield* store.load(`${id}-a`)).client, client)
        assert.isUndefined(Option.getOrThrow(yield* store.load(`${id}-b`)).client)
        const listed = yield* store.list(principal, `${id}-a`)
        assert.deepStrictEqual(
          listed.map((s) => [s.client?.userAgent, s.current]).sort(),
          [["Phone/1.0 (ünïcode)", true], [undefined, false]].sort()
        )
      }))

    test("strict mode: a key changed since it was read is a conflict and nothing is applied", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(id, fresh({ a: "1" }), MAX)
        yield* store.commit(id, changes({ set: new Map([["a", "2"]]) }), MAX)
        const exit = yield* Effect.exit(store.commit(
          id,
          changes({ set: new Map([["a", "3"], ["b", "9"]]), expected: new Map([["a", "1"], ["b", undefined]]) }),
          MAX
        ))
        assert.isTrue(Exit.isFailure(exit))
        assert.include(JSON.stringify(exit), "SessionConflict")
        const loaded = Option.getOrThrow(yield* store.load(id))
        assert.deepStrictEqual(Object.fromEntries(loaded.fields), { a: "2" })
        assert.strictEqual(
          yield* store.commit(
            id,
            changes({ set: new Map([["a", "3"]]), remove: ["z"], expected: new Map([["a", "2"], ["z", undefined]]) }),
            MAX
          ),
          "Committed"
        )
      }))

    test("a session over max size is refused and the stored one is unchanged", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const big = "x".repeat(200)
        const created = yield* Effect.either(store.create(id, fresh({ a: big }), SMALL))
        assert.isTrue(created._tag === "Left" && created.left._tag === "SessionTooLarge")
        yield* store.create(id, fresh({ a: "1" }), SMALL)
        const committed = yield* Effect.either(store.commit(id, changes({ set: new Map([["b", big]]) }), SMALL))
        assert.isTrue(committed._tag === "Left" && committed.left._tag === "SessionTooLarge")
        assert.deepStrictEqual(Object.fromEntries(Option.getOrThrow(yield* store.load(id)).fields), { a: "1" })
        // replacing a value counts the new size, not both
        assert.strictEqual(
          yield* store.commit(id, changes({ set: new Map([["a", "y".repeat(90)]]) }), SMALL),
          "Committed"
        )
        assert.strictEqual(
          yield* store.commit(id, changes({ set: new Map([["a", "z".repeat(98)]]) }), SMALL),
          "Committed"
        )
        const tooBig = yield* Effect.either(
          store.commit(id, changes({ set: new Map([["a", "z".repeat(100)]]) }), SMALL)
        )
        assert.isTrue(tooBig._tag === "Left")
      }))

    test("touch sets the remaining life of a live session only", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(id, fresh(), MAX)
        yield* store.touch(id, 10_000)
        const loaded = Option.getOrThrow(yield* store.load(id))
        assert.isAtMost(loaded.ttl, 10_000)
        assert.isAbove(loaded.ttl, 9_000)
        yield* store.touch(`${id}:missing`, 10_000)
        assert.isTrue(Option.isNone(yield* store.load(`${id}:missing`)))
      }))

    test("sessions expire after their timeout", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.create(id, fresh({ a: "1" }, { timeout: 1 }), MAX)
        assert.isTrue(Option.isSome(yield* store.load(id)))
        yield* clock.advance(1_300)
        assert.isTrue(Option.isNone(yield* store.load(id)))
      }))

    test("the TTL never extends past the absolute deadline", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
        yield* store.create(id, fresh({}, { created: now, absoluteDeadline: now + 1_000 }), MAX)
        assert.isAtMost(Option.getOrThrow(yield* store.load(id)).ttl, 1_000)
        yield* store.commit(id, changes({ set: new Map([["a", "1"]]) }), MAX)
        assert.isAtMost(Option.getOrThrow(yield* store.load(id)).ttl, 1_000)
        yield* clock.advance(1_300)
        assert.strictEqual(yield* store.commit(id, changes({ set: new Map([["a", "2"]]) }), MAX), "Gone")
        assert.isTrue(Option.isNone(yield* store.load(id)))
      }))

    test("a bound session carries its principal and last-seen time, and is listed under it", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
        const principal = `user-${id}`
        yield* store.create(id, fresh({}, { principal }), MAX)
        const loaded = Option.getOrThrow(yield* store.load(id))
        assert.strictEqual(loaded.principal, principal)
        assert.isAtLeast(loaded.lastSeen, now)
        const listed = yield* store.list(principal)
        assert.strictEqual(listed.length, 1)
        assert.strictEqual(listed[0]!.created, 1_000)
        assert.notInclude(listed[0]!.handle, id)
        const unbound = `${id}-unbound`
        yield* store.create(unbound, fresh(), MAX)
        assert.isUndefined(Option.getOrThrow(yield* store.load(unbound)).principal)
        assert.strictEqual((yield* store.list(principal)).length, 1)
      }))

    test("binding by commit moves the session from the old principal's index to the new one", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const [alice, bob] = [`alice-${id}`, `bob-${id}`]
        yield* store.create(id, fresh(), MAX)
        assert.strictEqual(yield* store.commit(id, changes({ principal: alice }), MAX), "Committed")
        assert.strictEqual((yield* store.list(alice)).length, 1)
        assert.strictEqual(yield* store.commit(id, changes({ principal: bob }), MAX), "Committed")
        assert.strictEqual(Option.getOrThrow(yield* store.load(id)).principal, bob)
        assert.deepStrictEqual(yield* store.list(alice), [])
        assert.strictEqual((yield* store.list(bob)).length, 1)
        // a longer life keeps the session listed
        yield* store.commit(id, changes({ timeout: 200 }), MAX)
        yield* store.touch(id, 150_000)
        assert.strictEqual((yield* store.list(bob)).length, 1)
      }))

    test("create replacing a session deletes it only once the new one is stored, and unlists it", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const principal = `carol-${id}`
        const [old, next] = [`${id}-old`, `${id}-new`]
        yield* store.create(old, fresh({ a: "1" }, { principal }), MAX)
        // the new session is too large: nothing happens to the old one
        const tooLarge = yield* Effect.either(store.create(next, fresh({ a: "x".repeat(200) }), SMALL, old))
        assert.isTrue(tooLarge._tag === "Left" && tooLarge.left._tag === "SessionTooLarge")
        assert.isTrue(Option.isSome(yield* store.load(old)))
        // the new id is taken: nothing happens to the old one either
        yield* store.create(next, fresh({ taken: "1" }), MAX)
        assert.isFalse(yield* store.create(next, fresh({ a: "1" }), MAX, old))
        assert.isTrue(Option.isSome(yield* store.load(old)))
        assert.isTrue(yield* store.remove(next))
        // replaced: the old session and its index entry are gone, the new one is listed
        assert.isTrue(yield* store.create(next, fresh({ a: "1" }, { principal }), MAX, old))
        assert.isTrue(Option.isNone(yield* store.load(old)))
        assert.strictEqual(Option.getOrThrow(yield* store.load(next)).fields.get("a"), "1")
        const listed = yield* store.list(principal)
        assert.strictEqual(listed.length, 1)
        // replacing a session that is already gone still creates the new one
        assert.isTrue(yield* store.create(`${id}-third`, fresh(), MAX, `${id}-never`))
      }))

    test("remove and revoke end sessions and drop them from the index", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const principal = `dave-${id}`
        const ids = [1, 2, 3].map((n) => `${id}-${n}`)
        for (const [n, sid] of ids.entries()) {
          yield* store.create(sid, fresh({}, { principal, created: 1_000 + n }), MAX)
        }
        const listed = yield* store.list(principal)
        assert.deepStrictEqual(listed.map((s) => s.created), [1_000, 1_001, 1_002])
        assert.isTrue(yield* store.remove(ids[0]!))
        assert.strictEqual((yield* store.list(principal)).length, 2)
        // a handle of another principal, or a made-up one, revokes nothing
        yield* store.create(`${id}-other`, fresh({}, { principal: `erin-${id}` }), MAX)
        const [other] = yield* store.list(`erin-${id}`)
        assert.strictEqual(yield* store.revoke(principal, [other!.handle, "f".repeat(64)]), 0)
        assert.isTrue(Option.isSome(yield* store.load(`${id}-other`)))
        assert.strictEqual(yield* store.revoke(principal, [listed[1]!.handle]), 1)
        assert.isTrue(Option.isNone(yield* store.load(ids[1]!)))
        assert.strictEqual((yield* store.list(principal)).length, 1)
        assert.strictEqual(yield* store.revoke(principal, [listed[1]!.handle]), 0)
      }))

    test("the per-principal limit revokes the oldest others, never the session being bound", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const principal = `frank-${id}`
        const limits: Limits = { ...MAX, maxSessionsPerPrincipal: 2 }
        for (const n of [1, 2]) yield* store.create(`${id}-${n}`, fresh({}, { principal, created: n }), limits)
        yield* store.create(`${id}-3`, fresh({}, { principal, created: 3 }), limits)
        assert.deepStrictEqual((yield* store.list(principal)).map((s) => s.created), [2, 3])
        assert.isTrue(Option.isNone(yield* store.load(`${id}-1`)))
        // binding an old session by commit keeps it and revokes the oldest other
        yield* store.create(`${id}-0`, fresh({}, { created: 0 }), limits)
        yield* store.commit(`${id}-0`, changes({ principal }), limits)
        assert.deepStrictEqual((yield* store.list(principal)).map((s) => s.created), [0, 3])
      }))

    test("ended sessions leave the listing", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const principal = `grace-${id}`
        yield* store.create(`${id}-short`, fresh({}, { principal, timeout: 1 }), MAX)
        yield* store.create(`${id}-long`, fresh({}, { principal }), MAX)
        yield* clock.advance(1_300)
        assert.strictEqual((yield* store.list(principal)).length, 1)
      }))

    test("keys and values are stored byte for byte", (id) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const fields = new Map([
          ["__proto__", "{\"polluted\":true}"],
          ["constructor", "1"],
          ["é ключ 🔑", "\"ünï\""],
          ["", "0"]
        ])
        yield* store.create(id, fresh(fields), MAX)
        yield* store.commit(id, changes({ set: new Map([["toString", "2"]]) }), MAX)
        const loaded = Option.getOrThrow(yield* store.load(id))
        assert.strictEqual(loaded.fields.get("__proto__"), "{\"polluted\":true}")
        assert.strictEqual(loaded.fields.get("é ключ 🔑"), "\"ünï\"")
        assert.strictEqual(loaded.fields.size, 5)
        assert.isUndefined(({} as any).polluted)
      }))
  })
