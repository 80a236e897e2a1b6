/**
 * "Log out everywhere": the live sessions of a principal (a user id), as bound with `Session.bind`.
 *
 * The store keeps an index of each principal's sessions; ended sessions are dropped from it whenever it is
 * read, so it never reports them. Binding costs one index write on the request that binds; other requests
 * pay nothing, except that a bound session whose life outgrows its index renews the index once (at most
 * about once per idle timeout).
 *
 * Inside a request served with the session middleware, `SessionIndex` works on the application's store
 * without being provided; elsewhere (an admin task, a job) provide {@link layer}.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { hash } from "node:crypto"
import { countEvent } from "./internal/counting.js"
import { current, withCurrent } from "./internal/currentSession.js"
import type { SessionStoreError } from "./SessionError.js"
import { type SessionEventInput, SessionEvents, type SessionEventsService } from "./SessionEvents.js"
import { type IndexedSession, type ReindexProgress, type RemovalProgress, SessionStore } from "./SessionStore.js"

/**
 * A live session of a principal, as a "your devices" page shows it.
 *
 * @example
 * ```ts
 * import type { SessionIndex } from "effect-redis-sessions"
 * import { Option } from "effect"
 *
 * const describe = (session: SessionIndex.ListedSession) =>
 *   `${Option.getOrElse(session.userAgent, () => "unknown browser")}, last seen ` +
 *   new Date(session.lastSeen).toISOString() + (session.current ? " (this device)" : "")
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface ListedSession {
  /**
   * Names the session for `revoke`. Neither its id nor its storage key, and no way to either: it cannot load
   * or forge the session. Safe to put in a page.
   */
  readonly handle: string
  /** Creation time, epoch milliseconds. */
  readonly created: number
  /** Last time the session's life was extended (a commit or a touch), epoch milliseconds. */
  readonly lastSeen: number
  /** The user agent of the client that created the session (with `record_client`), at most 256 bytes. */
  readonly userAgent: Option.Option<string>
  /** The network of that client (with `record_client`): the /24 of an IPv4 address, the /48 of an IPv6 one. */
  readonly network: Option.Option<string>
  /** Whether this is the session of the request that listed it. */
  readonly current: boolean
}

/**
 * The operations of {@link SessionIndex}.
 *
 * @example
 * ```ts
 * import { SessionIndex } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const devices = (index: SessionIndex.SessionIndexService, userId: string) =>
 *   Effect.map(index.list(userId), (sessions) => sessions.map((s) => new Date(s.lastSeen)))
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface SessionIndexService {
  /** The principal's live sessions, oldest first. */
  readonly list: (principal: string) => Effect.Effect<ReadonlyArray<ListedSession>, SessionStoreError>
  /**
   * Ends one of the principal's sessions by its handle; `false` (and nothing ended) when the handle names no
   * live session of this principal, or names the current request's own session (end that with
   * `Session.invalidate`).
   */
  readonly revoke: (principal: string, handle: string) => Effect.Effect<boolean, SessionStoreError>
  /**
   * "Sign out other devices": ends every session of the principal but the current request's; returns how many
   * it ended. Only inside a request served with the session middleware (a defect elsewhere).
   */
  readonly revokeOthers: (principal: string) => Effect.Effect<number, SessionStoreError>
  /** Ends every session of the principal; returns how many were live. */
  readonly revokeAll: (principal: string) => Effect.Effect<number, SessionStoreError>
  /**
   * Ends every session of every principal (an operator's "log everyone out", after a breach): walks the
   * store about `batchSize` keys at a time (default 1000; on Redis, `SCAN` on every master) and emits the
   * running totals after each batch. Safe to run while traffic continues, and to run again: sessions
   * created meanwhile may survive one run. Publishes no lifecycle events.
   */
  readonly revokeEveryone: (batchSize?: number) => Stream.Stream<RemovalProgress, SessionStoreError>
  /**
   * Rebuilds every principal's index from the sessions themselves (on Redis, `SCAN` on every master), for an
   * operator after an index was lost (evicted under memory pressure, deleted by hand): until then `list`,
   * `revokeAll` and `revokeOthers` do not see the sessions it held. Emits running totals; idempotent, and
   * safe while traffic continues.
   */
  readonly rebuildIndexes: (batchSize?: number) => Stream.Stream<ReindexProgress, SessionStoreError>
}

/** A session's public handle: a one-way function of the store's handle, never the handle itself. */
const publicHandle = (session: IndexedSession) => hash("sha256", `session-handle:${session.handle}`).slice(0, 32)

const listed = (session: IndexedSession): ListedSession => ({
  handle: publicHandle(session),
  created: session.created,
  lastSeen: session.lastSeen,
  userAgent: Option.fromNullable(session.client?.userAgent),
  network: Option.fromNullable(session.client?.network),
  current: session.current
})

/** A walk over the whole store, with a batch size checked first. */
const walking = <A>(
  what: string,
  batchSize: number,
  walk: (batchSize: number) => Stream.Stream<A, SessionStoreError>
) =>
  Number.isInteger(batchSize) && batchSize > 0
    ? walk(batchSize)
    : Stream.dieMessage(`SessionIndex.${what} needs a positive whole batch size, got ${batchSize}`)

/** The id of the stored session of the request being served, if any. */
const currentId = Effect.map(current, (session) => session?.storedId())

/** The index over `store`; revocations are counted, and published to `events` unless it is `undefined`. */
const over = (store: SessionStore["Type"], events: SessionEventsService | undefined): SessionIndexService => {
  const revoke = (principal: string, sessions: ReadonlyArray<IndexedSession>) =>
    Effect.tap(store.revoke(principal, sessions.map((s) => s.handle)), (revoked) => {
      if (revoked === 0) return Effect.void
      const event: SessionEventInput = { _tag: "Revoked", principal, sessions: revoked }
      countEvent(event)
      return events === undefined ? Effect.void : events.publish(event)
    })
  const others = (sessions: ReadonlyArray<IndexedSession>) => sessions.filter((s) => !s.current)
  return {
    list: (principal) =>
      Effect.flatMap(currentId, (id) => Effect.map(store.list(principal, id), (sessions) => sessions.map(listed))),
    revoke: (principal, handle) =>
      Effect.flatMap(currentId, (id) =>
        Effect.flatMap(store.list(principal, id), (sessions) => {
          const target = others(sessions).find((s) => publicHandle(s) === handle)
          return target === undefined ? Effect.succeed(false) : Effect.map(revoke(principal, [target]), (n) => n > 0)
        })),
    revokeOthers: (principal) =>
      withCurrent(
        "SessionIndex.revokeOthers",
        (session) => Effect.flatMap(store.list(principal, session.storedId()), (all) => revoke(principal, others(all)))
      ),
    revokeAll: (principal) => Effect.flatMap(store.list(principal), (sessions) => revoke(principal, sessions)),
    revokeEveryone: (batchSize = 1000) => walking("revokeEveryone", batchSize, store.removeAll),
    rebuildIndexes: (batchSize = 1000) => walking("rebuildIndexes", batchSize, store.reindex)
  }
}

const withStore = <A, E>(f: (index: SessionIndexService) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
  withCurrent(
    "SessionIndex (without SessionIndex.layer)",
    (session) => f(over(session.services.store, session.services.events))
  )

/**
 * @example
 * ```ts
 * import { SessionIndex } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * // after a password change
 * const logOutEverywhere = (userId: string) =>
 *   Effect.flatMap(SessionIndex.SessionIndex, (index) => index.revokeAll(userId))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class SessionIndex extends Context.Reference<SessionIndex>()("effect-redis-sessions/SessionIndex", {
  defaultValue: (): SessionIndexService => ({
    list: (principal) => withStore((index) => index.list(principal)),
    revoke: (principal, handle) => withStore((index) => index.revoke(principal, handle)),
    revokeOthers: (principal) => withStore((index) => index.revokeOthers(principal)),
    revokeAll: (principal) => withStore((index) => index.revokeAll(principal)),
    revokeEveryone: (batchSize) => Stream.unwrap(withStore((index) => Effect.succeed(index.revokeEveryone(batchSize)))),
    rebuildIndexes: (batchSize) => Stream.unwrap(withStore((index) => Effect.succeed(index.rebuildIndexes(batchSize))))
  })
}) {}

/**
 * Builds the index over the `SessionStore` in context.
 *
 * @example
 * ```ts
 * import { SessionIndex } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * // a one-off admin task, outside the HTTP server
 * const revokeAll = (userId: string) => Effect.flatMap(SessionIndex.make, (index) => index.revokeAll(userId))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<SessionIndexService, never, SessionStore> = Effect.zipWith(
  SessionStore,
  SessionEvents,
  (store, events) => over(store, events.active ? events : undefined)
)

/**
 * The index over the application's `SessionStore`, for use outside requests.
 *
 * @example
 * ```ts
 * import { RedisSessionStore, SessionIndex } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * // a job that signs a user out everywhere, on the store the settings (REDIS_SESSIONS_*) name
 * const signOutEverywhere = (userId: string) =>
 *   Effect.flatMap(SessionIndex.SessionIndex, (index) => index.revokeAll(userId)).pipe(
 *     Effect.provide(SessionIndex.layer),
 *     Effect.provide(RedisSessionStore.layerConfig())
 *   )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<SessionIndex, never, SessionStore> = Layer.effect(SessionIndex, make)
