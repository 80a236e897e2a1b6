/**
 * Ready-made layers. `RedisSessionLive` is the one-line integration: provide it to an `HttpLayerRouter`
 * server and every route gets `Session`, with the Redis client and the settings read from `Config`.
 *
 * `layer*` give the `HttpLayerRouter` middleware (every route gets `Session` and `SessionIndex`);
 * `layerServices*` give only `SessionConfig` and `SessionStore`, for `HttpSession.middleware`
 * (HttpRouter / HttpApp), `HttpSession.layerHttpApi` and `SessionIndex.layer`.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpSession from "./HttpSession.js"
import * as RedisClient from "./RedisClient.js"
import * as RedisSessionStore from "./RedisSessionStore.js"
import * as SessionConfig from "./SessionConfig.js"
import type { RedisError, SessionConfigError } from "./SessionError.js"
import * as SessionStore from "./SessionStore.js"

const sessions = <E>(services: Layer.Layer<SessionConfig.SessionConfig | SessionStore.SessionStore, E>) =>
  HttpSession.layerRouter.pipe(Layer.provide(services))

const servicesFrom = <E, R>(settings: Effect.Effect<SessionConfig.Settings, E, R>) =>
  Layer.unwrapEffect(Effect.map(settings, (s) =>
    Layer.merge(
      Layer.succeed(SessionConfig.SessionConfig, s.session),
      RedisSessionStore.layer({ prefix: s.session.prefix }).pipe(Layer.provide(RedisClient.layer(s.redis)))
    )))

/**
 * `SessionConfig` and a Redis `SessionStore` from options in code.
 *
 * @example
 * ```ts
 * import { HttpSession, RedisSession } from "effect-redis-sessions"
 * import { Layer } from "effect"
 *
 * const SessionApiLive = HttpSession.layerHttpApi.pipe(
 *   Layer.provide(RedisSession.layerServices({ secret: process.env.SESSION_SECRET!, url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export const layerServices = (
  options: SessionConfig.Options
): Layer.Layer<SessionConfig.SessionConfig | SessionStore.SessionStore, SessionConfigError | RedisError> =>
  servicesFrom(SessionConfig.make(options))

/**
 * `SessionConfig` and a Redis `SessionStore` from a `redis.sessions.*` settings record.
 *
 * @example
 * ```ts
 * import { HttpSession, RedisSession } from "effect-redis-sessions"
 * import { Layer } from "effect"
 *
 * declare const settings: Record<string, string> // e.g. the [app:main] section of an .ini file
 * const SessionApiLive = HttpSession.layerHttpApi.pipe(Layer.provide(RedisSession.layerServicesFromSettings(settings)))
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export const layerServicesFromSettings = (
  settings: Readonly<Record<string, unknown>>
): Layer.Layer<SessionConfig.SessionConfig | SessionStore.SessionStore, SessionConfigError | RedisError> =>
  servicesFrom(SessionConfig.fromSettings(settings))

/**
 * `SessionConfig` and a Redis `SessionStore` from Effect `Config` (see `SessionConfig.config`).
 *
 * @example
 * ```ts
 * import { RedisSession, SessionIndex } from "effect-redis-sessions"
 * import { ConfigProvider, Layer } from "effect"
 *
 * const IndexLive = SessionIndex.layer.pipe(
 *   Layer.provide(RedisSession.layerServicesConfig()),
 *   Layer.provide(Layer.setConfigProvider(ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase)))
 * )
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export const layerServicesConfig = (
  config: Config.Config<SessionConfig.Settings> = SessionConfig.config
): Layer.Layer<SessionConfig.SessionConfig | SessionStore.SessionStore, ConfigError.ConfigError | RedisError> =>
  servicesFrom(config)

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
 *   Layer.provide(RedisSession.layer({ secret: "a-secret-of-at-least-32-characters!!", url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: SessionConfig.Options) => sessions(layerServices(options))

/**
 * The `HttpLayerRouter` session middleware on Redis, from a `redis.sessions.*` settings record.
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
export const layerFromSettings = (settings: Readonly<Record<string, unknown>>) =>
  sessions(layerServicesFromSettings(settings))

/**
 * The `HttpLayerRouter` session middleware on Redis, from Effect `Config`.
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
export const layerConfig = (config: Config.Config<SessionConfig.Settings> = SessionConfig.config) =>
  sessions(layerServicesConfig(config))

/**
 * The one-line integration: sessions for every route of an `HttpLayerRouter` server, on Redis, with every
 * setting read from `Config` (`REDIS_SESSIONS_SECRET`, `REDIS_SESSIONS_URL`, … with
 * `ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase)`).
 *
 * @example
 * ```ts
 * import { RedisSessionLive } from "effect-redis-sessions/RedisSession"
 * import { HttpLayerRouter } from "@effect/platform"
 * import { Layer } from "effect"
 *
 * declare const Routes: Layer.Layer<never, never, HttpLayerRouter.HttpRouter>
 * const Server = HttpLayerRouter.serve(Routes.pipe(Layer.provide(RedisSessionLive)))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const RedisSessionLive = layerConfig()

/**
 * The `HttpLayerRouter` session middleware on the in-memory store: same behaviour, no Redis. For tests and
 * local development; sessions live as long as the layer.
 *
 * @example
 * ```ts
 * import { RedisSession } from "effect-redis-sessions"
 *
 * const SessionTest = RedisSession.layerMemory({ secret: "a-secret-of-at-least-32-characters!!" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: SessionConfig.Options) =>
  sessions(Layer.merge(SessionStore.layerMemory, SessionConfig.layer(options)))
