/**
 * "Log out everywhere": the live sessions of a principal (a user id), as bound with `Session.bind`.
 *
 * Each principal has an index (a Redis hash under a hash tag derived from the principal, so it works on
 * Redis Cluster) that lists its sessions. Sessions that expired or were invalidated are dropped from it
 * whenever it is read, so it never reports them. Binding costs one index write on the request that binds;
 * other requests pay nothing, except that a bound session whose life outgrows its index's TTL renews the
 * index once (at most about once per idle timeout).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PrincipalIndex from "./internal/principalIndex.js"
import { SessionConfig } from "./SessionConfig.js"
import type { RedisError } from "./SessionError.js"
import { SessionStore } from "./SessionStore.js"

/**
 * A live session of a principal.
 *
 * @example
 * ```ts
 * import { SessionIndex } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const devices = (userId: string) =>
 *   Effect.flatMap(SessionIndex.SessionIndex, (index) => index.list(userId)).pipe(
 *     Effect.map((sessions) => sessions.map((s) => ({ handle: s.handle, lastSeen: new Date(s.lastSeen) })))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type IndexedSession = PrincipalIndex.IndexedSession

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
export class SessionIndex extends Context.Tag("effect-redis-sessions/SessionIndex")<SessionIndex, {
  /** The principal's live sessions, oldest first. */
  readonly list: (principal: string) => Effect.Effect<ReadonlyArray<IndexedSession>, RedisError>
  /** Ends one of the principal's sessions; `false` if it is not (or no longer) one of them. */
  readonly revoke: (principal: string, handle: string) => Effect.Effect<boolean, RedisError>
  /** Ends every session of the principal; returns how many were live. */
  readonly revokeAll: (principal: string) => Effect.Effect<number, RedisError>
}>() {}

/**
 * Builds the index over the `SessionStore` and `SessionConfig` in context.
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
export const make: Effect.Effect<SessionIndex["Type"], never, SessionStore | SessionConfig> = Effect.gen(function*() {
  const store = yield* SessionStore
  const { prefix } = yield* SessionConfig
  return SessionIndex.of({
    list: (principal) => PrincipalIndex.list(store, prefix, principal),
    revoke: (principal, handle) =>
      Effect.flatMap(
        PrincipalIndex.list(store, prefix, principal),
        (sessions) =>
          sessions.some((s) => s.handle === handle)
            ? Effect.map(PrincipalIndex.revoke(store, prefix, principal, [handle]), (n) => n > 0)
            : Effect.succeed(false)
      ),
    revokeAll: (principal) =>
      Effect.flatMap(
        PrincipalIndex.list(store, prefix, principal),
        (sessions) => PrincipalIndex.revoke(store, prefix, principal, sessions.map((s) => s.handle))
      )
  })
})

/**
 * The index over the application's `SessionStore` and `SessionConfig`.
 *
 * @example
 * ```ts
 * import { RedisSession, SessionIndex } from "effect-redis-sessions"
 * import { Layer } from "effect"
 *
 * const IndexLive = SessionIndex.layer.pipe(
 *   Layer.provide(RedisSession.layerServices({ secret: "a-secret-of-at-least-32-characters!!" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<SessionIndex, never, SessionStore | SessionConfig> = Layer.effect(SessionIndex, make)
