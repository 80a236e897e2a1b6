/**
 * HTTP integration for `@effect/platform`: gives handlers the {@link Session.Session} of their request,
 * commits it once as the response is prepared and writes (or deletes) the cookie. Nothing is read
 * before the handler uses the session, so routes that never touch it cost no Redis command.
 *
 * Three shapes of the same middleware:
 * - {@link middleware} for `HttpRouter`, `HttpApp` and `HttpServer.serve`;
 * - {@link layerRouter} for `HttpLayerRouter` servers;
 * - {@link HttpApiSession} + {@link layerHttpApi} for `HttpApi`.
 *
 * @since 0.1.0
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type CookieAction, makeRequestSession, type RequestSession, type Services } from "./internal/requestSession.js"
import { Codec, Session } from "./Session.js"
import { SessionConfig, type SessionOptions } from "./SessionConfig.js"
import * as SessionId from "./SessionId.js"
import * as SessionIndex from "./SessionIndex.js"
import { SessionStore } from "./SessionStore.js"

/** One verifier (and its cache) per configuration, also when the middleware reads its services per request. */
const verifiers = new WeakMap<SessionOptions, Services["verify"]>()

const verifierFor = (options: SessionOptions) => {
  let verify = verifiers.get(options)
  if (verify === undefined) {
    verify = SessionId.makeVerifier(options.secrets)
    verifiers.set(options, verify)
  }
  return verify
}

const services: Effect.Effect<Services, never, SessionConfig | SessionStore> = Effect.map(
  Effect.all({ options: SessionConfig, store: SessionStore, codec: Codec, generate: SessionId.Generator }),
  (services) => ({ ...services, verify: verifierFor(services.options) })
)

const cookieAttributes = (options: SessionOptions) => ({
  path: options.cookiePath,
  domain: options.cookieDomain,
  secure: options.cookieSecure,
  httpOnly: options.cookieHttpOnly,
  sameSite: options.cookieSameSite
})

const EPOCH = new Date(0)

const applyCookie = (
  response: HttpServerResponse.HttpServerResponse,
  action: CookieAction,
  options: SessionOptions
) => {
  switch (action._tag) {
    case "None":
      return Effect.succeed(response)
    case "Expire":
      return Effect.succeed(
        HttpServerResponse.unsafeSetCookie(response, options.cookieName, "", {
          ...cookieAttributes(options),
          maxAge: Duration.zero,
          expires: EPOCH
        })
      )
    case "Set":
      return Effect.map(Clock.currentTimeMillis, (now) =>
        HttpServerResponse.unsafeSetCookie(
          response,
          options.cookieName,
          action.value,
          options.cookieMaxAge === undefined ? cookieAttributes(options) : {
            ...cookieAttributes(options),
            maxAge: Duration.seconds(options.cookieMaxAge),
            expires: new Date(now + options.cookieMaxAge * 1000)
          }
        ))
  }
}

/** Commits the session and turns the outcome into the response: its cookie, or the error's response. */
const finish = (
  session: RequestSession,
  options: SessionOptions,
  response: HttpServerResponse.HttpServerResponse,
  failed: boolean
) =>
  session.commit(failed).pipe(
    Effect.flatMap((action) => applyCookie(response, action, options)),
    Effect.catchAll((error) =>
      Effect.zipRight(
        Effect.logError("Session commit failed; the response was replaced", error),
        HttpServerRespondable.isRespondable(error)
          ? HttpServerRespondable.toResponse(error)
          : Effect.succeed(HttpServerResponse.text("Internal Server Error", { status: 500 }))
      )
    )
  )

/**
 * Starts the request's session and registers its commit. `failed` tells, at response time, whether the
 * handler failed; where the handler cannot be observed (HttpApi), an error status stands for it.
 */
const begin = (services: Services, failed: (response: HttpServerResponse.HttpServerResponse) => boolean) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const session = makeRequestSession(services, request.headers.cookie)
    return Effect.as(
      HttpApp.appendPreResponseHandler((_request, response) =>
        session.touched ? finish(session, services.options, response, failed(response)) : Effect.succeed(response)
      ),
      session
    )
  })

/**
 * Runs `app` with the request's `Session` (and, when given, the app's `SessionIndex`) added to its context
 * in one step: every context update copies the whole request context, a measurable cost per request.
 */
const provideSession = <A, E, R>(
  services: Services,
  app: Effect.Effect<A, E, R>,
  index?: SessionIndex.SessionIndex["Type"]
) =>
  Effect.suspend(() => {
    let failed = false
    return Effect.flatMap(begin(services, () => failed), (session) =>
      app.pipe(
        Effect.onError(() => Effect.sync(() => void (failed = true))),
        Effect.mapInputContext((context: Context.Context<Exclude<R, Session | SessionIndex.SessionIndex>>) => {
          const services = new Map(context.unsafeMap)
          services.set(Session.key, session.service)
          if (index !== undefined) services.set(SessionIndex.SessionIndex.key, index)
          return Context.unsafeMake(services) as Context.Context<R>
        })
      ))
  })

/**
 * Middleware for `HttpRouter`, `HttpApp` and `HttpServer.serve`: handlers get `Session`; the app needs
 * `SessionConfig` and `SessionStore`.
 *
 * @example
 * ```ts
 * import { HttpSession, RedisSession, Session } from "effect-redis-sessions"
 * import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
 * import { Effect, Layer } from "effect"
 *
 * const router = HttpRouter.empty.pipe(
 *   HttpRouter.get("/", Effect.map(Session.get("name"), (name) => HttpServerResponse.text(String(name))))
 * )
 * const app = router.pipe(HttpSession.middleware, HttpServer.serve(), Layer.provide(RedisSession.layerServicesFromSettings({
 *   "redis.sessions.secret": "a-secret-of-at-least-32-characters!!"
 * })))
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = HttpMiddleware.make((app) =>
  Effect.flatMap(services, (services) => provideSession(services, app))
) as <E, R>(
  app: HttpApp.Default<E, R>
) => HttpApp.Default<E, Exclude<R, Session> | SessionConfig | SessionStore>

/**
 * Middleware for `HttpLayerRouter`: provide this layer to routes and every route gets `Session` (and
 * `SessionIndex`). Needs `SessionConfig` and `SessionStore` (see `RedisSession` for ready-made layers).
 *
 * @example
 * ```ts
 * import { HttpSession, SessionConfig, SessionStore } from "effect-redis-sessions"
 * import { Layer } from "effect"
 *
 * const SessionLive = HttpSession.layerRouter.pipe(
 *   Layer.provide(SessionStore.layerMemory),
 *   Layer.provide(SessionConfig.layer({ secret: "a-secret-of-at-least-32-characters!!" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const layerRouter = HttpLayerRouter.middleware<{ provides: Session | SessionIndex.SessionIndex }>()(
  Effect.gen(function*() {
    const context = yield* services
    const index = yield* SessionIndex.make
    return (httpEffect) => provideSession(context, httpEffect, index)
  })
).layer

/**
 * `HttpApi` middleware that provides `Session` to the endpoints, groups or API it is attached to.
 * Implement it with {@link layerHttpApi}. In HttpApi the handler's failure is not observable from a
 * middleware, so for `cookie_on_exception` a response status of 400 or more counts as a failure.
 *
 * @example
 * ```ts
 * import { HttpSession } from "effect-redis-sessions"
 * import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
 * import { Schema } from "effect"
 *
 * const Api = HttpApiGroup.make("counter")
 *   .add(HttpApiEndpoint.post("increment", "/increment").addSuccess(Schema.Number))
 *   .middleware(HttpSession.HttpApiSession)
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export class HttpApiSession extends HttpApiMiddleware.Tag<HttpApiSession>()(
  "effect-redis-sessions/HttpSession/HttpApiSession",
  { provides: Session }
) {}

/**
 * Implements {@link HttpApiSession}; needs `SessionConfig` and `SessionStore` (see `RedisSession.layerServices`).
 *
 * @example
 * ```ts
 * import { HttpSession, SessionConfig, SessionStore } from "effect-redis-sessions"
 * import { Layer } from "effect"
 *
 * const SessionApiTest = HttpSession.layerHttpApi.pipe(
 *   Layer.provide([SessionStore.layerMemory, SessionConfig.layer({ secret: "a-secret-of-at-least-32-characters!!" })])
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const layerHttpApi: Layer.Layer<HttpApiSession, never, SessionConfig | SessionStore> = Layer.effect(
  HttpApiSession,
  Effect.map(
    services,
    (services) => Effect.map(begin(services, (response) => response.status >= 400), (session) => session.service)
  )
)
