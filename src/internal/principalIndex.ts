import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { RedisError } from "../SessionError.js"
import * as SessionId from "../SessionId.js"
import type { SessionStore } from "../SessionStore.js"

/** A live session of a principal, as listed by the index. */
export interface IndexedSession {
  /** Opaque handle of the session (its storage key; not a credential). */
  readonly handle: string
  /** Creation time, epoch milliseconds. */
  readonly created: number
  /** Last time the session was used in a way that extended its life, epoch milliseconds. */
  readonly lastSeen: number
}

/** Lists a principal's live sessions, oldest first, and prunes the ones that ended from the index. */
export const list = (
  store: SessionStore["Type"],
  prefix: string,
  principal: string
): Effect.Effect<Array<IndexedSession>, RedisError> =>
  Effect.gen(function*() {
    const indexKey = SessionId.principalKey(prefix, principal)
    const members = yield* store.indexed(indexKey)
    const loaded = yield* Effect.forEach(
      members.keys(),
      (handle) => Effect.map(store.load(handle), (session) => [handle, session] as const),
      { concurrency: 16 }
    )
    const live: Array<IndexedSession> = []
    const dead: Array<string> = []
    for (const [handle, session] of loaded) {
      if (Option.isSome(session) && session.value.principal === principal) {
        live.push({ handle, created: session.value.created, lastSeen: session.value.lastSeen })
      } else {
        dead.push(handle)
      }
    }
    yield* store.unindex(indexKey, dead)
    return live.sort((a, b) => a.created - b.created)
  })

/** Ends some of a principal's sessions now and drops them from its index; returns how many were live. */
export const revoke = (
  store: SessionStore["Type"],
  prefix: string,
  principal: string,
  handles: ReadonlyArray<string>
): Effect.Effect<number, RedisError> =>
  Effect.gen(function*() {
    const removed = yield* Effect.forEach(
      handles,
      (handle) => Effect.tap(store.remove(handle), () => store.confirm(handle)),
      { concurrency: 16 }
    )
    yield* store.unindex(SessionId.principalKey(prefix, principal), handles)
    return removed.filter(Boolean).length
  })

/** Revokes the oldest sessions of a principal beyond `max`, never `keep` (the session just bound). */
export const enforceLimit = (
  store: SessionStore["Type"],
  prefix: string,
  principal: string,
  max: number,
  keep: string
): Effect.Effect<void, RedisError> =>
  Effect.flatMap(list(store, prefix, principal), (sessions) => {
    const others = sessions.filter((s) => s.handle !== keep)
    const excess = others.length - (max - 1)
    return excess <= 0
      ? Effect.void
      : Effect.asVoid(revoke(store, prefix, principal, others.slice(0, excess).map((s) => s.handle)))
  })
