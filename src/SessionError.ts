/**
 * The errors of effect-redis-sessions, split by what the caller can do about them.
 *
 * - {@link SessionConfigError}: the settings are wrong; fix them and restart.
 * - {@link SessionStoreError}: the session store is unavailable, too slow, or could not replicate a write;
 *   retry later (HTTP 503). Store-neutral: the Redis store's own failures stay in its `cause`.
 * - {@link RedisError}: the Redis client failed (building its layer, or a direct `RedisClient` call).
 * - {@link SessionConflict}: strict mode saw a concurrent change to a key this request wrote (HTTP 409).
 * - {@link SessionTooLarge}: the session would exceed `max_size` (HTTP 413).
 * - {@link SessionEncodeError}: a value could not be encoded for storage; the session is unchanged (HTTP 400).
 * - {@link InvalidTimeout}: `adjustTimeout` or `rememberMe` got a duration that is not whole seconds from 1 s to
 *   ten years (HTTP 400).
 * - {@link SessionNotFresh}: `requireFresh` found the last authentication too old; ask for it again (HTTP 401).
 *
 * Every error is a Schema class with an HTTP status, so an `HttpApi` endpoint can declare it with `.addError`.
 * A custom id generator that returns unusable or colliding ids is a programming error: the request dies.
 *
 * @since 0.1.0
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Schema from "effect/Schema"

/**
 * One problem with one setting.
 *
 * @example
 * ```ts
 * import { SessionConfig } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const checked = SessionConfig.fromSettings({ "redis.sessions.secret": "too short", "redis.sessions.port": "http" }).pipe(
 *   Effect.tapErrorTag("SessionConfigError", (error) =>
 *     Effect.forEach(error.issues, (issue) => Effect.logError(`${issue.key} ${issue.message}`)))
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigIssue extends Schema.Schema.Type<typeof ConfigIssue> {}

/**
 * The schema of a {@link ConfigIssue}.
 *
 * @example
 * ```ts
 * import { SessionError } from "effect-redis-sessions"
 * import { Schema } from "effect"
 *
 * const issue = Schema.decodeUnknownSync(SessionError.ConfigIssue)({ key: "redis.sessions.timeout", message: "must be positive" })
 * ```
 *
 * @since 0.2.0
 * @category schemas
 */
export const ConfigIssue = Schema.Struct({ key: Schema.String, message: Schema.String })

/**
 * The settings could not be decoded. `issues` names every bad, missing or unknown key at once.
 *
 * @example
 * ```ts
 * import { SessionConfig } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * SessionConfig.fromSettings({ "redis.sessions.timeout": "-5" }).pipe(
 *   Effect.catchTag("SessionConfigError", (e) => Effect.logError(e.message))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionConfigError extends Schema.TaggedError<SessionConfigError>()("SessionConfigError", {
  issues: Schema.Array(ConfigIssue)
}) {
  override get message(): string {
    return `Invalid session settings: ${this.issues.map((i) => `${i.key}: ${i.message}`).join("; ")}`
  }
}

const respond = (status: number, body: string) => HttpServerResponse.text(body, { status })

/**
 * The Redis client failed: building its layer, or a call through `RedisClient` (the Redis session store turns
 * it into a {@link SessionStoreError}, keeping it as the cause). A Schema class with status 503. `reason` says why:
 * `Connection` (cannot connect or not ready), `Timeout` (no answer within `command_timeout`),
 * `Command` (Redis answered with an error, for example OOM or READONLY), `Closed` (the client was shut down),
 * `Replication` (fewer replicas than `wait_replicas` acknowledged a security-relevant write).
 * Becomes `503 Service Unavailable` with a body that leaks nothing.
 *
 * @example
 * ```ts
 * import { RedisClient } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * // a health check that reports Redis as down instead of failing
 * const redisUp = Effect.flatMap(RedisClient.RedisClient, (redis) => redis.run("ping", (client) => client.ping())).pipe(
 *   Effect.as(true),
 *   Effect.catchTag("RedisError", () => Effect.succeed(false))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class RedisError extends Schema.TaggedError<RedisError>()("RedisError", {
  reason: Schema.Literal("Connection", "Timeout", "Command", "Closed", "Replication"),
  operation: Schema.String
}, HttpApiSchema.annotations({ status: 503 })) implements HttpServerRespondable.Respondable {
  /**
   * The client's error; kept out of the schema so it never reaches a response body.
   *
   * @since 0.2.0
   */
  override readonly cause: unknown
  constructor(
    props: {
      readonly reason: RedisError["reason"]
      readonly operation: string
      readonly cause?: unknown
    },
    options?: Schema.MakeOptions
  ) {
    super({ reason: props.reason, operation: props.operation }, options)
    this.cause = props.cause
  }
  override get message(): string {
    const detail = this.cause instanceof Error ? `: ${this.cause.message}` : ""
    return `Redis ${this.reason} error during ${this.operation}${detail}`
  }
  /**
   * The response this error becomes when a handler does not handle it.
   *
   * @since 0.1.0
   */
  [HttpServerRespondable.symbol]() {
    return respond(503, "Session store unavailable")
  }
}

/**
 * The session store could not serve an operation (a Schema class, so HttpApi endpoints can declare it with
 * `.addError(SessionStoreError)`; it then answers 503). `reason` says why:
 * `Unavailable` (the store cannot be reached, refused the operation or was shut down),
 * `Timeout` (no answer in time), `Replication` (fewer replicas than required acknowledged a login, logout or
 * revocation). Becomes `503 Service Unavailable` with a body that leaks nothing.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Effect, Option } from "effect"
 *
 * // Treat an unavailable store as an anonymous visitor on a public page
 * const user = Session.get("user").pipe(
 *   Effect.catchTag("SessionStoreError", () => Effect.succeed(Option.none()))
 * )
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class SessionStoreError extends Schema.TaggedError<SessionStoreError>()("SessionStoreError", {
  reason: Schema.Literal("Unavailable", "Timeout", "Replication"),
  operation: Schema.String
}, HttpApiSchema.annotations({ status: 503 })) implements HttpServerRespondable.Respondable {
  /**
   * The store's own error; kept out of the schema so it never reaches a response body.
   *
   * @since 0.2.0
   */
  override readonly cause: unknown
  constructor(
    props: {
      readonly reason: SessionStoreError["reason"]
      readonly operation: string
      readonly cause?: unknown
    },
    options?: Schema.MakeOptions
  ) {
    super({ reason: props.reason, operation: props.operation }, options)
    this.cause = props.cause
  }
  override get message(): string {
    const detail = this.cause instanceof Error ? `: ${this.cause.message}` : ""
    return `Session store ${this.reason} during ${this.operation}${detail}`
  }
  /**
   * The response this error becomes when a handler does not handle it.
   *
   * @since 0.1.0
   */
  [HttpServerRespondable.symbol]() {
    return respond(503, "Session store unavailable")
  }
}

/**
 * Strict mode only: another request changed or removed a key that this request also wrote, after this
 * request read the session. Nothing of this request's commit was applied. Becomes `409 Conflict`.
 *
 * @example
 * ```ts
 * import { SessionError } from "effect-redis-sessions"
 * import { HttpApiEndpoint } from "@effect/platform"
 * import { Schema } from "effect"
 *
 * const addToCart = HttpApiEndpoint.post("addToCart", "/cart")
 *   .setPayload(Schema.Struct({ sku: Schema.String }))
 *   .addError(SessionError.SessionConflict)
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionConflict extends Schema.TaggedError<SessionConflict>()("SessionConflict", {
  key: Schema.String
}, HttpApiSchema.annotations({ status: 409 })) implements HttpServerRespondable.Respondable {
  override get message(): string {
    return `Session key "${this.key}" was changed by a concurrent request`
  }
  /**
   * The response this error becomes when a handler does not handle it.
   *
   * @since 0.1.0
   */
  [HttpServerRespondable.symbol]() {
    return respond(409, "Session changed concurrently, please retry")
  }
}

/**
 * The session would grow beyond `max_size` bytes. Nothing was stored; the stored session is unchanged.
 * Becomes `413 Content Too Large`.
 *
 * @example
 * ```ts
 * import { SessionError } from "effect-redis-sessions"
 * import { HttpApiEndpoint } from "@effect/platform"
 * import { Schema } from "effect"
 *
 * const saveDraft = HttpApiEndpoint.put("saveDraft", "/draft")
 *   .setPayload(Schema.Struct({ text: Schema.String }))
 *   .addError(SessionError.SessionTooLarge)
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionTooLarge extends Schema.TaggedError<SessionTooLarge>()("SessionTooLarge", {
  size: Schema.Number,
  maxSize: Schema.Number
}, HttpApiSchema.annotations({ status: 413 })) implements HttpServerRespondable.Respondable {
  override get message(): string {
    return `Session of ${this.size} bytes exceeds the limit of ${this.maxSize} bytes`
  }
  /**
   * The response this error becomes when a handler does not handle it.
   *
   * @since 0.1.0
   */
  [HttpServerRespondable.symbol]() {
    return respond(413, "Session too large")
  }
}

/**
 * A value could not be encoded (it does not match the key's Schema, or is not JSON data).
 * The session is unchanged.
 *
 * @example
 * ```ts
 * import { Session, SessionKey } from "effect-redis-sessions"
 * import { Effect, Schema } from "effect"
 *
 * const Age = SessionKey.make("age", Schema.Int)
 * const setAge = (age: number) =>
 *   Session.set(Age, age).pipe(Effect.catchTag("SessionEncodeError", () => Effect.fail("age must be a whole number")))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionEncodeError extends Schema.TaggedError<SessionEncodeError>()("SessionEncodeError", {
  key: Schema.String
}, HttpApiSchema.annotations({ status: 400 })) implements HttpServerRespondable.Respondable {
  /**
   * Why the value was refused (a `ParseError` or the codec's error); kept out of the schema and of responses.
   *
   * @since 0.2.0
   */
  override readonly cause: unknown
  constructor(props: { readonly key: string; readonly cause?: unknown }, options?: Schema.MakeOptions) {
    super({ key: props.key }, options)
    this.cause = props.cause
  }
  override get message(): string {
    return `Cannot store a value under session key "${this.key}"`
  }
  /**
   * The response this error becomes when a handler does not handle it.
   *
   * @since 0.1.0
   */
  [HttpServerRespondable.symbol]() {
    return respond(400, "Invalid session value")
  }
}

/**
 * `adjustTimeout` or `rememberMe` was given a duration that is not whole seconds from 1 s to ten years. Nothing
 * was changed.
 * Becomes `400 Bad Request`.
 *
 * @example
 * ```ts
 * import { Session } from "effect-redis-sessions"
 * import { Duration, Effect } from "effect"
 *
 * const rememberFor = (days: number) =>
 *   Session.adjustTimeout(Duration.days(days)).pipe(
 *     Effect.catchTag("InvalidTimeout", (error) => Effect.logWarning(error.message))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidTimeout extends Schema.TaggedError<InvalidTimeout>()("InvalidTimeout", {
  /** The refused duration, as `Duration.format` writes it. */
  timeout: Schema.String
}, HttpApiSchema.annotations({ status: 400 })) implements HttpServerRespondable.Respondable {
  override get message(): string {
    return `Session timeout must be whole seconds from 1 s to ten years, got ${this.timeout}`
  }
  /**
   * The response this error becomes when a handler does not handle it.
   *
   * @since 0.1.0
   */
  [HttpServerRespondable.symbol]() {
    return respond(400, "Invalid session timeout")
  }
}

/**
 * `Session.requireFresh` found that the user last proved who they are longer ago than the operation allows
 * (or never did in this session). Ask for the password (or another factor) again, then call
 * `Session.reauthenticated`. Becomes `401 Unauthorized`.
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Session } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const changeEmail = Session.requireFresh("5 minutes").pipe(
 *   Effect.as(HttpServerResponse.text("e-mail changed")),
 *   Effect.catchTag("SessionNotFresh", () => HttpServerResponse.redirect("/confirm-password"))
 * )
 * ```
 *
 * @since 0.3.0
 * @category errors
 */
export class SessionNotFresh extends Schema.TaggedError<SessionNotFresh>()("SessionNotFresh", {
  /** How recent the authentication had to be, as `Duration.format` writes it. */
  maxAge: Schema.String
}, HttpApiSchema.annotations({ status: 401 })) implements HttpServerRespondable.Respondable {
  override get message(): string {
    return `This operation needs an authentication within the last ${this.maxAge}`
  }
  /**
   * The response this error becomes when a handler does not handle it.
   *
   * @since 0.3.0
   */
  [HttpServerRespondable.symbol]() {
    return respond(401, "Authentication required")
  }
}

/**
 * Everything a session operation can fail with.
 *
 * @example
 * ```ts
 * import { SessionError } from "effect-redis-sessions"
 *
 * const isRetryable = (error: SessionError.SessionError) =>
 *   error._tag === "SessionStoreError" || error._tag === "SessionConflict"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export type SessionError =
  | SessionStoreError
  | SessionConflict
  | SessionTooLarge
  | SessionEncodeError
  | InvalidTimeout
  | SessionNotFresh
