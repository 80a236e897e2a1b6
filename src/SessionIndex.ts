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
import { countEvent } from "./internal/counting.js"
import { withCurrent } from "./internal/currentSession.js"
import type { SessionStoreError } from "./SessionError.js"
import { type SessionEventInput, SessionEvents, type SessionEventsService } from "./SessionEvents.js"
import { type IndexedSession, SessionStore } from "./SessionStore.js"

export type {
  /**
   * A live session of a principal (the same type as `SessionStore.IndexedSession`).
   *
   * @example
   * ```ts
   * import type { SessionIndex } from "effect-redis-sessions"
   *
   * const handles = (sessions: ReadonlyArray<SessionIndex.IndexedSession>) => sessions.map((s) => s.handle)
   * ```
   *
   * @since 0.1.0
   * @category models
   */
  IndexedSession
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
  readonly list: (principal: string) => Effect.Effect<ReadonlyArray<IndexedSession>, SessionStoreError>
  /** Ends one of the principal's sessions; `false` if it is not (or no longer) one of them. */
  readonly revoke: (principal: string, handle: string) => Effect.Effect<boolean, SessionStoreError>
  /** Ends every session of the principal; returns how many were live. */
  readonly revokeAll: (principal: string) => Effect.Effect<number, SessionStoreError>
}

/** The index over `store`; revocations are counted, and published to `events` unless it is `undefined`. */
const over = (store: SessionStore["Type"], events: SessionEventsService | undefined): SessionIndexService => {
  const revoke = (principal: string, handles: ReadonlyArray<string>) =>
    Effect.tap(store.revoke(principal, handles), (sessions) => {
      if (sessions === 0) return Effect.void
      const revoked: SessionEventInput = { _tag: "Revoked", principal, sessions }
      countEvent(revoked)
      return events === undefined ? Effect.void : events.publish(revoked)
    })
  return {
    list: store.list,
    revoke: (principal, handle) => Effect.map(revoke(principal, [handle]), (n) => n > 0),
    revokeAll: (principal) =>
      Effect.flatMap(store.list(principal), (sessions) => revoke(principal, sessions.map((s) => s.handle)))
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
    revokeAll: (principal) => withStore((index) => index.revokeAll(principal))
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
