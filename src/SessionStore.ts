/**
 * The storage contract of sessions, and an in-memory implementation with the same semantics as
 * Redis (expiry follows the Effect `Clock`, so `TestClock.adjust` expires sessions).
 *
 * A store speaks of sessions, not of a database: it takes session ids, keeps the index of each
 * principal's sessions up to date by itself, and fails with the store-neutral {@link SessionStoreError}.
 * How ids become keys, and what it takes to make a write durable, is the implementation's business.
 * A stored session is a set of fields (one per session key, already encoded) plus its creation time,
 * idle timeout, and optional absolute deadline, principal, time of the last authentication and whether its
 * cookie persists (remember-me).
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { ClientInfo } from "./internal/client.js"
import { digest } from "./internal/keys.js"
import { byAge, type IndexedSession, overLimit } from "./internal/principalIndex.js"
import { lifetime, sizeOf } from "./internal/storage.js"
import { SessionConflict, type SessionStoreError, SessionTooLarge } from "./SessionError.js"

export type {
  /**
   * What a session recorded of the client that created it, with `record_client`: its user agent (at most 256
   * bytes, no control characters) and its network (the /24 or /48 prefix of its address, never the address).
   *
   * @example
   * ```ts
   * import type { SessionStore } from "effect-redis-sessions"
   *
   * const label = (client: SessionStore.ClientInfo | undefined) => client?.userAgent ?? "unknown browser"
   * ```
   *
   * @since 0.3.0
   * @category models
   */
  ClientInfo,
  /**
   * A live session of a principal: an opaque handle (never the id), its creation and last-seen times, its
   * client, and whether it is the session `list` was told is current.
   *
   * @example
   * ```ts
   * import type { SessionStore } from "effect-redis-sessions"
   *
   * const describe = (session: SessionStore.IndexedSession) =>
   *   `signed in ${new Date(session.created).toISOString()}, last seen ${new Date(session.lastSeen).toISOString()}`
   * ```
   *
   * @since 0.2.0
   * @category models
   */
  IndexedSession
}

/**
 * A session as loaded from the store.
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 * import { Effect, Option } from "effect"
 *
 * const secondsLeft = (id: string) =>
 *   Effect.flatMap(SessionStore.SessionStore, (store) => store.load(id)).pipe(
 *     Effect.map(Option.map((session) => session.ttl / 1000))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredSession {
  /** Encoded value of every session key. The request reads this map and copies it before its first change. */
  readonly fields: ReadonlyMap<string, string>
  /** Creation time, epoch milliseconds. */
  readonly created: number
  /** Idle timeout, seconds. */
  readonly timeout: number
  /** Epoch milliseconds after which the session is dead however active it is. */
  readonly absoluteDeadline: number | undefined
  /** The principal (user id) the session is bound to. */
  readonly principal: string | undefined
  /** When the user last proved who they are (bound the session, or re-authenticated), epoch milliseconds. */
  readonly authenticated?: number | undefined
  /** Remember-me: the cookie outlives the browser session, for as long as the session lives. */
  readonly persistent?: boolean | undefined
  /** What the session recorded of its client (with `record_client`). */
  readonly client?: ClientInfo | undefined
  /** When the session's life was last extended (created, committed or touched), epoch milliseconds. */
  readonly lastSeen: number
  /** When the session got its current id (created, regenerated or renewed), epoch milliseconds. */
  readonly issued?: number | undefined
  /**
   * Loaded through an id that was renewed within its grace window: the session now has another id, which
   * this load does not tell; commits and deletions through the old id reach it until the grace ends.
   */
  readonly forwarded?: boolean | undefined
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
 *   created: Date.now(), timeout: 1200, absoluteDeadline: undefined, principal: undefined
 * }
 * const seed = (id: string) =>
 *   Effect.flatMap(SessionStore.SessionStore, (store) => store.create(id, session, SessionStore.noLimits))
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
  /** When the user last proved who they are, epoch milliseconds. */
  readonly authenticated?: number | undefined
  /** Remember-me: the cookie outlives the browser session. */
  readonly persistent?: boolean | undefined
  /** What to record of the client (with `record_client`). */
  readonly client?: ClientInfo | undefined
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
 *   timeout: undefined, principal: undefined, expected: undefined
 * }
 * const apply = (id: string) =>
 *   Effect.flatMap(SessionStore.SessionStore, (store) => store.commit(id, changes, SessionStore.noLimits))
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
  /** A new principal to bind the session to; it leaves the index of the one it was bound to. */
  readonly principal: string | undefined
  /** A new time of the last authentication, epoch milliseconds. */
  readonly authenticated?: number | undefined
  /** Turns remember-me on or off. */
  readonly persistent?: boolean | undefined
  /**
   * Strict mode: for each key in `set` and `remove`, the encoded value this request read
   * (`undefined`: the key was absent). A key whose stored value differs fails the commit.
   */
  readonly expected: ReadonlyMap<string, string | undefined> | undefined
}

/**
 * The limits a write must respect: the size of the session, and how many live sessions its principal may
 * have (when a write binds a session and the principal then has more, its oldest other sessions are revoked).
 *
 * @example
 * ```ts
 * import type { SessionStore } from "effect-redis-sessions"
 *
 * const limits: SessionStore.Limits = { maxSize: 16 * 1024, maxSessionsPerPrincipal: 5 }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Limits {
  /** Largest stored session, in bytes of key names plus encoded values. */
  readonly maxSize: number
  readonly maxSessionsPerPrincipal: number | undefined
}

/**
 * The default limits: 64 KiB per session, no limit on sessions per principal.
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 *
 * const tight: SessionStore.Limits = { ...SessionStore.noLimits, maxSize: 4096 }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export const noLimits: Limits = { maxSize: 64 * 1024, maxSessionsPerPrincipal: undefined }

/**
 * How far `removeAll` has got: keys looked at, sessions and principal indexes deleted, all since it started.
 *
 * @example
 * ```ts
 * import type { SessionStore } from "effect-redis-sessions"
 *
 * const report = (progress: SessionStore.RemovalProgress) =>
 *   `${progress.sessions} sessions and ${progress.indexes} indexes deleted (${progress.scanned} keys seen)`
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface RemovalProgress {
  readonly scanned: number
  readonly sessions: number
  readonly indexes: number
}

/**
 * How far `reindex` has got: keys looked at, sessions found, and bound sessions put back in their principal's
 * index, all since it started.
 *
 * @example
 * ```ts
 * import type { SessionStore } from "effect-redis-sessions"
 *
 * const report = (progress: SessionStore.ReindexProgress) =>
 *   `${progress.bound} of ${progress.sessions} sessions are bound and indexed`
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface ReindexProgress {
  readonly scanned: number
  readonly sessions: number
  readonly bound: number
}

/**
 * What a commit found: `Committed`; `Forwarded` when it was committed through a renewed id within its grace
 * (the session lives on under its new id, which the client already has or is about to get); or `Gone` when
 * the session no longer exists (it expired or was deleted meanwhile), and a gone session is never recreated.
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const saved = (id: string, changes: SessionStore.Changes) =>
 *   Effect.flatMap(SessionStore.SessionStore, (store) => store.commit(id, changes, SessionStore.noLimits)).pipe(
 *     Effect.map((result) => result === "Committed")
 *   )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type CommitResult = "Committed" | "Forwarded" | "Gone"

/**
 * What a renewal of a session's id found (see `SessionStore.renew`).
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 *
 * const describe = (result: SessionStore.RenewResult) => result === "Renewed" ? "new id" : `kept: ${result}`
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type RenewResult = "Renewed" | "AlreadyRenewed" | "Gone" | "Taken"

/**
 * Where sessions live. Every operation is atomic for the session it names; none returns before the write it
 * reports is done (and, where the store replicates, acknowledged as configured).
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const exists = (id: string) =>
 *   Effect.flatMap(SessionStore.SessionStore, (store) => store.load(id)).pipe(Effect.map((s) => s._tag === "Some"))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class SessionStore extends Context.Tag("effect-redis-sessions/SessionStore")<SessionStore, {
  /** `None` for a missing, expired or unreadable session. Never writes. */
  readonly load: (id: string) => Effect.Effect<Option.Option<StoredSession>, SessionStoreError>
  /**
   * Stores a new session unless the id is taken (`false` then). With `replaces`, the session of that id is
   * deleted once, and only if, the new one was stored: a failed login never loses the session it replaces.
   */
  readonly create: (
    id: string,
    session: NewSession,
    limits: Limits,
    replaces?: string
  ) => Effect.Effect<boolean, SessionStoreError | SessionTooLarge>
  /**
   * Gives the session of `id` the id `newId`, with everything it holds as stored now, and keeps `id` reaching
   * it for `grace` milliseconds (loads, commits and deletions through `id` go to it); then `id` names nothing.
   * `Gone` when there is no such session, `AlreadyRenewed` when `id` already forwards (another request renewed
   * it), `Taken` when `newId` is in use; nothing is written then.
   */
  readonly renew: (id: string, newId: string, grace: number) => Effect.Effect<RenewResult, SessionStoreError>
  /** Applies changes to an existing session and slides its life, in one atomic step. */
  readonly commit: (
    id: string,
    changes: Changes,
    limits: Limits
  ) => Effect.Effect<CommitResult, SessionStoreError | SessionConflict | SessionTooLarge>
  /** Deletes a session, and drops it from its principal's index; `true` if it existed. */
  readonly remove: (id: string) => Effect.Effect<boolean, SessionStoreError>
  /** Sets the remaining life (milliseconds) of an existing session; no effect on a missing one. */
  readonly touch: (id: string, ttl: number) => Effect.Effect<void, SessionStoreError>
  /**
   * The principal's live sessions, oldest first; ended ones are dropped from its index on the way. The
   * session of id `current`, if listed, is marked `current`.
   */
  readonly list: (
    principal: string,
    current?: string
  ) => Effect.Effect<ReadonlyArray<IndexedSession>, SessionStoreError>
  /** Ends those of `handles` that are live sessions of the principal; returns how many it ended. */
  readonly revoke: (principal: string, handles: ReadonlyArray<string>) => Effect.Effect<number, SessionStoreError>
  /**
   * Deletes every session and principal index of the store, about `batchSize` keys at a time, and emits the
   * running totals after each batch. Other data is left alone. Safe while traffic continues: sessions
   * created meanwhile may survive, and running it again deletes them.
   */
  readonly removeAll: (batchSize: number) => Stream.Stream<RemovalProgress, SessionStoreError>
  /**
   * Puts every live bound session back in its principal's index (after an index was lost, for example evicted),
   * about `batchSize` keys at a time, emitting the running totals after each batch. Idempotent.
   */
  readonly reindex: (batchSize: number) => Stream.Stream<ReindexProgress, SessionStoreError>
}>() {}

interface Entry {
  readonly fields: Map<string, string>
  readonly created: number
  timeout: number
  readonly absoluteDeadline: number | undefined
  principal: string | undefined
  authenticated: number | undefined
  persistent: boolean
  readonly client: ClientInfo | undefined
  readonly issued: number
  lastSeen: number
  expiresAt: number
}

/**
 * An in-memory store with the same semantics as the Redis store. Its state lives in the layer, so one
 * layer instance is one "Redis". Sessions are kept under the digest of their id, never the id itself.
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
  /** principal → handle → created */
  const indexes = new Map<string, Map<string, number>>()
  /** A renewed id's handle → the handle of its session, until the grace ends. */
  const forwards = new Map<string, { readonly target: string; readonly expiresAt: number }>()

  /** The handle a session id names now: its own, or, within a renewal's grace, its new session's. */
  const resolve = (id: string, now: number): { readonly handle: string; readonly forwarded: boolean } => {
    const handle = digest(id)
    const forward = forwards.get(handle)
    if (forward === undefined) return { handle, forwarded: false }
    if (forward.expiresAt > now) return { handle: forward.target, forwarded: true }
    forwards.delete(handle)
    return { handle, forwarded: false }
  }

  const live = (handle: string, now: number): Entry | undefined => {
    const entry = entries.get(handle)
    if (entry === undefined) return undefined
    if (entry.expiresAt > now) return entry
    entries.delete(handle)
    return undefined
  }
  const unindex = (principal: string | undefined, handle: string) => {
    const index = principal === undefined ? undefined : indexes.get(principal)
    if (index === undefined) return
    index.delete(handle)
    if (index.size === 0) indexes.delete(principal!)
  }
  const retire = (handle: string, now: number): boolean => {
    const entry = live(handle, now)
    entries.delete(handle)
    if (entry !== undefined) unindex(entry.principal, handle)
    return entry !== undefined
  }
  const list = (principal: string, now: number, current?: string): Array<IndexedSession> => {
    const sessions: Array<IndexedSession> = []
    for (const handle of Array.from(indexes.get(principal)?.keys() ?? [])) {
      const entry = live(handle, now)
      if (entry?.principal !== principal) {
        unindex(principal, handle)
        continue
      }
      const { client, created, lastSeen } = entry
      sessions.push({ handle, created, lastSeen, client, current: handle === current })
    }
    return sessions.sort(byAge)
  }
  const bind = (principal: string, handle: string, entry: Entry, limits: Limits, now: number) => {
    const index = indexes.get(principal) ?? new Map<string, number>()
    index.set(handle, entry.created)
    indexes.set(principal, index)
    if (limits.maxSessionsPerPrincipal === undefined) return
    for (const doomed of overLimit(list(principal, now), limits.maxSessionsPerPrincipal, handle)) retire(doomed, now)
  }
  const conflict = (entry: Entry, changes: Changes): string | undefined => {
    if (changes.expected === undefined) return undefined
    for (const [key, expected] of changes.expected) {
      if (entry.fields.get(key) !== expected) return key
    }
    return undefined
  }

  return SessionStore.of({
    load: (id) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const { forwarded, handle } = resolve(id, now)
        const entry = live(handle, now)
        return entry === undefined ? Option.none() : Option.some({
          fields: new Map(entry.fields),
          created: entry.created,
          timeout: entry.timeout,
          absoluteDeadline: entry.absoluteDeadline,
          principal: entry.principal,
          authenticated: entry.authenticated,
          persistent: entry.persistent,
          client: entry.client,
          lastSeen: entry.lastSeen,
          issued: entry.issued,
          forwarded,
          ttl: entry.expiresAt - now
        })
      }),
    create: (id, session, limits, replaces) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const size = sizeOf(session.fields)
        if (size > limits.maxSize) return Effect.fail(new SessionTooLarge({ size, maxSize: limits.maxSize }))
        const handle = digest(id)
        if (live(handle, now) !== undefined) return Effect.succeed(false)
        const entry: Entry = {
          fields: new Map(session.fields),
          created: session.created,
          timeout: session.timeout,
          absoluteDeadline: session.absoluteDeadline,
          principal: session.principal,
          authenticated: session.authenticated,
          persistent: session.persistent === true,
          client: session.client,
          issued: now,
          lastSeen: now,
          expiresAt: now + lifetime(now, session.timeout, session.absoluteDeadline)
        }
        entries.set(handle, entry)
        if (replaces !== undefined) retire(digest(replaces), now)
        if (session.principal !== undefined) bind(session.principal, handle, entry, limits, now)
        return Effect.succeed(true)
      }),
    commit: (id, changes, limits) =>
      Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<CommitResult, SessionConflict | SessionTooLarge> => {
        const { forwarded, handle } = resolve(id, now)
        const entry = live(handle, now)
        if (entry === undefined) return Effect.succeed("Gone")
        const conflicting = conflict(entry, changes)
        if (conflicting !== undefined) return Effect.fail(new SessionConflict({ key: conflicting }))
        const fields = new Map(changes.clear ? [] : entry.fields)
        for (const [k, v] of changes.set) fields.set(k, v)
        for (const k of changes.remove) fields.delete(k)
        const size = sizeOf(fields)
        if (size > limits.maxSize) return Effect.fail(new SessionTooLarge({ size, maxSize: limits.maxSize }))
        const ttl = lifetime(now, changes.timeout ?? entry.timeout, entry.absoluteDeadline)
        if (ttl <= 0) {
          retire(handle, now)
          return Effect.succeed("Gone")
        }
        entry.fields.clear()
        for (const [k, v] of fields) entry.fields.set(k, v)
        if (changes.timeout !== undefined) entry.timeout = changes.timeout
        if (changes.authenticated !== undefined) entry.authenticated = changes.authenticated
        if (changes.persistent !== undefined) entry.persistent = changes.persistent
        entry.expiresAt = now + ttl
        entry.lastSeen = now
        if (changes.principal !== undefined && changes.principal !== entry.principal) {
          unindex(entry.principal, handle)
          entry.principal = changes.principal
          bind(changes.principal, handle, entry, limits, now)
        }
        return Effect.succeed(forwarded ? "Forwarded" : "Committed")
      }),
    renew: (id, newId, grace) =>
      Effect.map(Clock.currentTimeMillis, (now): RenewResult => {
        const old = resolve(id, now)
        if (old.forwarded) return "AlreadyRenewed"
        const entry = live(old.handle, now)
        if (entry === undefined) return "Gone"
        const handle = digest(newId)
        if (live(handle, now) !== undefined) return "Taken"
        entries.delete(old.handle)
        entries.set(handle, { ...entry, fields: new Map(entry.fields), issued: now })
        if (entry.principal !== undefined) {
          unindex(entry.principal, old.handle)
          const index = indexes.get(entry.principal) ?? new Map<string, number>()
          index.set(handle, entry.created)
          indexes.set(entry.principal, index)
        }
        forwards.set(old.handle, { target: handle, expiresAt: now + grace })
        return "Renewed"
      }),
    remove: (id) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const { forwarded, handle } = resolve(id, now)
        if (forwarded) forwards.delete(digest(id))
        return retire(handle, now)
      }),
    touch: (id, ttl) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const { forwarded, handle } = resolve(id, now)
        const entry = forwarded ? undefined : live(handle, now)
        if (entry === undefined) return
        entry.expiresAt = now + ttl
        entry.lastSeen = now
      }),
    list: (principal, current) =>
      Effect.map(
        Clock.currentTimeMillis,
        (now) => list(principal, now, current === undefined ? undefined : digest(current))
      ),
    revoke: (principal, handles) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const members = new Set(list(principal, now).map((s) => s.handle))
        return handles.filter((handle) => members.has(handle) && retire(handle, now)).length
      }),
    reindex: () =>
      Stream.fromEffect(Effect.map(Clock.currentTimeMillis, (now) => {
        let bound = 0
        for (const [handle, entry] of entries) {
          if (entry.expiresAt <= now || entry.principal === undefined) continue
          const index = indexes.get(entry.principal) ?? new Map<string, number>()
          index.set(handle, entry.created)
          indexes.set(entry.principal, index)
          bound++
        }
        return { scanned: entries.size + indexes.size, sessions: entries.size, bound }
      })),
    removeAll: () =>
      Stream.fromEffect(Effect.sync(() => {
        const progress = { scanned: entries.size + indexes.size, sessions: entries.size, indexes: indexes.size }
        entries.clear()
        indexes.clear()
        forwards.clear()
        return progress
      }))
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
