import {
  Cookies,
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpClient,
  HttpClientResponse,
  OpenApi
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as HttpSession from "../src/HttpSession.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as SessionStore from "../src/SessionStore.js"
import { Count } from "./utils/testApp.js"

const SECRET = "a-secret-of-at-least-32-characters!!"

class SessionCookie extends HttpApiMiddleware.Tag<SessionCookie>()("test/SessionCookie", {
  provides: Session.Session,
  security: { sessionCookie: HttpSession.security("sid") }
}) {}

const Api = HttpApi.make("api").add(
  HttpApiGroup.make("counter")
    .add(HttpApiEndpoint.post("increment", "/increment").addSuccess(Schema.Number))
    .middleware(SessionCookie)
)

const Handlers = HttpApiBuilder.group(
  Api,
  "counter",
  (handlers) =>
    handlers.handle("increment", () =>
      Effect.gen(function*() {
        const next = Option.getOrElse(yield* Session.get(Count), () => 0) + 1
        yield* Session.set(Count, next)
        return next
      }).pipe(Effect.orDie))
)

const serve = (cookieName: string) =>
  HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.api(Api)),
    Layer.provide(Handlers),
    Layer.provide(HttpSession.layerHttpApiSecurity(SessionCookie)),
    Layer.provide([SessionStore.layerMemory, SessionConfig.layer({ secret: SECRET, cookieName })]),
    Layer.provideMerge(NodeHttpServer.layerTest)
  )

describe("HttpApi security: the session cookie as an apiKey scheme", () => {
  it("the OpenAPI document declares the cookie and the endpoints that use it", () => {
    const spec = OpenApi.fromApi(Api)
    assert.deepStrictEqual(spec.components.securitySchemes, {
      sessionCookie: {
        type: "apiKey",
        name: "sid",
        in: "cookie",
        description: "The signed session id, set by the server on login"
      }
    })
    assert.deepStrictEqual(spec.paths["/increment"]?.post?.security, [{ sessionCookie: [] }])
  })

  it.scoped("a visitor without the cookie gets a session; the cookie brings it back", () =>
    Effect.gen(function*() {
      const jar = yield* Ref.make(Cookies.empty)
      const client = (yield* HttpClient.HttpClient).pipe(HttpClient.withCookiesRef(jar))
      const increment = client.post("/increment").pipe(Effect.flatMap(HttpClientResponse.schemaBodyJson(Schema.Number)))
      assert.strictEqual(yield* increment, 1)
      const cookie = Cookies.get(yield* Ref.get(jar), "sid")
      assert.isTrue(Option.isSome(cookie) && cookie.value.value.length > 0)
      assert.strictEqual(yield* increment, 2)
      assert.strictEqual(yield* increment, 3)
      // another client, without the cookie, starts over
      assert.strictEqual(
        yield* (yield* HttpClient.HttpClient).post("/increment").pipe(
          Effect.flatMap(HttpClientResponse.schemaBodyJson(Schema.Number))
        ),
        1
      )
    }).pipe(Effect.provide(serve("sid"))))

  it.scoped("a scheme that names another cookie than the settings fails the layer with a clear defect", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(serve("session")))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const defect = Cause.squash(exit.cause)
        assert.instanceOf(defect, Error)
        assert.include((defect as Error).message, "reads cookie \"sid\", but the session cookie is \"session\"")
      }
    }))
})
