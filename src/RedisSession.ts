/**
 * The ready-made integration: the `HttpLayerRouter` session middleware on a Redis store, with its settings
 * from code ({@link layer}), from Effect `Config` ({@link layerConfig}, and {@link RedisSessionLive} for the
 * defaults) or from a pyramid_redis_sessions settings record ({@link layerFromSettings}). Provide it to an
 * `HttpLayerRouter` server and every route gets `Session` and `SessionIndex`.
 *
 * Other shapes compose the same parts: `HttpSession.middleware` (HttpRouter / HttpApp) and
 * `HttpSession.layerHttpApi` need `SessionConfig` (`SessionConfig.layer*`) and a `SessionStore`
 * (`RedisSessionStore.layer*`, or `SessionStore.layerMemory` for tests).
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpSession from "./HttpSession.js"
import { warnIfInsecure } from "./internal/insecure.js"
import * as RedisClient from "./RedisClient.js"
import * as RedisSessionStore from "./RedisSessionStore.js"
import * as SessionConfig from "./SessionConfig.js"
import type { RedisError, SessionConfigError } from "./SessionError.js"

/** What the session middleware gives every route of an `HttpLayerRouter`: `Session` and `SessionIndex`. */
type Middleware = Layer.Layer.Success<typeof HttpSession.layerRouter>

const fromSettings = <E, R>(settings: Effect.Effect<SessionConfig.Settings, E, R>) =>
  HttpSession.layerRouter.pipe(
    Layer.provide(Layer.unwrapEffect(Effect.map(Effect.tap(settings, (s) => warnIfInsecure(s.session)), (s) =>
      Layer.merge(
        Layer.succeed(SessionConfig.SessionConfig, s.session),
        RedisSessionStore.layer({ prefix: s.session.prefix }).pipe(Layer.provide(RedisClient.layer(s.redis)))
      ))))
  )

/**
 * The `HttpLayerRouter` session middleware on Redis, from options in code.
 *
 * @example
 * ```ts
 * import { RedisSession, Session } from "effect-redis-sessions"
 * import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect, Layer } from "effect"
 *
 * const Routes = HttpLayerRouter.add("GET", "/", Effect.as(Session.set("seen", true), HttpServerResponse.text("hi"))).pipe(
 *   Layer.provide(RedisSession.layer({
 *     secret: "a-secret-of-at-least-32-characters!!",
 *     timeout: "30 minutes",
 *     url: "redis://127.0.0.1:6379"
 *   }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: SessionConfig.Options): Layer.Layer<Middleware, SessionConfigError | RedisError> =>
  fromSettings(SessionConfig.make(options))

/**
 * The `HttpLayerRouter` session middleware on Redis, from a `redis.sessions.*` settings record: the
 * pyramid_redis_sessions adapter (same names, same units, same defaults).
 *
 * @example
 * ```ts
 * import { RedisSession } from "effect-redis-sessions"
 *
 * const SessionLive = RedisSession.layerFromSettings({
 *   "redis.sessions.secret": "a-secret-of-at-least-32-characters!!",
 *   "redis.sessions.url": "redis://127.0.0.1:6379/0",
 *   "redis.sessions.timeout": "3600"
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromSettings = (
  settings: Readonly<Record<string, unknown>>
): Layer.Layer<Middleware, SessionConfigError | RedisError> => fromSettings(SessionConfig.fromSettings(settings))

/**
 * The `HttpLayerRouter` session middleware on Redis, from Effect `Config` (`SessionConfig.config` unless
 * given another, for example nested under a prefix).
 *
 * @example
 * ```ts
 * import { RedisSession, SessionConfig } from "effect-redis-sessions"
 * import { Config } from "effect"
 *
 * // APP_REDIS_SESSIONS_SECRET, APP_REDIS_SESSIONS_URL, … instead of REDIS_SESSIONS_*
 * const SessionLive = RedisSession.layerConfig(SessionConfig.config.pipe(Config.nested("app")))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<SessionConfig.Settings> = SessionConfig.config
): Layer.Layer<Middleware, ConfigError.ConfigError | RedisError> => fromSettings(config)

/**
 * The one-line integration: sessions for every route of an `HttpLayerRouter` server, on Redis, with every
 * setting read from `Config` (`REDIS_SESSIONS_SECRET`, `REDIS_SESSIONS_URL`, … with
 * `ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase)`).
 *
 * @example
 * ```ts
 * import { RedisSessionLive } from "effect-redis-sessions/RedisSession"
 * import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect, Layer } from "effect"
 * import { Session } from "effect-redis-sessions"
 *
 * const Routes = HttpLayerRouter.add("GET", "/", Effect.as(Session.set("seen", true), HttpServerResponse.text("hi")))
 * const Server = HttpLayerRouter.serve(Routes.pipe(Layer.provide(RedisSessionLive)))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const RedisSessionLive: Layer.Layer<Middleware, ConfigError.ConfigError | RedisError> = layerConfig()
