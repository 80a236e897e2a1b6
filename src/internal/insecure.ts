import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import type { SessionOptions } from "../SessionConfig.js"

/** `NODE_ENV` says development or test. */
const development = Config.string("NODE_ENV").pipe(
  Config.withDefault(""),
  Config.map((env) => env === "development" || env === "test")
)

/**
 * Logs one warning when a session layer is built with a cookie that travels over plain HTTP, unless
 * `NODE_ENV` says development or test.
 */
export const warnIfInsecure = (options: SessionOptions): Effect.Effect<void> =>
  options.cookieSecure ? Effect.void : Effect.flatMap(
    Effect.orElseSucceed(development, () => false),
    (quiet) =>
      quiet ? Effect.void : Effect.logWarning(
        "Session cookies are not Secure: they are sent over plain HTTP. Behind HTTPS set redis.sessions.https = true " +
          "(or cookie_secure = true); set NODE_ENV=development to silence this in development"
      )
  )
