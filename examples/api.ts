/**
 * An HttpApi with sessions whose OpenAPI document declares the session cookie: a counter and a login, with
 * Swagger UI at /docs and the document at /openapi.json.
 *
 *   npx tsx examples/api.ts                                  # in-memory store, http://localhost:3001/docs
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/api.ts # Redis
 */
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSchema,
  HttpApiSwagger
} from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer, Option, Redacted, Schema } from "effect"
import { createServer } from "node:http"
import {
  HttpSession,
  RedisClient,
  RedisSessionStore,
  Session,
  SessionConfig,
  SessionError,
  SessionKey,
  SessionStore
} from "../src/index.js"

const COOKIE = "sid"

/** The session cookie as this API's security scheme: Swagger and the OpenAPI document show it. */
class SessionCookie extends HttpApiMiddleware.Tag<SessionCookie>()("SessionCookie", {
  provides: Session.Session,
  security: { sessionCookie: HttpSession.security(COOKIE) }
}) {}

const Visits = SessionKey.make("visits", Schema.Int)
const User = SessionKey.make("user", Schema.String)

class NotLoggedIn
  extends Schema.TaggedError<NotLoggedIn>()("NotLoggedIn", {}, HttpApiSchema.annotations({ status: 401 }))
{}

const Api = HttpApi.make("example").add(
  HttpApiGroup.make("account")
    .add(HttpApiEndpoint.post("visit", "/visit").addSuccess(Schema.Int))
    .add(HttpApiEndpoint.post("login", "/login").setPayload(Schema.Struct({ name: Schema.NonEmptyTrimmedString })))
    .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.Struct({ name: Schema.String })).addError(NotLoggedIn))
    .add(HttpApiEndpoint.post("logout", "/logout"))
    .addError(SessionError.SessionStoreError)
    .middleware(SessionCookie)
)

const AccountLive = HttpApiBuilder.group(Api, "account", (handlers) =>
  handlers
    .handle("visit", () =>
      Effect.gen(function*() {
        const visits = Option.getOrElse(yield* Session.get(Visits), () => 0) + 1
        yield* Session.set(Visits, visits).pipe(Effect.orDie)
        return visits
      }))
    .handle("login", ({ payload }) =>
      Effect.gen(function*() {
        yield* Session.regenerate
        yield* Session.bind(payload.name)
        yield* Session.set(User, payload.name).pipe(Effect.orDie)
      }))
    .handle("me", () =>
      Session.get(User).pipe(
        Effect.flatMap(
          Option.match({ onNone: () => Effect.fail(new NotLoggedIn()), onSome: (name) => Effect.succeed({ name }) })
        )
      ))
    .handle("logout", () => Session.invalidate))

/** In-memory sessions unless REDIS_URL is set; the secret falls back to a development value. */
const SessionServices = Layer.unwrapEffect(
  Effect.gen(function*() {
    const redisUrl = yield* Config.option(Config.redacted("REDIS_URL"))
    const secret = yield* Config.redacted("REDIS_SESSIONS_SECRET").pipe(
      Config.withDefault(Redacted.make("development-only-secret-change-me-please!"))
    )
    const store = Option.match(redisUrl, {
      onNone: () => SessionStore.layerMemory,
      onSome: (url) => RedisSessionStore.layer().pipe(Layer.provide(RedisClient.layer({ url })))
    })
    yield* Effect.log(Option.isSome(redisUrl) ? "Sessions: Redis store" : "Sessions: in-memory store (set REDIS_URL)")
    return Layer.merge(SessionConfig.layer({ secret, cookieName: COOKIE }), store)
  })
)

const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide(AccountLive),
  Layer.provide(HttpSession.layerHttpApiSecurity(SessionCookie)),
  Layer.provide(SessionServices)
)

HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
  Layer.provide(HttpApiBuilder.middlewareOpenApi()),
  Layer.provide(NodeHttpServer.layer(createServer, { port: Number(process.env.PORT ?? 3001) })),
  // built first, so the store is connected before the server listens
  Layer.provide(ApiLive),
  Layer.launch,
  NodeRuntime.runMain
)
