/**
 * A small Effect HTTP server using effect-redis-sessions: login (with regenerate, bind and remember-me),
 * logout, flash messages, a CSRF-protected form, a counter, "your devices" (list, sign out one, sign out
 * the others) and a sensitive action behind a fresh login, on plain HTML pages.
 *
 *   npm start                                  # in-memory store, http://localhost:3000
 *   REDIS_URL=redis://127.0.0.1:6379 npm start # Redis
 *
 * Settings come from the environment (REDIS_SESSIONS_SECRET, REDIS_SESSIONS_TIMEOUT, ...); PORT picks the port.
 */
import { HttpLayerRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer, Option, Schema } from "effect"
import { createServer } from "node:http"
import {
  HttpSession,
  RedisSession,
  Session,
  SessionConfig,
  SessionIndex,
  SessionKey,
  SessionStore
} from "../src/index.js"

const User = SessionKey.make("user", Schema.String)
const Visits = SessionKey.make("visits", Schema.Int)

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const page = (body: string) =>
  Effect.gen(function*() {
    const messages = yield* Session.popFlash()
    const user = yield* Session.get(User)
    const flashes = messages.map((m) => `<p class="flash">${escape(String(m))}</p>`).join("")
    const who = Option.match(user, {
      onNone: () => `<a href="/login">Log in</a>`,
      onSome: (name) =>
        `Logged in as <b>${
          escape(name)
        }</b> · <a href="/devices">Your devices</a> · <a href="/profile">Profile</a> · ` +
        `<a href="/logout">Log out</a>`
    })
    return HttpServerResponse.text(
      `<!doctype html><meta charset="utf-8"><title>effect-redis-sessions</title><nav><a href="/">Home</a> · <a href="/counter">Counter</a> · <a href="/note">Note</a> · ${who}</nav>${flashes}${body}`,
      { contentType: "text/html; charset=utf-8" }
    )
  })

const form = (action: string, fields: string, token: string, button = "Send") =>
  `<form method="post" action="${action}">${fields}<input type="hidden" name="csrf" value="${token}"><button>${button}</button></form>`

const FormBody = Schema.Struct({
  csrf: Schema.String,
  name: Schema.optional(Schema.String),
  note: Schema.optional(Schema.String),
  remember: Schema.optional(Schema.String),
  handle: Schema.optional(Schema.String)
})

/** Reads a form post and checks its CSRF token; a bad token answers 403. */
const postedForm = Effect.gen(function*() {
  const body = yield* HttpServerRequest.schemaBodyUrlParams(FormBody)
  if (!(yield* Session.verifyCsrfToken(body.csrf))) {
    return yield* Effect.fail(HttpServerResponse.text("Invalid CSRF token", { status: 403 }))
  }
  return body
})

const redirect = (location: string) => HttpServerResponse.empty({ status: 303, headers: { location } })

/** The signed-in user, or a redirect to the login page. */
const signedIn = Effect.flatMap(
  Session.get(User),
  Option.match({ onNone: () => Effect.fail(redirect("/login")), onSome: Effect.succeed })
)

const devicesPage = Effect.gen(function*() {
  const user = yield* signedIn
  const token = yield* Session.getCsrfToken
  const index = yield* SessionIndex.SessionIndex
  const rows = (yield* index.list(user)).map((device) =>
    `<tr class="device"><td>${escape(Option.getOrElse(device.userAgent, () => "unknown browser"))}</td>` +
    `<td>${escape(Option.getOrElse(device.network, () => "unknown network"))}</td>` +
    `<td>${new Date(device.lastSeen).toISOString()}</td>` +
    `<td>${
      device.current
        ? "this device"
        : form("/devices/revoke", `<input type="hidden" name="handle" value="${device.handle}">`, token, "Sign out")
    }</td></tr>`
  )
  return yield* page(
    `<h1>Your devices</h1><table><tr><th>Browser</th><th>Network</th><th>Last seen</th><th></th></tr>${
      rows.join("")
    }</table>${form("/devices/revoke-others", "", token, "Sign out other devices")}`
  )
})

const Routes = HttpLayerRouter.addAll([
  HttpLayerRouter.route("GET", "/", page("<h1>Welcome</h1><p>Sessions are stored only once something is written.</p>")),
  HttpLayerRouter.route(
    "GET",
    "/counter",
    Effect.gen(function*() {
      const visits = Option.getOrElse(yield* Session.get(Visits), () => 0) + 1
      yield* Session.set(Visits, visits)
      return yield* page(`<h1>Counter</h1><p>You have seen this page ${visits} time(s).</p>`)
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/login",
    Effect.flatMap(
      Session.getCsrfToken,
      (token) =>
        page(
          `<h1>Log in</h1>${
            form(
              "/login",
              `<input name="name" placeholder="Your name" required> ` +
                `<label><input type="checkbox" name="remember" value="yes"> Remember me for 30 days</label>`,
              token,
              "Log in"
            )
          }`
        )
    )
  ),
  HttpLayerRouter.route(
    "POST",
    "/login",
    Effect.gen(function*() {
      const { name, remember } = yield* postedForm
      const user = (name ?? "").trim() || "anonymous"
      yield* Session.regenerate
      yield* Session.bind(user)
      if (remember === "yes") yield* Session.rememberMe("30 days")
      yield* Session.newCsrfToken
      yield* Session.set(User, user)
      yield* Session.flash("Welcome!")
      return redirect("/")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/logout",
    Effect.gen(function*() {
      yield* Session.invalidate
      yield* Session.flash("You are logged out.")
      return redirect("/")
    })
  ),
  HttpLayerRouter.route("GET", "/devices", devicesPage),
  HttpLayerRouter.route(
    "POST",
    "/devices/revoke",
    Effect.gen(function*() {
      const { handle } = yield* postedForm
      const index = yield* SessionIndex.SessionIndex
      const ended = yield* index.revoke(yield* signedIn, handle ?? "")
      yield* Session.flash(ended ? "That device is signed out." : "No such device.")
      return redirect("/devices")
    })
  ),
  HttpLayerRouter.route(
    "POST",
    "/devices/revoke-others",
    Effect.gen(function*() {
      yield* postedForm
      const index = yield* SessionIndex.SessionIndex
      const ended = yield* index.revokeOthers(yield* signedIn)
      yield* Session.flash(`${ended} other device(s) signed out.`)
      return redirect("/devices")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/profile",
    Effect.gen(function*() {
      const user = yield* signedIn
      const token = yield* Session.getCsrfToken
      return yield* page(
        `<h1>Profile</h1><p>Changing your name is a sensitive action: it needs a login from the last 5 minutes.</p>${
          form("/profile", `<input name="name" value="${escape(user)}" required>`, token, "Change name")
        }`
      )
    })
  ),
  HttpLayerRouter.route(
    "POST",
    "/profile",
    Effect.gen(function*() {
      const { name } = yield* postedForm
      yield* signedIn
      yield* Session.requireFresh("5 minutes")
      yield* Session.set(User, (name ?? "").trim() || "anonymous")
      yield* Session.flash("Name changed.")
      return redirect("/profile")
    }).pipe(Effect.catchTag("SessionNotFresh", () => Effect.succeed(redirect("/confirm"))))
  ),
  HttpLayerRouter.route(
    "GET",
    "/confirm",
    Effect.gen(function*() {
      yield* signedIn
      const token = yield* Session.getCsrfToken
      return yield* page(
        `<h1>Confirm it is you</h1><p>Your login is older than 5 minutes. Enter your name again.</p>${
          form("/confirm", `<input name="name" required>`, token, "Confirm")
        }`
      )
    })
  ),
  HttpLayerRouter.route(
    "POST",
    "/confirm",
    Effect.gen(function*() {
      const { name } = yield* postedForm
      const user = yield* signedIn
      // a real application checks a password or a second factor here
      if ((name ?? "").trim() !== user) {
        yield* Session.flash("That is not your name.")
        return redirect("/confirm")
      }
      yield* Session.reauthenticated
      yield* Session.flash("Confirmed: you can change your name for 5 minutes.")
      return redirect("/profile")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/note",
    Effect.gen(function*() {
      const token = yield* Session.getCsrfToken
      const note = Option.getOrElse(yield* Session.get("note"), () => "")
      return yield* page(
        `<h1>Note</h1><p>Saved: ${escape(String(note))}</p>${form("/note", `<input name="note">`, token)}`
      )
    })
  ),
  HttpLayerRouter.route(
    "POST",
    "/note",
    Effect.gen(function*() {
      const { note } = yield* postedForm
      yield* Session.set("note", note ?? "")
      yield* Session.flash("Note saved.")
      return redirect("/note")
    })
  )
])

/** In-memory sessions unless REDIS_URL is set; the secret falls back to a development value. */
const SessionLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const redisUrl = yield* Config.option(Config.string("REDIS_URL"))
    const secret = yield* Config.string("REDIS_SESSIONS_SECRET").pipe(
      Config.withDefault("development-only-secret-change-me-please!")
    )
    if (Option.isNone(redisUrl)) {
      yield* Effect.log("Sessions: in-memory store (set REDIS_URL to use Redis)")
      return HttpSession.layerRouter.pipe(
        Layer.provide([SessionStore.layerMemory, SessionConfig.layer({ secret, recordClient: true })])
      )
    }
    yield* Effect.log("Sessions: Redis store")
    return RedisSession.layer({ secret, url: redisUrl.value, recordClient: true })
  })
)

const port = Number(process.env.PORT ?? 3000)

HttpLayerRouter.serve(Routes.pipe(Layer.provide(SessionLive))).pipe(
  Layer.provide(NodeHttpServer.layer(createServer, { port })),
  // connect to Redis before the server listens (the routes share this one instance): a request that arrived
  // in between would never be answered
  Layer.provide(SessionLive),
  Layer.launch,
  NodeRuntime.runMain
)
