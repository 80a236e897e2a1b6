/**
 * The storage contract of sessions, and an in-memory implementation with the same semantics as
 * Redis (expiry follows the Effect `Clock`, so `TestClock.adjust` expires sessions).
 *
 * A stored session is a set of fields (one per session key, already encoded) plus its creation time,
 * idle timeout and optional absolute deadline. Every operation touches one session and is atomic.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { RedisError } from "./SessionError.js"
import { SessionConflict, SessionTooLarge } from "./SessionError.js"

/**
 * The longest idle or absolute timeout, in seconds (ten years): beyond it TTLs stop being exact integers
 * in Redis' Lua.
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 *
 * const valid = (seconds: number) => Number.isInteger(seconds) && seconds >= 1 && seconds <= SessionStore.MAX_TIMEOUT
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_TIMEOUT = 10 * 365 * 24 * 60 * 60

/**
 * A session as loaded from the store.
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 * import { Effect, Option } from "effect"
 *
 * const secondsLeft = (key: string) =>
 *   Effect.flatMap(SessionStore.SessionStore, (store) => store.load(key)).pipe(
 *     Effect.map(Option.map((session) => session.ttl / 1000))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredSession {
  /** Encoded value of every session key. */
  readonly fields: ReadonlyMap<string, string>
  /** Creation time, epoch milliseconds. */
  readonly created: number
  /** Idle timeout, seconds. */
  readonly timeout: number
  /** Epoch milliseconds after which the session is dead however active it is. */
  readonly absoluteDeadline: number | undefined
  /** The principal (user id) the session is bound to. */
  readonly principal: string | undefined
  /** When the session's life was last extended (created, committed or touched), epoch milliseconds. */
  readonly lastSeen: number
  /** Until when the principal's index is kept alive for this session, epoch milliseconds. */
  readonly indexExpiry: number | undefined
  /** Milliseconds the session has left at load time. */
  readonly ttl: number
}

/**
 * A new session to store.
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * // a test fixture: a session that exists before the request under test
 * const session: SessionStore.NewSession = {
 *   fields: new Map([["userId", JSON.stringify("user-42")]]),
 *   created: Date.now(), timeout: 1200, absoluteDeadline: undefined, principal: undefined, indexExpiry: undefined
 * }
 * const seed = (key: string) => Effect.flatMap(SessionStore.SessionStore, (store) => store.create(key, session, 65536))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface NewSession {
  readonly fields: ReadonlyMap<string, string>
  readonly created: number
  readonly timeout: number
  readonly absoluteDeadline: number | undefined
  readonly principal: string | undefined
  readonly indexExpiry: number | undefined
}

/**
 * The changes one request makes to an existing session.
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const changes: SessionStore.Changes = {
 *   clear: false, set: new Map([["theme", JSON.stringify("dark")]]), remove: ["cart"],
 *   timeout: undefined, principal: undefined, indexExpiry: undefined, expected: undefined
 * }
 * const apply = (key: string) => Effect.flatMap(SessionStore.SessionStore, (store) => store.commit(key, changes, 65536))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Changes {
  /** Remove every key before applying `set` and `remove`. */
  readonly clear: boolean
  readonly set: ReadonlyMap<string, string>
  readonly remove: ReadonlyArray<string>
  /** A new idle timeout in seconds, kept for the rest of the session's life. */
  readonly timeout: number | undefined
  /** A new principal to bind the session to. */
  readonly principal: string | undefined
  /** With `principal`: until when its index is kept alive for this session. */
  readonly indexExpiry: number | undefined
  /**
   * Strict mode: for each key in `set` and `remove`, the encoded value this request read
   * (`undefined`: the key was absent). A key whose stored value differs fails the commit.
   */
  readonly expected: ReadonlyMap<string, string | undefined> | undefined
}

/**
 * What a commit found: `Committed`, or `Gone` when the session no longer exists (it expired or was
 * deleted meanwhile); a gone session is never recreated.
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const saved = (key: string, changes: SessionStore.Changes) =>
 *   Effect.flatMap(SessionStore.SessionStore, (store) => store.commit(key, changes, 65536)).pipe(
 *     Effect.map((result) => result._tag === "Committed")
 *   )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type CommitResult =
  | { readonly _tag: "Committed"; readonly renewal: IndexRenewal | undefined }
  | { readonly _tag: "Gone" }

/**
 * A bound session's life now extends past the time its principal's index was kept alive for: the index
 * must be extended to `until` (the store already recorded the new time in the session).
 *
 * @example
 * ```ts
 * import { SessionId, SessionStore } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const touch = (store: SessionStore.SessionStore["Type"], prefix: string, key: string) =>
 *   Effect.flatMap(store.touch(key, 1_200_000), (renewal) =>
 *     renewal === undefined
 *       ? Effect.void
 *       : store.index(SessionId.principalKey(prefix, renewal.principal), key, renewal.created, renewal.until - Date.now()))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface IndexRenewal {
  readonly principal: string
  readonly created: number
  readonly until: number
}

/**
 * When a bound session whose life is extended to `now + ttl` needs its principal's index renewed, the new
 * time the index must live until (twice the session's remaining life, so renewals are rare).
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 *
 * const now = Date.now()
 * SessionStore.indexRenewalTime(now, 1_200_000, "user-42", undefined) // now + 2_400_000
 * SessionStore.indexRenewalTime(now, 1_200_000, "user-42", now + 3_600_000) // undefined: the index lives long enough
 * ```
 *
 * @since 0.1.0
 * @category index
 */
export const indexRenewalTime = (
  now: number,
  ttl: number,
  principal: string | undefined,
  indexExpiry: number | undefined
): number | undefined =>
  principal !== undefined && (indexExpiry === undefined || now + ttl > indexExpiry) ? now + 2 * ttl : undefined

/**
 * Where sessions live. Keys are storage keys (see `SessionId.storageKey`), never raw session ids.
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const exists = (key: string) =>
 *   Effect.flatMap(SessionStore.SessionStore, (store) => store.load(key)).pipe(Effect.map((s) => s._tag === "Some"))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class SessionStore extends Context.Tag("effect-redis-sessions/SessionStore")<SessionStore, {
  /** One round trip; `None` for a missing, expired or unreadable session. Never writes. */
  readonly load: (key: string) => Effect.Effect<Option.Option<StoredSession>, RedisError>
  /** Stores a new session unless the key exists (`false` then); sets its TTL. */
  readonly create: (
    key: string,
    session: NewSession,
    maxSize: number
  ) => Effect.Effect<boolean, RedisError | SessionTooLarge>
  /** Applies changes to an existing session and slides its TTL, in one atomic step. */
  readonly commit: (
    key: string,
    changes: Changes,
    maxSize: number
  ) => Effect.Effect<CommitResult, RedisError | SessionConflict | SessionTooLarge>
  /** Deletes a session; `true` if it existed. */
  readonly remove: (key: string) => Effect.Effect<boolean, RedisError>
  /** Sets the remaining life of an existing session (no effect on a missing one). */
  readonly touch: (key: string, ttl: number) => Effect.Effect<IndexRenewal | undefined, RedisError>
  /** Adds a session to a principal's index, which then lives at least `ttl` more milliseconds. */
  readonly index: (
    indexKey: string,
    sessionKey: string,
    created: number,
    ttl: number
  ) => Effect.Effect<void, RedisError>
  /** The sessions in a principal's index (storage key → creation time); some may have ended. */
  readonly indexed: (indexKey: string) => Effect.Effect<ReadonlyMap<string, number>, RedisError>
  /**
   * Waits until replicas acknowledged the writes to `key` (Redis `WAIT`, when configured); used after
   * logins, logouts, regenerations and revocations. A no-op in memory.
   */
  readonly confirm: (key: string) => Effect.Effect<void, RedisError>
  /** Removes sessions from a principal's index. */
  readonly unindex: (indexKey: string, sessionKeys: ReadonlyArray<string>) => Effect.Effect<void, RedisError>
}>() {}

/**
 * The size the `max_size` limit applies to: bytes of every key name and encoded value.
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 *
 * SessionStore.sizeOf(new Map([["theme", JSON.stringify("dark")]])) // 11
 * ```
 *
 * @since 0.1.0
 * @category size
 */
export const sizeOf = (fields: Iterable<readonly [string, string]>): number => {
  let size = 0
  for (const [key, value] of fields) size += Buffer.byteLength(key) + Buffer.byteLength(value)
  return size
}

/**
 * Remaining life of a session at `now`: its idle timeout, cut at its absolute deadline.
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 *
 * const now = Date.now()
 * SessionStore.lifetime(now, 1200, undefined) // 1_200_000 ms
 * SessionStore.lifetime(now, 1200, now + 60_000) // 60_000 ms: the absolute deadline comes first
 * ```
 *
 * @since 0.1.0
 * @category size
 */
export const lifetime = (now: number, timeout: number, absoluteDeadline: number | undefined): number =>
  absoluteDeadline === undefined ? timeout * 1000 : Math.min(timeout * 1000, absoluteDeadline - now)

interface Entry {
  readonly fields: Map<string, string>
  readonly created: number
  timeout: number
  readonly absoluteDeadline: number | undefined
  principal: string | undefined
  indexExpiry: number | undefined
  lastSeen: number
  expiresAt: number
}

interface Index {
  readonly members: Map<string, number>
  expiresAt: number
}

/**
 * An in-memory store with the same semantics as the Redis store. Its state lives in the layer, so one
 * layer instance is one "Redis".
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 * import { Effect, Layer } from "effect"
 *
 * // one store for every test that provides this layer, so sessions outlive a single test's layer
 * const SharedStore = Layer.succeed(SessionStore.SessionStore, Effect.runSync(SessionStore.makeMemory))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<SessionStore["Type"]> = Effect.sync(() => {
  const entries = new Map<string, Entry>()
  const indexes = new Map<string, Index>()
  const live = <A extends { expiresAt: number }>(map: Map<string, A>, key: string, now: number): A | undefined => {
    const entry = map.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt > now) return entry
    map.delete(key)
    return undefined
  }
  const extend = (entry: Entry, now: number, ttl: number): IndexRenewal | undefined => {
    entry.expiresAt = now + ttl
    entry.lastSeen = now
    const until = indexRenewalTime(now, ttl, entry.principal, entry.indexExpiry)
    if (until === undefined) return undefined
    entry.indexExpiry = until
    return { principal: entry.principal!, created: entry.created, until }
  }
  const conflict = (entry: Entry, changes: Changes): string | undefined => {
    if (changes.expected === undefined) return undefined
    for (const [key, expected] of changes.expected) {
      if (entry.fields.get(key) !== expected) return key
    }
    return undefined
  }
  return SessionStore.of({
    load: (key) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const entry = live(entries, key, now)
        return entry === undefined ? Option.none() : Option.some({
          fields: new Map(entry.fields),
          created: entry.created,
          timeout: entry.timeout,
          absoluteDeadline: entry.absoluteDeadline,
          principal: entry.principal,
          lastSeen: entry.lastSeen,
          indexExpiry: entry.indexExpiry,
          ttl: entry.expiresAt - now
        })
      }),
    create: (key, session, maxSize) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const size = sizeOf(session.fields)
        if (size > maxSize) return Effect.fail(new SessionTooLarge({ size, maxSize }))
        if (live(entries, key, now) !== undefined) return Effect.succeed(false)
        entries.set(key, {
          fields: new Map(session.fields),
          created: session.created,
          timeout: session.timeout,
          absoluteDeadline: session.absoluteDeadline,
          principal: session.principal,
          indexExpiry: session.indexExpiry,
          lastSeen: now,
          expiresAt: now + lifetime(now, session.timeout, session.absoluteDeadline)
        })
        return Effect.succeed(true)
      }),
    commit: (key, changes, maxSize) =>
      Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<CommitResult, SessionConflict | SessionTooLarge> => {
        const entry = live(entries, key, now)
        if (entry === undefined) return Effect.succeed({ _tag: "Gone" })
        const conflicting = conflict(entry, changes)
        if (conflicting !== undefined) return Effect.fail(new SessionConflict({ key: conflicting }))
        const fields = new Map(changes.clear ? [] : entry.fields)
        for (const [k, v] of changes.set) fields.set(k, v)
        for (const k of changes.remove) fields.delete(k)
        const size = sizeOf(fields)
        if (size > maxSize) return Effect.fail(new SessionTooLarge({ size, maxSize }))
        entry.fields.clear()
        for (const [k, v] of fields) entry.fields.set(k, v)
        if (changes.timeout !== undefined) entry.timeout = changes.timeout
        if (changes.principal !== undefined) {
          entry.principal = changes.principal
          entry.indexExpiry = changes.indexExpiry
        }
        const ttl = lifetime(now, entry.timeout, entry.absoluteDeadline)
        if (ttl <= 0) {
          entries.delete(key)
          return Effect.succeed({ _tag: "Gone" })
        }
        return Effect.succeed({ _tag: "Committed", renewal: extend(entry, now, ttl) })
      }),
    remove: (key) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const existed = live(entries, key, now) !== undefined
        entries.delete(key)
        return existed
      }),
    touch: (key, ttl) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const entry = live(entries, key, now)
        return entry === undefined ? undefined : extend(entry, now, ttl)
      }),
    index: (indexKey, sessionKey, created, ttl) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const index = live(indexes, indexKey, now) ?? { members: new Map(), expiresAt: 0 }
        index.members.set(sessionKey, created)
        index.expiresAt = Math.max(index.expiresAt, now + ttl)
        indexes.set(indexKey, index)
      }),
    confirm: () => Effect.void,
    indexed: (indexKey) => Effect.map(Clock.currentTimeMillis, (now) => new Map(live(indexes, indexKey, now)?.members)),
    unindex: (indexKey, sessionKeys) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const index = live(indexes, indexKey, now)
        if (index === undefined) return
        for (const key of sessionKeys) index.members.delete(key)
        if (index.members.size === 0) indexes.delete(indexKey)
      })
  })
})

/**
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const program = Effect.flatMap(SessionStore.SessionStore, (store) => store.load("missing")).pipe(
 *   Effect.provide(SessionStore.layerMemory)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<SessionStore> = Layer.effect(SessionStore, makeMemory)
