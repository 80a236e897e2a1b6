/**
 * The session of the current request. Nothing is read from Redis until the handler reads something;
 * writes are kept in memory and committed once, as the response is prepared. Every operation is an
 * `Effect`; the module-level accessors (`Session.get(UserId)`) find the service in the context.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { InvalidTimeout, RedisError, SessionEncodeError } from "./SessionError.js"
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
export class Session extends Context.Tag("effect-redis-sessions/Session")<Session, {
  /** The session id (the new one for a session created in this request). */
  readonly id: Effect.Effect<string, RedisError>
  /** Whether the session was created in this request. */
  readonly isNew: Effect.Effect<boolean, RedisError>
  /** Creation time, epoch seconds. */
  readonly created: Effect.Effect<number, RedisError>
  /** Idle timeout of this session, seconds. */
  readonly timeout: Effect.Effect<number, RedisError>
  readonly get: {
    <A>(key: SessionKey<A, any>): Effect.Effect<Option.Option<A>, RedisError>
    (key: string): Effect.Effect<Option.Option<unknown>, RedisError>
  }
  /** Sets a value; fails with `SessionEncodeError` (session unchanged) when it cannot be encoded. */
  readonly set: {
    <A>(key: SessionKey<A, any>, value: A): Effect.Effect<void, SessionEncodeError>
    (key: string, value: unknown): Effect.Effect<void, SessionEncodeError>
  }
  /** Removes a key; removing a missing key changes nothing. */
  readonly remove: (key: Key<any>) => Effect.Effect<void>
  readonly has: (key: Key<any>) => Effect.Effect<boolean, RedisError>
  /** Every key, flash queues (`_f_<queue>`) and the CSRF token (`_csrft_`) included. */
  readonly keys: Effect.Effect<ReadonlyArray<string>, RedisError>
  readonly values: Effect.Effect<ReadonlyArray<unknown>, RedisError>
  readonly entries: Effect.Effect<ReadonlyArray<readonly [string, unknown]>, RedisError>
  readonly size: Effect.Effect<number, RedisError>
  /** Removes every key; keeps the id, creation time and timeout. */
  readonly clear: Effect.Effect<void>
  /** Sets several plain keys at once. */
  readonly update: (values: Readonly<Record<string, unknown>>) => Effect.Effect<void, SessionEncodeError>
  /** Removes a key and returns its value. */
  readonly pop: {
    <A>(key: SessionKey<A, any>): Effect.Effect<Option.Option<A>, RedisError>
    (key: string): Effect.Effect<Option.Option<unknown>, RedisError>
  }
  /** Returns the value of a key, storing `value` first when the key is absent. */
  readonly setDefault: {
    <A>(key: SessionKey<A, any>, value: A): Effect.Effect<A, RedisError | SessionEncodeError>
    (key: string, value: unknown): Effect.Effect<unknown, RedisError | SessionEncodeError>
  }
  /** Forces a commit (and a TTL refresh) even when nothing changed. */
  readonly changed: Effect.Effect<void>
  /** The principal (user id) this session is bound to, if any. */
  readonly principal: Effect.Effect<Option.Option<string>, RedisError>
  /**
   * Binds the session to a principal (call it at login): it is then listed, and can be revoked, through
   * `SessionIndex`. Regenerated sessions stay bound.
   */
  readonly bind: (principal: string) => Effect.Effect<void>
  /**
   * Deletes the session now; later use of the session starts a new, lazy one. The response deletes the
   * cookie unless a new session is stored.
   */
  readonly invalidate: Effect.Effect<void, RedisError>
  /** Moves the data to a new id and deletes the old id (call it at login against session fixation). */
  readonly regenerate: Effect.Effect<void, RedisError>
  readonly adjustTimeout: (seconds: number) => Effect.Effect<void, InvalidTimeout>
  readonly flash: (message: unknown, options?: FlashOptions) => Effect.Effect<void, RedisError | SessionEncodeError>
  readonly peekFlash: (queue?: string) => Effect.Effect<ReadonlyArray<unknown>, RedisError>
  readonly popFlash: (queue?: string) => Effect.Effect<ReadonlyArray<unknown>, RedisError>
  /** A new CSRF token (40 hex characters), replacing any earlier one. */
  readonly newCsrfToken: Effect.Effect<string, RedisError>
  /** The stored CSRF token, made on first use. */
  readonly getCsrfToken: Effect.Effect<string, RedisError>
  /** Compares a candidate with the stored token in constant time; `false` when there is none. */
  readonly verifyCsrfToken: (candidate: string) => Effect.Effect<boolean, RedisError>
}>() {}

/**
 * The session id (the new one for a session created in this request). A bearer credential: never log it.
 *
 * @example
 * ```ts
 * import { Session, SessionConfig, SessionId } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const redisKey = Effect.gen(function*() {
 *   const { prefix } = yield* SessionConfig.SessionConfig
 *   return SessionId.storageKey(prefix, yield* Session.id)
 * })
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const id: Effect.Effect<string, RedisError, Session> = Effect.flatMap(Session, (s) => s.id)

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
export const isNew: Effect.Effect<boolean, RedisError, Session> = Effect.flatMap(Session, (s) => s.isNew)

/**
 * Creation time of the session, epoch seconds.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Clock, Effect } from "effect"
 *
 * const ageInSeconds = Effect.zipWith(Session.created, Clock.currentTimeMillis, (created, now) => now / 1000 - created)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const created: Effect.Effect<number, RedisError, Session> = Effect.flatMap(Session, (s) => s.created)

/**
 * Idle timeout of the session, seconds.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const notice = Effect.map(Session.timeout, (seconds) => `You are logged out after ${seconds / 60} idle minutes`)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const timeout: Effect.Effect<number, RedisError, Session> = Effect.flatMap(Session, (s) => s.timeout)

/**
 * @example
 * ```ts
 * import { Session, SessionKey } from "effect-redis-sessions"
 * import { Schema } from "effect"
 *
 * const UserId = SessionKey.make("userId", Schema.String)
 * const userId = Session.get(UserId) // Effect<Option<string>, RedisError, Session>
 * const theme = Session.get("theme") // Effect<Option<unknown>, RedisError, Session>
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const get: {
  <A>(key: SessionKey<A, any>): Effect.Effect<Option.Option<A>, RedisError, Session>
  (key: string): Effect.Effect<Option.Option<unknown>, RedisError, Session>
} = (key: any) => Effect.flatMap(Session, (s) => s.get(key)) as any

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
} = (key: any, value: unknown) => Effect.flatMap(Session, (s) => s.set(key, value))

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
export const remove = (key: Key<any>): Effect.Effect<void, never, Session> =>
  Effect.flatMap(Session, (s) => s.remove(key))

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
export const has = (key: Key<any>): Effect.Effect<boolean, RedisError, Session> =>
  Effect.flatMap(Session, (s) => s.has(key))

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
export const keys: Effect.Effect<ReadonlyArray<string>, RedisError, Session> = Effect.flatMap(Session, (s) => s.keys)

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
export const values: Effect.Effect<ReadonlyArray<unknown>, RedisError, Session> = Effect.flatMap(
  Session,
  (s) => s.values
)

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
export const entries: Effect.Effect<ReadonlyArray<readonly [string, unknown]>, RedisError, Session> = Effect.flatMap(
  Session,
  (s) => s.entries
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
export const size: Effect.Effect<number, RedisError, Session> = Effect.flatMap(Session, (s) => s.size)

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
export const clear: Effect.Effect<void, never, Session> = Effect.flatMap(Session, (s) => s.clear)

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
  Effect.flatMap(Session, (s) => s.update(values))

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
  <A>(key: SessionKey<A, any>): Effect.Effect<Option.Option<A>, RedisError, Session>
  (key: string): Effect.Effect<Option.Option<unknown>, RedisError, Session>
} = (key: any) => Effect.flatMap(Session, (s) => s.pop(key)) as any

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
  <A>(key: SessionKey<A, any>, value: A): Effect.Effect<A, RedisError | SessionEncodeError, Session>
  (key: string, value: unknown): Effect.Effect<unknown, RedisError | SessionEncodeError, Session>
} = (key: any, value: unknown) => Effect.flatMap(Session, (s) => s.setDefault(key, value))

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
export const changed: Effect.Effect<void, never, Session> = Effect.flatMap(Session, (s) => s.changed)

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
export const principal: Effect.Effect<Option.Option<string>, RedisError, Session> = Effect.flatMap(
  Session,
  (s) => s.principal
)

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
export const bind = (principal: string): Effect.Effect<void, never, Session> =>
  Effect.flatMap(Session, (s) => s.bind(principal))

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
export const invalidate: Effect.Effect<void, RedisError, Session> = Effect.flatMap(Session, (s) => s.invalidate)

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
export const regenerate: Effect.Effect<void, RedisError, Session> = Effect.flatMap(Session, (s) => s.regenerate)

/**
 * Sets the idle timeout of this session, in whole seconds ≥ 1, for the rest of its life.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 *
 * // "remember me": a week instead of the configured idle timeout
 * const rememberMe = Session.adjustTimeout(7 * 24 * 60 * 60)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const adjustTimeout = (seconds: number): Effect.Effect<void, InvalidTimeout, Session> =>
  Effect.flatMap(Session, (s) => s.adjustTimeout(seconds))

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
): Effect.Effect<void, RedisError | SessionEncodeError, Session> =>
  Effect.flatMap(Session, (s) => s.flash(message, options))

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
export const peekFlash = (queue?: string): Effect.Effect<ReadonlyArray<unknown>, RedisError, Session> =>
  Effect.flatMap(Session, (s) => s.peekFlash(queue))

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
export const popFlash = (queue?: string): Effect.Effect<ReadonlyArray<unknown>, RedisError, Session> =>
  Effect.flatMap(Session, (s) => s.popFlash(queue))

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
export const newCsrfToken: Effect.Effect<string, RedisError, Session> = Effect.flatMap(Session, (s) => s.newCsrfToken)

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
export const getCsrfToken: Effect.Effect<string, RedisError, Session> = Effect.flatMap(Session, (s) => s.getCsrfToken)

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
export const verifyCsrfToken = (candidate: string): Effect.Effect<boolean, RedisError, Session> =>
  Effect.flatMap(Session, (s) => s.verifyCsrfToken(candidate))
