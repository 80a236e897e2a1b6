/**
 * HTTP integration for `@effect/platform`: gives handlers the {@link Session.Session} of their request,
 * commits it once as the response is prepared and writes (or deletes) the cookie. Nothing is read, and
 * nothing registered, before the handler uses the session, so routes that never touch it cost no store
 * call. The session cookie is this module's business: it parses the `Cookie` header, verifies the
 * signature (see `SessionId`), and decides when to set or expire the cookie.
 *
 * One middleware, in the shape of each way to build a server:
 * - {@link middleware} for `HttpRouter`, `HttpApp` and `HttpServer.serve`;
 * - {@link layerRouter} for `HttpLayerRouter` servers;
 * - {@link HttpApiSession} + {@link layerHttpApi} for `HttpApi`, or {@link security} + {@link layerHttpApiSecurity}
 *   to declare the session cookie in the API's OpenAPI document.
 *
 * @since 0.1.0
 */
import * as Cookies from "@effect/platform/Cookies"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { memo } from "./internal/cache.js"
import { count, countStoreError } from "./internal/counting.js"
import { attach } from "./internal/currentSession.js"
import { type Incoming, type Outcome, RequestSession, type Services } from "./internal/requestSession.js"
import { Codec, Session } from "./Session.js"
import { SessionConfig, type SessionOptions } from "./SessionConfig.js"
import { SessionConflict, SessionTooLarge } from "./SessionError.js"
import { SessionEvents } from "./SessionEvents.js"
import * as SessionId from "./SessionId.js"
import type * as SessionIndex from "./SessionIndex.js"
import * as SessionMetrics from "./SessionMetrics.js"
import { SessionStore } from "./SessionStore.js"

/** RFC 6265 §5.2 trims spaces and tabs only, not every Unicode white space like `String.trim`. */
const trimSpaces = (text: string) => text.replace(/^[ \t]+|[ \t]+$/g, "")

/**
 * A copy of `text` that does not refer to the string it was cut from: V8 keeps a slice's whole parent alive, and
 * verified values are remembered, so each would otherwise hold its request's entire Cookie header.
 */
const detached = (text: string) => (" " + text).slice(1)

/** Every value of cookie `name` in a Cookie header, in order, detached from the header. */
const cookieValues = (header: string | undefined, name: string): Array<string> => {
  if (header === undefined || !header.includes(name)) return []
  const values: Array<string> = []
  for (const pair of header.split(";")) {
    const eq = pair.indexOf("=")
    if (eq === -1 || trimSpaces(pair.slice(0, eq)) !== name) continue
    let value = trimSpaces(pair.slice(eq + 1))
    if (value.startsWith("\"") && value.endsWith("\"") && value.length >= 2) value = value.slice(1, -1)
    values.push(detached(value))
  }
  return values
}

/**
 * `SessionId.verify` with a bounded memory of cookie values that verified: a returning cookie skips the HMAC.
 * Only values that verified or that this process signed are remembered, so a forged value never matches one.
 */
const makeVerifier = (secrets: SessionOptions["secrets"]) =>
  memo(
    10_000,
    (value: string) => {
      const verified = SessionId.verify(value, secrets)
      if (Option.isSome(verified)) count(SessionMetrics.cookieCache.miss)
      return verified
    },
    Option.isSome,
    () => count(SessionMetrics.cookieCache.hit)
  )

const NoCookie: Incoming = { presented: false, id: undefined, stale: false }
const Unverified: Incoming = { presented: true, id: undefined, stale: false }

/** The session cookie of one configuration: how to read it, its attributes, and the `Set-Cookie` deleting it. */
interface SessionCookie {
  /** Reads the session cookie of a `Cookie` header: the first value that verifies wins. */
  readonly incoming: (header: string | undefined) => Incoming
  /** Signs an id with the newest secret; the value is then known to verify when the browser sends it back. */
  readonly sign: (id: string) => string
  readonly attributes: Cookies.Cookie["options"]
  readonly expired: Cookies.Cookie
  /** `expired`, serialized. */
  readonly expiredHeader: string
  /** The services of the application, per store, sharing this cookie's verifier and its cache. */
  readonly services: WeakMap<SessionStore["Type"], Services>
}

const sessionCookies = new WeakMap<SessionOptions, SessionCookie>()

/** Made once per configuration, also where the middleware reads its services per request. */
const sessionCookie = (options: SessionOptions): SessionCookie => {
  let cookie = sessionCookies.get(options)
  if (cookie === undefined) {
    const verify = makeVerifier(options.secrets)
    const attributes = {
      path: options.cookiePath,
      domain: options.cookieDomain,
      secure: options.cookieSecure,
      httpOnly: options.cookieHttpOnly,
      sameSite: options.cookieSameSite,
      partitioned: options.cookiePartitioned
    }
    const expired = Cookies.unsafeMakeCookie(options.cookieName, "", {
      ...attributes,
      maxAge: Duration.zero,
      expires: new Date(0)
    })
    cookie = {
      incoming: (header) => {
        const values = cookieValues(header, options.cookieName)
        if (values.length === 0) return NoCookie
        for (const value of values) {
          const verified = verify(value)
          if (Option.isSome(verified)) return { presented: true, id: verified.value.id, stale: verified.value.stale }
        }
        return Unverified
      },
      sign: (id) => {
        const value = SessionId.sign(id, options.secrets[0])
        verify.remember(value, Option.some({ id, stale: false }))
        return value
      },
      attributes,
      expired,
      expiredHeader: Cookies.serializeCookie(expired),
      services: new WeakMap()
    }
    sessionCookies.set(options, cookie)
  }
  return cookie
}

const servicesOf = (context: Context.Context<SessionConfig | SessionStore>): Services => {
  const options = Context.get(context, SessionConfig)
  const store = Context.get(context, SessionStore)
  const codec = Context.get(context as Context.Context<never>, Codec)
  const generate = Context.get(context as Context.Context<never>, SessionId.Generator)
  const bus = Context.get(context as Context.Context<never>, SessionEvents)
  const events = bus.active ? bus : undefined
  const cookie = sessionCookie(options)
  const cached = cookie.services.get(store)
  if (cached !== undefined && cached.codec === codec && cached.generate === generate && cached.events === events) {
    return cached
  }
  const services: Services = {
    options,
    timeout: Duration.toSeconds(options.timeout),
    absoluteTimeout: options.absoluteTimeout === undefined ? undefined : Duration.toMillis(options.absoluteTimeout),
    limits: { maxSize: options.maxSize, maxSessionsPerPrincipal: options.maxSessionsPerPrincipal },
    renewal: options.renewalInterval === undefined
      ? undefined
      : { interval: Duration.toMillis(options.renewalInterval), grace: Duration.toMillis(options.renewalGrace) },
    store,
    codec,
    generate,
    incoming: cookie.incoming,
    events
  }
  cookie.services.set(store, services)
  return services
}

const services = Effect.context<SessionConfig | SessionStore>().pipe(Effect.map(servicesOf))

/**
 * A response that sets the session cookie must not be kept by a shared cache, which would hand the cookie to
 * other users: `Cache-Control: no-store`, unless the handler already kept the response out of shared caches.
 */
const uncacheable = (response: HttpServerResponse.HttpServerResponse) => {
  const current = response.headers["cache-control"]
  return current !== undefined && /\b(?:no-store|private)\b/i.test(current)
    ? response
    : HttpServerResponse.setHeader(response, "cache-control", "no-store")
}

/**
 * `response` carrying `cookie`, kept out of shared caches. When the response has no other cookie the cookie goes
 * out as a plain `Set-Cookie` header (`header`, or serialized here): the response's cookies are serialized and
 * merged into its headers when it is written, which costs every logout and login about 2 µs more.
 */
const withCookie = (
  response: HttpServerResponse.HttpServerResponse,
  cookie: Cookies.Cookie,
  header?: string
): HttpServerResponse.HttpServerResponse => {
  const uncached = uncacheable(response)
  return uncached.headers["set-cookie"] === undefined && Cookies.isEmpty(uncached.cookies)
    ? HttpServerResponse.setHeader(uncached, "set-cookie", header ?? Cookies.serializeCookie(cookie))
    : HttpServerResponse.updateCookies(uncached, (cookies) => Cookies.setCookie(cookies, cookie))
}

/** The cookie the outcome of a commit calls for. */
const applyCookie = (
  response: HttpServerResponse.HttpServerResponse,
  outcome: Outcome,
  session: RequestSession
): HttpServerResponse.HttpServerResponse => {
  const { options } = session.services
  const incoming = session.incoming ?? NoCookie
  switch (outcome._tag) {
    case "Unchanged":
      return response
    case "Ended": {
      if (!incoming.presented) return response
      const { expired, expiredHeader } = sessionCookie(options)
      return withCookie(response, expired, expiredHeader)
    }
    case "Live": {
      const maxAge = outcome.persistent === undefined ? options.cookieMaxAge : Duration.seconds(outcome.persistent)
      const resend = outcome.isNew || incoming.stale || (outcome.renewed && maxAge !== undefined)
      if (!resend) return response
      const { attributes, sign } = sessionCookie(options)
      const value = sign(outcome.id)
      return withCookie(
        response,
        Cookies.unsafeMakeCookie(
          options.cookieName,
          value,
          maxAge === undefined
            ? attributes
            : { ...attributes, maxAge, expires: new Date(session.now() + Duration.toMillis(maxAge)) }
        )
      )
    }
  }
}

const committed = (outcome: Outcome) => {
  const { commits } = SessionMetrics
  if (outcome._tag !== "Live") return outcome._tag === "Ended" ? commits.ended : commits.unchanged
  return outcome.isNew ? commits.created : outcome.renewed ? commits.written : commits.unchanged
}

/** The response for `outcome`, counted. */
const respond = (
  session: RequestSession,
  response: HttpServerResponse.HttpServerResponse,
  outcome: Outcome
): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  count(committed(outcome))
  return Effect.succeed(applyCookie(response, outcome, session))
}

/**
 * Commits the session and turns the outcome into the response: its cookie, or the error's response. A session
 * that needs no store call (unchanged, anonymous, invalidated) is answered at once.
 */
const finish = (
  session: RequestSession,
  response: HttpServerResponse.HttpServerResponse,
  failed: boolean
): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  const settled = session.settled(failed)
  if (settled !== undefined) return respond(session, response, settled)
  return session.commit(failed).pipe(
    Effect.flatMap((outcome) => respond(session, response, outcome)),
    Effect.catchAllCause((cause) => {
      const error = Cause.squash(cause)
      count(
        error instanceof SessionConflict
          ? SessionMetrics.commits.conflict
          : error instanceof SessionTooLarge
          ? SessionMetrics.commits.too_large
          : SessionMetrics.commits.error
      )
      countStoreError(error)
      return Effect.zipRight(
        Effect.logError("Session commit failed; the response was replaced", cause),
        HttpServerRespondable.isRespondable(error)
          ? HttpServerRespondable.toResponse(error)
          : Effect.succeed(HttpServerResponse.text("Internal Server Error", { status: 500 }))
      )
    })
  )
}

/** Starts the request's session (one small object until the handler uses it) and runs `f` with it. */
const begin = <A, E, R>(
  services: Services,
  f: (session: RequestSession) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    // the header, not the request: the state is the value of a WeakMap keyed by the request's source, and a
    // value that refers to its key cost every request about 45 µs in the benchmark (bench/profiling.md)
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    const session = services.options.recordClient
      ? new RequestSession(services, clock, request.headers.cookie, {
        userAgent: request.headers["user-agent"],
        address: Option.getOrUndefined(request.remoteAddress)
      })
      : new RequestSession(services, clock, request.headers.cookie)
    attach(request, session)
    return f(session)
  })

/**
 * Runs `app` with a session for its request. The commit runs on the handler's response; when the handler
 * fails, it runs on the error's response instead (a pre-response handler registered only then).
 * `Session` and `SessionIndex` need no context entry: they find the request's session through the request.
 */
const withSession = <E, R>(
  services: Services,
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, Exclude<R, Session | SessionIndex.SessionIndex>> =>
  begin(services, (session) =>
    Effect.matchCauseEffect(app, {
      onFailure: (cause) =>
        session.touched && !Cause.isInterruptedOnly(cause)
          ? Effect.zipRight(
            HttpApp.appendPreResponseHandler((_request, response) => finish(session, response, true)),
            Effect.failCause(cause)
          )
          : Effect.failCause(cause),
      onSuccess: (response) => session.touched ? finish(session, response, false) : Effect.succeed(response)
    })) as Effect.Effect<HttpServerResponse.HttpServerResponse, E, Exclude<R, Session | SessionIndex.SessionIndex>>

/**
 * Middleware for `HttpRouter`, `HttpApp` and `HttpServer.serve`: handlers get `Session`; the app needs
 * `SessionConfig` and `SessionStore`.
 *
 * @example
 * ```ts
 * import { HttpSession, RedisSessionStore, Session, SessionConfig } from "effect-redis-sessions"
 * import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
 * import { Effect, Layer } from "effect"
 *
 * const router = HttpRouter.empty.pipe(
 *   HttpRouter.get("/", Effect.map(Session.get("name"), (name) => HttpServerResponse.text(String(name))))
 * )
 * const app = router.pipe(
 *   HttpSession.middleware,
 *   HttpServer.serve(),
 *   Layer.provide([SessionConfig.layerConfig(), RedisSessionStore.layerConfig()])
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = HttpMiddleware.make((app) =>
  Effect.flatMap(services, (services) => withSession(services, app))
) as <E, R>(
  app: HttpApp.Default<E, R>
) => HttpApp.Default<E, Exclude<R, Session | SessionIndex.SessionIndex> | SessionConfig | SessionStore>

/**
 * Middleware for `HttpLayerRouter`: provide this layer to routes and every route gets `Session` (and
 * `SessionIndex`). Needs `SessionConfig` and `SessionStore` (`RedisSession` has it ready made on Redis).
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
  Effect.map(services, (services) => (httpEffect) => withSession(services, httpEffect))
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
 * Implements {@link HttpApiSession}; needs `SessionConfig` and `SessionStore` (`SessionConfig.layer*` and
 * `RedisSessionStore.layer*`, or `SessionStore.layerMemory`).
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
  Effect.map(services, httpApiMiddleware)
)

/** The HttpApi middleware effect: registers the request's session and commits it as the response is prepared. */
function httpApiMiddleware(
  services: Services
): Effect.Effect<Session["Type"], never, HttpServerRequest.HttpServerRequest> {
  return begin(services, (session) =>
    Effect.as(
      HttpApp.appendPreResponseHandler((_request, response) =>
        session.touched ? finish(session, response, response.status >= 400) : Effect.succeed(response)
      ),
      Session.defaultValue()
    ))
}

/**
 * The session cookie as an `HttpApiSecurity` scheme (an API key in a cookie), so that an `HttpApi` declares it
 * in its OpenAPI document. Give the cookie name of your settings (`cookie_name`, default `session`); use it in
 * an `HttpApiMiddleware.Tag` that provides `Session`, implemented by {@link layerHttpApiSecurity}.
 *
 * @example
 * ```ts
 * import { HttpSession, Session } from "effect-redis-sessions"
 * import { HttpApiMiddleware } from "@effect/platform"
 *
 * class SessionCookie extends HttpApiMiddleware.Tag<SessionCookie>()("SessionCookie", {
 *   provides: Session.Session,
 *   security: { session: HttpSession.security("session") }
 * }) {}
 * ```
 *
 * @since 0.2.0
 * @category HttpApi
 */
export const security = (cookieName = "session"): HttpApiSecurity.ApiKey =>
  HttpApiSecurity.apiKey({ in: "cookie", key: cookieName }).pipe(
    HttpApiSecurity.annotate(OpenApi.Description, "The signed session id, set by the server on login")
  )

/**
 * Implements an `HttpApiMiddleware.Tag` whose security schemes are {@link security} cookies: it works as
 * {@link layerHttpApi} does (a request without a session cookie is served, with a new, lazy session). The layer
 * fails to build with a defect when a scheme names another cookie than the settings' `cookie_name`, so the
 * OpenAPI document cannot drift from the cookie the server sets.
 *
 * @example
 * ```ts
 * import { HttpSession, Session, SessionConfig, SessionStore } from "effect-redis-sessions"
 * import { HttpApiMiddleware } from "@effect/platform"
 * import { Layer } from "effect"
 *
 * class SessionCookie extends HttpApiMiddleware.Tag<SessionCookie>()("SessionCookie", {
 *   provides: Session.Session,
 *   security: { session: HttpSession.security("sid") }
 * }) {}
 *
 * const SessionCookieLive = HttpSession.layerHttpApiSecurity(SessionCookie).pipe(
 *   Layer.provide([SessionStore.layerMemory, SessionConfig.layer({ secret: "a-secret-of-at-least-32-characters!!", cookieName: "sid" })])
 * )
 * ```
 *
 * @since 0.2.0
 * @category HttpApi
 */
export const layerHttpApiSecurity = <I, Security extends Record<string, HttpApiSecurity.ApiKey>>(
  tag: Context.Tag<I, HttpApiMiddleware.HttpApiMiddlewareSecurity<Security, Session["Type"], never>> & {
    readonly security: Security
  }
): Layer.Layer<I, never, SessionConfig | SessionStore> =>
  Layer.effect(
    tag,
    Effect.flatMap(services, (services) => {
      const { cookieName } = services.options
      const other = Object.values(tag.security).find((scheme) => scheme.in !== "cookie" || scheme.key !== cookieName)
      if (other !== undefined) {
        return Effect.dieMessage(
          `HttpSession.layerHttpApiSecurity: a security scheme reads ${other.in} "${other.key}", ` +
            `but the session cookie is "${cookieName}"`
        )
      }
      const middleware = () => httpApiMiddleware(services)
      return Effect.succeed(
        Object.fromEntries(
          Object.keys(tag.security).map((key) => [key, middleware])
        ) as unknown as HttpApiMiddleware.HttpApiMiddlewareSecurity<Security, Session["Type"], never>
      )
    })
  )
