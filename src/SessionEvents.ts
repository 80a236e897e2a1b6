/**
 * What happens to sessions, as events an application can subscribe to: for audit logs, "new sign-in" e-mails
 * or security alerts. Delivery is in-process, from the request that caused the event: it never waits for a
 * subscriber and never fails a request. A subscriber that falls `capacity` events behind misses the next ones,
 * counted by the `sessions_events_dropped` metric (`SessionMetrics.eventsDropped`), instead of making memory grow. Without the layer nothing is
 * published and nothing is allocated.
 *
 * Events do not come from Redis keyspace notifications, which Redis delivers at most once, to connected clients
 * only, and not for keys that expire unread: sessions that expire without being read again have no event.
 *
 * @since 0.3.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { eventsDropped } from "./SessionMetrics.js"

/**
 * One session event. Events name the principal a session is bound to (`Session.bind`) where it is known, never
 * the session id, which is a credential. `at` is when the event happened, by the Effect `Clock`.
 *
 * - `Created`: a new session was stored (the first write of a visitor, or a login's new session).
 * - `Regenerated`: a session was stored under a new id and its old id deleted (`Session.regenerate`).
 * - `Bound`: a session was bound to `principal`, from `previous` if it was bound before.
 * - `Invalidated`: a request ended its session (`Session.invalidate`).
 * - `Revoked`: `sessions` sessions of `principal` were ended through `SessionIndex`.
 * - `ExpiredOnRead`: a request read the session of a valid cookie and found it ended: timed out, logged out
 *   in another tab, revoked or evicted.
 * - `Conflict`: in strict mode, a commit was refused because another request changed the same keys.
 *
 * @example
 * ```ts
 * import { SessionEvents } from "effect-redis-sessions"
 *
 * const describe = (event: SessionEvents.SessionEvent) =>
 *   SessionEvents.SessionEvent.$match(event, {
 *     Created: () => "session created",
 *     Regenerated: () => "session id renewed",
 *     Bound: ({ principal }) => `signed in as ${principal}`,
 *     Invalidated: () => "signed out",
 *     Revoked: ({ principal, sessions }) => `${sessions} sessions of ${principal} revoked`,
 *     ExpiredOnRead: () => "session had expired",
 *     Conflict: () => "concurrent change refused"
 *   })
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type SessionEvent = Data.TaggedEnum<{
  Created: { readonly at: DateTime.Utc; readonly principal: Option.Option<string> }
  Regenerated: { readonly at: DateTime.Utc; readonly principal: Option.Option<string> }
  Bound: { readonly at: DateTime.Utc; readonly principal: string; readonly previous: Option.Option<string> }
  Invalidated: { readonly at: DateTime.Utc; readonly principal: Option.Option<string> }
  Revoked: { readonly at: DateTime.Utc; readonly principal: string; readonly sessions: number }
  ExpiredOnRead: { readonly at: DateTime.Utc }
  Conflict: { readonly at: DateTime.Utc; readonly principal: Option.Option<string> }
}>

/**
 * Constructors and `$is` / `$match` for {@link SessionEvent}.
 *
 * @example
 * ```ts
 * import { SessionEvents } from "effect-redis-sessions"
 * import { DateTime } from "effect"
 *
 * const event = SessionEvents.SessionEvent.Revoked({ at: DateTime.unsafeNow(), principal: "alice", sessions: 2 })
 * const isRevocation = SessionEvents.SessionEvent.$is("Revoked")(event) // true
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export const SessionEvent = Data.taggedEnum<SessionEvent>()

/**
 * An event as it is published: without `at`, which publishing adds.
 *
 * @example
 * ```ts
 * import type { SessionEvents } from "effect-redis-sessions"
 *
 * const signedOut: SessionEvents.SessionEventInput = { _tag: "Revoked", principal: "alice", sessions: 1 }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type SessionEventInput = SessionEvent extends infer E ? E extends SessionEvent ? Omit<E, "at"> : never
  : never

/**
 * The event bus. Without {@link layer} it is inactive: nothing is published.
 *
 * @example
 * ```ts
 * import { SessionEvents } from "effect-redis-sessions"
 * import { Console, Effect, Queue } from "effect"
 *
 * // an audit log: a fiber that lives as long as the application's scope
 * const auditLog = Effect.gen(function*() {
 *   const events = yield* SessionEvents.SessionEvents
 *   const subscription = yield* events.subscribe
 *   yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(subscription), (event) => Console.log(event._tag))))
 * })
 * ```
 *
 * @since 0.3.0
 * @category tags
 */
export class SessionEvents extends Context.Reference<SessionEvents>()("effect-redis-sessions/SessionEvents", {
  defaultValue: (): SessionEventsService => inactive
}) {}

/**
 * The operations of {@link SessionEvents}.
 *
 * @example
 * ```ts
 * import { SessionEvents } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const listening = (events: SessionEvents.SessionEventsService) =>
 *   events.active ? Effect.logInfo("session events are published") : Effect.logInfo("SessionEvents.layer() is not provided")
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface SessionEventsService {
  /** Whether events are published at all (false without {@link layer}). */
  readonly active: boolean
  /** Publishes an event stamped with the current time; never waits, never fails. */
  readonly publish: (event: SessionEventInput) => Effect.Effect<void>
  /** A queue of the events published from now on, for as long as the scope lives (a defect without {@link layer}). */
  readonly subscribe: Effect.Effect<Queue.Dequeue<SessionEvent>, never, Scope.Scope>
}

const inactive: SessionEventsService = {
  active: false,
  publish: () => Effect.void,
  subscribe: Effect.dieMessage(
    "SessionEvents.subscribe without SessionEvents.layer(): no event is ever published; provide the layer"
  )
}

/**
 * Makes an active event bus in which each subscriber lags by at most `capacity` events (default 1,024).
 *
 * @example
 * ```ts
 * import { SessionEvents } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const program = Effect.scoped(Effect.map(SessionEvents.make({ capacity: 256 }), (events) => events.active))
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (
  options: { readonly capacity?: number | undefined } = {}
): Effect.Effect<SessionEventsService, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(PubSub.dropping<SessionEvent>(options.capacity ?? 1_024), PubSub.shutdown),
    (pubsub) => ({
      active: true,
      publish: (event) =>
        Effect.clockWith((clock) => {
          const stamped = Data.struct({
            ...event,
            at: DateTime.unsafeMake(clock.unsafeCurrentTimeMillis())
          }) as SessionEvent
          if (!pubsub.unsafeOffer(stamped)) eventsDropped.unsafeUpdate(1, [])
          return Effect.void
        }),
      subscribe: PubSub.subscribe(pubsub)
    })
  )

/**
 * Turns events on for the layers it is provided to (the session layer and `SessionIndex`).
 *
 * @example
 * ```ts
 * import { HttpSession, SessionConfig, SessionEvents, SessionStore } from "effect-redis-sessions"
 * import { Layer } from "effect"
 *
 * const Sessions = HttpSession.layerRouter.pipe(
 *   Layer.provide([SessionStore.layerMemory, SessionConfig.layer({ secret: "a-secret-of-at-least-32-characters!!" })]),
 *   Layer.provideMerge(SessionEvents.layer())
 * )
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: { readonly capacity?: number | undefined } = {}): Layer.Layer<SessionEvents> =>
  Layer.scoped(SessionEvents, make(options))
