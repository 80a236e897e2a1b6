import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type { RequestSession } from "./requestSession.js"

/**
 * The session of each request in flight, keyed by the request's underlying object (`source`, which
 * survives `HttpServerRequest.modify`, as done when a router strips a prefix). Every fiber that serves
 * the request, forked ones included, finds the same session; an entry goes when its request is collected.
 */
const sessions = new WeakMap<object, RequestSession>()

const keyOf = (request: HttpServerRequest.HttpServerRequest): object =>
  typeof request.source === "object" && request.source !== null ? request.source : request

/** Makes `session` the session of `request`. */
export const attach = (request: HttpServerRequest.HttpServerRequest, session: RequestSession): void => {
  sessions.set(keyOf(request), session)
}

const lookup = (context: Context.Context<never>): RequestSession | undefined => {
  const request = context.unsafeMap.get(HttpServerRequest.HttpServerRequest.key) as
    | HttpServerRequest.HttpServerRequest
    | undefined
  return request === undefined ? undefined : sessions.get(keyOf(request))
}

/** The session of the request the current fiber serves, or `undefined` outside such a request. */
export const current: Effect.Effect<RequestSession | undefined> = Effect.withFiberRuntime((fiber) =>
  Effect.succeed(lookup(fiber.currentContext))
)

/** Runs `f` with the session of the request the current fiber serves, or dies when there is none. */
export const withCurrent = <A, E>(
  what: string,
  f: (session: RequestSession) => Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.withFiberRuntime((fiber) => {
    const session = lookup(fiber.currentContext)
    return session === undefined
      ? Effect.dieMessage(`${what} used outside a request served with the session middleware (see HttpSession)`)
      : f(session)
  })
