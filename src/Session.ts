/**
 * The session of the current request. Nothing is read from the store until the handler reads something;
 * writes are kept in memory and committed once, as the response is prepared. Every operation is an
 * `Effect` that needs `Session`, which the HTTP middleware provides (see `HttpSession`).
 *
 * There is one `Session` service per process: it finds the state of the current request through the
 * request itself, which the middleware registers, so a request costs no service object and no context
 * copy, and fibers forked by a handler share their request's session.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { randomBytes, timingSafeEqual } from "node:crypto"
import { withCurrent } from "./internal/currentSession.js"
import type { RequestSession } from "./internal/requestSession.js"
import type { InvalidTimeout, SessionEncodeError, SessionNotFresh, SessionStoreError } from "./SessionError.js"
import type { SessionKey } from "./SessionKey.js"

/**
 * How values are turned into the strings stored in Redis. The default is JSON; replace it, for
 * example, to encrypt values. Law: `decode(encode(x))` equals `x`; `decode` throws on bad input.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Layer } from "effect"
 *
 * const Base64Json = Layer.succeed(Session.Codec, {
 *   encode: (value) => Buffer.from(JSON.stringify(value)).toString("base64"),
 *   decode: (text) => JSON.parse(Buffer.from(text, "base64").toString())
 * })
 * ```
 *
 * @since 0.1.0
 * @category codec
 */
export class Codec extends Context.Reference<Codec>()("effect-redis-sessions/Session/Codec", {
  defaultValue: (): { readonly encode: (value: unknown) => string; readonly decode: (text: string) => unknown } => ({
    encode: (value) => {
      const text = JSON.stringify(value)
      if (text === undefined) throw new TypeError("value is not JSON data")
      return text
    },
    decode: (text) => JSON.parse(text)
  })
}) {}

/**
 * A key: a typed {@link SessionKey} or a plain string (any JSON value).
 *
 * @example
 * ```ts
 * import { Session, SessionKey } from "effect-redis-sessions"
 * import { Effect, Schema } from "effect"
 *
 * const forget = (keys: ReadonlyArray<Session.Key<any>>) => Effect.forEach(keys, Session.remove, { discard: true })
 * const logout = forget([SessionKey.make("userId", Schema.String), "cart"])
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Key<A> = SessionKey<A, any> | string

/**
 * Options of {@link Session.flash}.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 *
 * const options: Session.FlashOptions = { queue: "errors", allowDuplicate: false }
 * const declined = Session.flash("Your card was declined", options)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface FlashOptions {
  /** The queue; `""` (the default queue) when omitted. */
  readonly queue?: string | undefined
  /** When `false`, a message equal to one already queued is not added again. Default `true`. */
  readonly allowDuplicate?: boolean | undefined
}

/**
 * The per-request session service.
 *
 * @example
 * ```ts
 * import { Session, SessionKey } from "effect-redis-sessions"
 * import { Effect, Option, Schema } from "effect"
 *
 * const Visits = SessionKey.make("visits", Schema.Int)
 *
 * const countVisit = Effect.gen(function*() {
 *   const visits = Option.getOrElse(yield* Session.get(Visits), () => 0) + 1
 *   yield* Session.set(Visits, visits)
 *   return visits
 * })
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class Session extends Context.Reference<Session>()("effect-redis-sessions/Session", {
  defaultValue: (): SessionService => service
}) {}

/**
 * The operations of {@link Session}; each works on the session of the request it runs in.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const describe = (session: Session.SessionService) =>
 *   Effect.map(session.keys, (keys) => `session with ${keys.length} keys`)
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface SessionService {
  /** The session id (the new one for a session created in this request): a bearer credential. */
  readonly id: Effect.Effect<Redacted.Redacted<string>, SessionStoreError>
  /** Whether the session was created in this request. */
  readonly isNew: Effect.Effect<boolean, SessionStoreError>
  /** When the session was created. */
  readonly created: Effect.Effect<DateTime.Utc, SessionStoreError>
  /** Idle timeout of this session. */
  readonly timeout: Effect.Effect<Duration.Duration, SessionStoreError>
  readonly get: {
    <A>(key: SessionKey<A, any>): Effect.Effect<Option.Option<A>, SessionStoreError>
    (key: string): Effect.Effect<Option.Option<unknown>, SessionStoreError>
  }
  /** Sets a value; fails with `SessionEncodeError` (session unchanged) when it cannot be encoded. */
  readonly set: {
    <A>(key: SessionKey<A, any>, value: A): Effect.Effect<void, SessionEncodeError>
    (key: string, value: unknown): Effect.Effect<void, SessionEncodeError>
  }
  /** Removes a key; removing a missing key changes nothing. */
  readonly remove: (key: Key<any>) => Effect.Effect<void>
  readonly has: (key: Key<any>) => Effect.Effect<boolean, SessionStoreError>
  /** Every key, flash queues (`_f_<queue>`) and the CSRF token (`_csrft_`) included. */
  readonly keys: Effect.Effect<ReadonlyArray<string>, SessionStoreError>
  readonly values: Effect.Effect<ReadonlyArray<unknown>, SessionStoreError>
  readonly entries: Effect.Effect<ReadonlyArray<readonly [string, unknown]>, SessionStoreError>
  readonly size: Effect.Effect<number, SessionStoreError>
  /** Removes every key; keeps the id, creation time and timeout. */
  readonly clear: Effect.Effect<void>
  /** Removes a key and returns its value. */
  readonly pop: {
    <A>(key: SessionKey<A, any>): Effect.Effect<Option.Option<A>, SessionStoreError>
    (key: string): Effect.Effect<Option.Option<unknown>, SessionStoreError>
  }
  /** Forces a commit (and a TTL refresh) even when nothing changed. */
  readonly changed: Effect.Effect<void>
  /** The principal (user id) this session is bound to, if any. */
  readonly principal: Effect.Effect<Option.Option<string>, SessionStoreError>
  /**
   * Binds the session to a principal (call it at login) and records the time of the authentication: it is
   * then listed, and can be revoked, through `SessionIndex`. Regenerated sessions stay bound.
   */
  readonly bind: (principal: string) => Effect.Effect<void>
  /** Records that the user proved who they are again (a password or second factor asked anew). */
  readonly reauthenticated: Effect.Effect<void>
  /** When the user last proved who they are in this session (`bind` or `reauthenticated`). */
  readonly authenticatedAt: Effect.Effect<Option.Option<DateTime.Utc>, SessionStoreError>
  /** Fails with `SessionNotFresh` unless the last authentication is at most `maxAge` old. */
  readonly requireFresh: (
    maxAge: Duration.DurationInput
  ) => Effect.Effect<void, SessionStoreError | SessionNotFresh>
  /**
   * Remember-me: this session's cookie outlives the browser session and both it and the session last
   * `duration` after the last use (never past the absolute timeout).
   */
  readonly rememberMe: (duration: Duration.DurationInput) => Effect.Effect<void, InvalidTimeout | SessionStoreError>
  /**
   * Marks the request passive (polling, health pings): it reads the session but never writes it or extends
   * its life; a write afterwards is a defect.
   */
  readonly passive: Effect.Effect<void>
  /**
   * Deletes the session now; later use of the session starts a new, lazy one. The response deletes the
   * cookie unless a new session is stored.
   */
  readonly invalidate: Effect.Effect<void, SessionStoreError>
  /**
   * Moves the data to a new id (call it at login against session fixation). The old id is deleted when the
   * new session is stored, in the same write, and only then.
   */
  readonly regenerate: Effect.Effect<void, SessionStoreError>
  /** Sets this session's idle timeout (whole seconds, 1 s to ten years); it is kept across requests. */
  readonly adjustTimeout: (timeout: Duration.DurationInput) => Effect.Effect<void, InvalidTimeout>
}

const withRequest = <A, E>(f: (session: RequestSession) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
  withCurrent("Session", f)

const service: SessionService = {
  id: withRequest((s) => Effect.map(s.id(), Redacted.make)),
  isNew: withRequest((s) => s.isNew()),
  created: withRequest((s) => Effect.map(s.createdAt(), DateTime.unsafeMake)),
  timeout: withRequest((s) => Effect.map(s.idleTimeout(), Duration.seconds)),
  get: ((key: Key<any>) => withRequest((s) => s.get(key))) as SessionService["get"],
  set: ((key: Key<any>, value: unknown) => withRequest((s) => s.set(key, value))) as SessionService["set"],
  remove: (key) => withRequest((s) => s.remove(key)),
  has: (key) => withRequest((s) => s.has(key)),
  keys: withRequest((s) => s.keys()),
  values: withRequest((s) => s.values()),
  entries: withRequest((s) => s.entries()),
  size: withRequest((s) => s.size()),
  clear: withRequest((s) => s.clear()),
  pop: ((key: Key<any>) => withRequest((s) => s.pop(key))) as SessionService["pop"],
  changed: withRequest((s) => s.changed()),
  principal: withRequest((s) => s.boundTo()),
  bind: (principal) => withRequest((s) => s.bind(principal)),
  reauthenticated: withRequest((s) => s.reauthenticated()),
  authenticatedAt: withRequest((s) =>
    Effect.map(s.authenticatedAt(), (at) => at === undefined ? Option.none() : Option.some(DateTime.unsafeMake(at)))
  ),
  requireFresh: (maxAge) => withRequest((s) => s.requireFresh(Duration.decode(maxAge))),
  rememberMe: (duration) => withRequest((s) => s.rememberMe(duration)),
  passive: withRequest((s) => s.markPassive()),
  invalidate: withRequest((s) => s.invalidate()),
  regenerate: withRequest((s) => s.regenerate()),
  adjustTimeout: (timeout) => withRequest((s) => s.adjustTimeout(timeout))
}

/** The accessors need `Session` in their type, so that a route without the middleware does not compile. */
const requires = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E, Session> => effect

const CSRF_KEY = "_csrft_"
const flashKey = (queue: string) => `_f_${queue}`
const messagesOf = (messages: Option.Option<unknown>): ReadonlyArray<unknown> =>
  Option.isSome(messages) && Array.isArray(messages.value) ? messages.value : []

const jsonEquals = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return ka.length === kb.length &&
    ka.every((k) => Object.hasOwn(b, k) && jsonEquals((a as any)[k], (b as any)[k]))
}

/**
 * The session id (the new one for a session created in this request), `Redacted` because it is a bearer
 * credential: it does not show in logs or traces unless you unwrap it.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect, Redacted } from "effect"
 * import { createHash } from "node:crypto"
 *
 * // a log field that tells sessions apart without revealing the credential
 * const sessionTag = Effect.map(Session.id, (id) =>
 *   createHash("sha256").update(Redacted.value(id)).digest("hex").slice(0, 12))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const id: Effect.Effect<Redacted.Redacted<string>, SessionStoreError, Session> = requires(service.id)

/**
 * Whether the session was created in this request.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const greeting = Effect.map(Session.isNew, (isNew) => isNew ? "Welcome!" : "Welcome back!")
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const isNew: Effect.Effect<boolean, SessionStoreError, Session> = requires(service.isNew)

/**
 * When the session was created.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { DateTime, Effect } from "effect"
 *
 * const age = Effect.zipWith(Session.created, DateTime.now, (created, now) => DateTime.distanceDuration(created, now))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const created: Effect.Effect<DateTime.Utc, SessionStoreError, Session> = requires(service.created)

/**
 * Idle timeout of the session.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Duration, Effect } from "effect"
 *
 * const notice = Effect.map(Session.timeout, (timeout) => `You are logged out after ${Duration.format(timeout)} idle`)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const timeout: Effect.Effect<Duration.Duration, SessionStoreError, Session> = requires(service.timeout)

/**
 * @example
 * ```ts
 * import { Session, SessionKey } from "effect-redis-sessions"
 * import { Schema } from "effect"
 *
 * const UserId = SessionKey.make("userId", Schema.String)
 * const userId = Session.get(UserId) // Effect<Option<string>, SessionStoreError, Session>
 * const theme = Session.get("theme") // Effect<Option<unknown>, SessionStoreError, Session>
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const get: {
  <A>(key: SessionKey<A, any>): Effect.Effect<Option.Option<A>, SessionStoreError, Session>
  (key: string): Effect.Effect<Option.Option<unknown>, SessionStoreError, Session>
} = (key: any) => requires(service.get(key))

/**
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 *
 * const remember = Session.set("theme", "dark")
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const set: {
  <A>(key: SessionKey<A, any>, value: A): Effect.Effect<void, SessionEncodeError, Session>
  (key: string, value: unknown): Effect.Effect<void, SessionEncodeError, Session>
} = (key: any, value: unknown) => requires(service.set(key, value))

/**
 * Removes a key; removing a missing key changes nothing.
 *
 * @example
 * ```ts
 * import { Session, SessionKey } from "effect-redis-sessions"
 * import { Schema } from "effect"
 *
 * const Cart = SessionKey.make("cart", Schema.Array(Schema.String))
 * const afterCheckout = Session.remove(Cart)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const remove = (key: Key<any>): Effect.Effect<void, never, Session> => requires(service.remove(key))

/**
 * Whether the session holds a key.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 *
 * const home = Effect.map(Session.has("userId"), (loggedIn) =>
 *   loggedIn ? HttpServerResponse.text("Welcome back") : HttpServerResponse.redirect("/login"))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const has = (key: Key<any>): Effect.Effect<boolean, SessionStoreError, Session> => requires(service.has(key))

/**
 * Every key, flash queues (`_f_<queue>`) and the CSRF token (`_csrft_`) included.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const appKeys = Effect.map(Session.keys, (keys) => keys.filter((k) => k !== "_csrft_" && !k.startsWith("_f_")))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const keys: Effect.Effect<ReadonlyArray<string>, SessionStoreError, Session> = requires(service.keys)

/**
 * The value of every key (see {@link keys}).
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const approximateBytes = Effect.map(Session.values, (values) => JSON.stringify(values).length)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const values: Effect.Effect<ReadonlyArray<unknown>, SessionStoreError, Session> = requires(service.values)

/**
 * Every key with its value (see {@link keys}).
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 *
 * const debugDump = Effect.flatMap(Session.entries, (entries) => HttpServerResponse.json(Object.fromEntries(entries)))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const entries: Effect.Effect<ReadonlyArray<readonly [string, unknown]>, SessionStoreError, Session> = requires(
  service.entries
)

/**
 * The number of keys (see {@link keys}).
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const isEmpty = Effect.map(Session.size, (size) => size === 0)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const size: Effect.Effect<number, SessionStoreError, Session> = requires(service.size)

/**
 * Removes every key; keeps the id, creation time and timeout.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const startOver = Effect.andThen(Session.clear, Session.flash("Your answers were discarded"))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const clear: Effect.Effect<void, never, Session> = requires(service.clear)

/**
 * Sets several plain keys at once.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 *
 * const savePreferences = Session.update({ theme: "dark", language: "en" })
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const update = (values: Readonly<Record<string, unknown>>): Effect.Effect<void, SessionEncodeError, Session> =>
  Effect.forEach(Object.entries(values), ([key, value]) => set(key, value), { discard: true })

/**
 * Removes a key and returns its value.
 *
 * @example
 * ```ts
 * import { Session, SessionKey } from "effect-redis-sessions"
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect, Option, Schema } from "effect"
 *
 * const ReturnTo = SessionKey.make("returnTo", Schema.String)
 * const afterLogin = Effect.map(Session.pop(ReturnTo), (to) =>
 *   HttpServerResponse.redirect(Option.getOrElse(to, () => "/")))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const pop: {
  <A>(key: SessionKey<A, any>): Effect.Effect<Option.Option<A>, SessionStoreError, Session>
  (key: string): Effect.Effect<Option.Option<unknown>, SessionStoreError, Session>
} = (key: any) => requires(service.pop(key))

/**
 * Returns the value of a key, storing `value` first when the key is absent.
 *
 * @example
 * ```ts
 * import { Session, SessionKey } from "effect-redis-sessions"
 * import { Schema } from "effect"
 *
 * const Cart = SessionKey.make("cart", Schema.Array(Schema.String))
 * const cart = Session.setDefault(Cart, [])
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const setDefault: {
  <A>(key: SessionKey<A, any>, value: A): Effect.Effect<A, SessionStoreError | SessionEncodeError, Session>
  (key: string, value: unknown): Effect.Effect<unknown, SessionStoreError | SessionEncodeError, Session>
} = (key: any, value: unknown) =>
  Effect.flatMap(
    get(key as string),
    (existing) => Option.isSome(existing) ? Effect.succeed(existing.value) : Effect.as(set(key as string, value), value)
  )

/**
 * Forces a commit (and a TTL refresh) even when nothing changed.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 *
 * // polled by an open page, so the session does not expire while the user is active
 * const keepAlive = Effect.as(Session.changed, HttpServerResponse.empty())
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const changed: Effect.Effect<void, never, Session> = requires(service.changed)

/**
 * The principal (user id) this session is bound to, if any (see {@link bind}).
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect, Option } from "effect"
 *
 * const whoAmI = Effect.map(Session.principal, Option.getOrElse(() => "anonymous"))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const principal: Effect.Effect<Option.Option<string>, SessionStoreError, Session> = requires(service.principal)

/**
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const login = (userId: string) =>
 *   Effect.all([Session.regenerate, Session.bind(userId), Session.set("userId", userId)], { discard: true })
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const bind = (principal: string): Effect.Effect<void, never, Session> => requires(service.bind(principal))

/**
 * Records that the user proved who they are again, for {@link requireFresh}: call it after asking for the
 * password (or a second factor) anew. The session keeps its id; call `regenerate` as well if the privilege level
 * changes.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * declare const checkPassword: (password: string) => Effect.Effect<void, Error>
 * const confirmPassword = (password: string) => Effect.andThen(checkPassword(password), Session.reauthenticated)
 * ```
 *
 * @since 0.3.0
 * @category accessors
 */
export const reauthenticated: Effect.Effect<void, never, Session> = requires(service.reauthenticated)

/**
 * When the user last proved who they are in this session: the `bind` of the login, or the latest
 * {@link reauthenticated}. `None` for a session never bound.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { DateTime, Effect, Option } from "effect"
 *
 * const signedInSince = Effect.map(Session.authenticatedAt, Option.map(DateTime.formatIso))
 * ```
 *
 * @since 0.3.0
 * @category accessors
 */
export const authenticatedAt: Effect.Effect<Option.Option<DateTime.Utc>, SessionStoreError, Session> = requires(
  service.authenticatedAt
)

/**
 * Step-up authentication for sensitive operations (changing the password or e-mail, payments): fails with
 * `SessionNotFresh` (HTTP 401) unless the user proved who they are at most `maxAge` ago, at login (`bind`) or
 * since ({@link reauthenticated}). A session never bound is never fresh. Costs no Redis command beyond the
 * session's load.
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const deleteAccount = Session.requireFresh("5 minutes").pipe(
 *   Effect.as(HttpServerResponse.text("account deleted")),
 *   Effect.catchTag("SessionNotFresh", () => HttpServerResponse.redirect("/confirm-password?next=/delete"))
 * )
 * ```
 *
 * @since 0.3.0
 * @category accessors
 */
export const requireFresh = (
  maxAge: Duration.DurationInput
): Effect.Effect<void, SessionStoreError | SessionNotFresh, Session> => requires(service.requireFresh(maxAge))

/**
 * Remember-me: this session gets a persistent cookie (`Max-Age`) and an idle timeout of `duration`, both
 * renewed as the session is used, and never past `absolute_timeout`; other sessions keep the configured
 * cookie. `duration` must be whole seconds from 1 s to ten years, otherwise `InvalidTimeout` and nothing
 * changes. It reads the session (the cookie's life depends on its absolute deadline). Regenerated sessions stay
 * remembered.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const login = (userId: string, remember: boolean) =>
 *   Effect.gen(function*() {
 *     yield* Session.regenerate
 *     yield* Session.bind(userId)
 *     if (remember) yield* Session.rememberMe("30 days")
 *   })
 * ```
 *
 * @since 0.3.0
 * @category accessors
 */
export const rememberMe = (
  duration: Duration.DurationInput
): Effect.Effect<void, InvalidTimeout | SessionStoreError, Session> => requires(service.rememberMe(duration))

/**
 * Marks the request passive, for requests the user did not make (polling, a page's health pings): it reads
 * the session as usual but does not extend its idle timeout and never writes it, so a page left open still
 * expires. A write after it (or before it, in the same request) is a defect; `invalidate` is allowed.
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Session } from "effect-redis-sessions"
 * import { Effect, Option } from "effect"
 *
 * const unreadCount = Session.passive.pipe(
 *   Effect.zipRight(Session.get("unread")),
 *   Effect.map((unread) => HttpServerResponse.text(String(Option.getOrElse(unread, () => 0))))
 * )
 * ```
 *
 * @since 0.3.0
 * @category accessors
 */
export const passive: Effect.Effect<void, never, Session> = requires(service.passive)

/**
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 *
 * const logout = Session.invalidate.pipe(Effect.as(HttpServerResponse.redirect("/")))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const invalidate: Effect.Effect<void, SessionStoreError, Session> = requires(service.invalidate)

/**
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const login = (userId: string) => Effect.andThen(Session.regenerate, Session.set("userId", userId))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const regenerate: Effect.Effect<void, SessionStoreError, Session> = requires(service.regenerate)

/**
 * Sets this session's idle timeout, kept across requests: whole seconds from 1 s to ten years, otherwise
 * `InvalidTimeout` and nothing changes.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 *
 * // a kiosk: sessions end after two idle minutes
 * const kiosk = Session.adjustTimeout("2 minutes")
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const adjustTimeout = (timeout: Duration.DurationInput): Effect.Effect<void, InvalidTimeout, Session> =>
  requires(service.adjustTimeout(timeout))

/**
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const saved = Session.flash("Saved!")
 * const messages = Session.popFlash() // on the next page
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const flash = (
  message: unknown,
  options?: FlashOptions
): Effect.Effect<void, SessionStoreError | SessionEncodeError, Session> =>
  Effect.flatMap(
    peekFlash(options?.queue),
    (queue) =>
      options?.allowDuplicate === false && queue.some((m) => jsonEquals(m, message))
        ? Effect.void
        : set(flashKey(options?.queue ?? ""), [...queue, message])
  )

/**
 * The flash messages of a queue (the default queue when omitted), left in place.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const hasErrors = Effect.map(Session.peekFlash("errors"), (messages) => messages.length > 0)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const peekFlash = (queue = ""): Effect.Effect<ReadonlyArray<unknown>, SessionStoreError, Session> =>
  Effect.map(get(flashKey(queue)), messagesOf)

/**
 * Removes and returns the flash messages of a queue (the default queue when omitted).
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 *
 * const page = Effect.map(Session.popFlash(), (messages) => HttpServerResponse.text(messages.join("\n")))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const popFlash = (queue = ""): Effect.Effect<ReadonlyArray<unknown>, SessionStoreError, Session> =>
  Effect.map(pop(flashKey(queue)), messagesOf)

/**
 * A new CSRF token (40 hex characters), replacing any earlier one.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const login = (userId: string) =>
 *   Session.regenerate.pipe(Effect.zipRight(Session.bind(userId)), Effect.zipRight(Session.newCsrfToken))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const newCsrfToken: Effect.Effect<string, SessionStoreError, Session> = Effect.suspend(() => {
  const token = randomBytes(20).toString("hex")
  return Effect.as(Effect.orDie(set(CSRF_KEY, token)), token)
})

/**
 * The stored CSRF token, made on first use.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 *
 * const form = Effect.map(Session.getCsrfToken, (token) =>
 *   HttpServerResponse.html(`<form method="post"><input type="hidden" name="csrf" value="${token}"></form>`))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const getCsrfToken: Effect.Effect<string, SessionStoreError, Session> = Effect.flatMap(
  get(CSRF_KEY),
  (token) => Option.isSome(token) && typeof token.value === "string" ? Effect.succeed(token.value) : newCsrfToken
)

/**
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 *
 * const checkForm = (token: string) =>
 *   Effect.flatMap(Session.verifyCsrfToken(token), (ok) =>
 *     ok ? Effect.void : Effect.fail(HttpServerResponse.text("Bad CSRF token", { status: 403 })))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const verifyCsrfToken = (candidate: string): Effect.Effect<boolean, SessionStoreError, Session> =>
  Effect.map(get(CSRF_KEY), (token) => {
    if (Option.isNone(token) || typeof token.value !== "string") return false
    const expected = Buffer.from(token.value)
    const given = Buffer.from(candidate)
    return expected.length === given.length && timingSafeEqual(expected, given)
  })
