/**
 * Session settings: one Schema decodes them from a seed-style settings record
 * (`redis.sessions.*`, as pyramid_redis_sessions read them), from typed options in code, and from
 * Effect `Config` (environment variables such as `REDIS_SESSIONS_SECRET`).
 *
 * @since 0.1.0
 */
import * as Cookies from "@effect/platform/Cookies"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Record from "effect/Record"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { readFileSync } from "node:fs"
import { warnIfInsecure } from "./internal/insecure.js"
import { MAX_TIMEOUT } from "./internal/storage.js"
import type * as RedisClient from "./RedisClient.js"
import { SessionConfigError } from "./SessionError.js"

/**
 * The decoded session options (everything but the Redis connection).
 *
 * @example
 * ```ts
 * import { SessionConfig } from "effect-redis-sessions"
 * import { Duration, Effect } from "effect"
 *
 * const describe = (options: SessionConfig.SessionOptions) =>
 *   `cookie ${options.cookieName}, idle timeout ${Duration.format(options.timeout)}, ${options.cookieSecure ? "HTTPS only" : "HTTP"}`
 * const program = Effect.flatMap(SessionConfig.SessionConfig, (options) => Effect.log(describe(options)))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionOptions {
  /** Signing secrets, newest first: cookies are signed with the first and verified with any. */
  readonly secrets: readonly [Redacted.Redacted<string>, ...Array<Redacted.Redacted<string>>]
  /** Idle timeout of new sessions (whole seconds). */
  readonly timeout: Duration.Duration
  /** Hard limit on a session's life from its creation, however active it is (whole seconds). */
  readonly absoluteTimeout: Duration.Duration | undefined
  readonly cookieName: string
  /** `Max-Age` of the cookie (whole seconds); unset gives a browser-session cookie. */
  readonly cookieMaxAge: Duration.Duration | undefined
  readonly cookiePath: string
  readonly cookieDomain: string | undefined
  readonly cookieSecure: boolean
  readonly cookieHttpOnly: boolean
  readonly cookieSameSite: "lax" | "strict" | "none"
  /** `Partitioned` (CHIPS): the cookie is kept per top-level site when the app is embedded in another site. */
  readonly cookiePartitioned: boolean
  /** Whether a new session's cookie is set when the handler failed. */
  readonly cookieOnException: boolean
  /** Prepended to the SHA-256 of the session id to form the Redis key. */
  readonly prefix: string
  /** Alphabet of generated session ids. */
  readonly idEncoding: "hex" | "base64url"
  /** Report concurrent writes to the same key as `SessionConflict` instead of last-writer-wins. */
  readonly strict: boolean
  /** Largest stored session, in bytes of field names plus values. */
  readonly maxSize: number
  /** When a principal has more live sessions than this, the oldest are revoked. */
  readonly maxSessionsPerPrincipal: number | undefined
  /** Store the user agent and the network (IP prefix) of each new session, for a "your devices" page. */
  readonly recordClient: boolean
  /** A session whose id is older than this gets a new id on its next request (whole seconds). */
  readonly renewalInterval: Duration.Duration | undefined
  /** How long a renewed id still reaches its session, for the requests already on their way. */
  readonly renewalGrace: Duration.Duration
}

/**
 * The session options of the application.
 *
 * @example
 * ```ts
 * import { SessionConfig } from "effect-redis-sessions"
 * import { Duration, Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const config = yield* SessionConfig.SessionConfig
 *   yield* Effect.log(`sessions expire after ${Duration.format(config.timeout)} idle`)
 * })
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class SessionConfig
  extends Context.Tag("effect-redis-sessions/SessionConfig")<SessionConfig, SessionOptions>()
{}

/**
 * Everything decoded from one settings source: the session options and the Redis connection options.
 *
 * @example
 * ```ts
 * import { RedisClient, SessionConfig } from "effect-redis-sessions"
 * import { Effect, Layer } from "effect"
 *
 * const fromSettings = (settings: SessionConfig.Settings) =>
 *   Layer.merge(Layer.succeed(SessionConfig.SessionConfig, settings.session), RedisClient.layer(settings.redis))
 * const Live = Layer.unwrapEffect(Effect.map(SessionConfig.config, fromSettings))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly session: SessionOptions
  readonly redis: RedisClient.Options
}

/**
 * Options in code, in camelCase; every field but the secret is optional and has the seed's default.
 * `secret` may be a list (newest first) for rotation. Durations are `Duration.DurationInput`
 * (`"20 minutes"`, `Duration.hours(1)`; a bare number is milliseconds) and must be whole seconds.
 *
 * @example
 * ```ts
 * import { RedisSession, SessionConfig } from "effect-redis-sessions"
 * import { Redacted } from "effect"
 *
 * const options: SessionConfig.Options = {
 *   secret: [Redacted.make(process.env.SESSION_SECRET!), Redacted.make(process.env.PREVIOUS_SESSION_SECRET!)],
 *   timeout: "30 minutes",
 *   cookieSecure: true,
 *   url: "redis://127.0.0.1:6379"
 * }
 * const SessionLive = RedisSession.layer(options)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly secret: string | Redacted.Redacted<string> | ReadonlyArray<string | Redacted.Redacted<string>>
  readonly timeout?: Duration.DurationInput | undefined
  readonly absoluteTimeout?: Duration.DurationInput | undefined
  readonly cookieName?: string | undefined
  readonly cookieMaxAge?: Duration.DurationInput | undefined
  readonly cookiePath?: string | undefined
  readonly cookieDomain?: string | undefined
  readonly cookieSecure?: boolean | undefined
  /** The application is served over HTTPS: the cookie defaults to Secure and a `__Host-` (or `__Secure-`) name. */
  readonly https?: boolean | undefined
  readonly cookieHttpOnly?: boolean | undefined
  readonly cookieSameSite?: "lax" | "strict" | "none" | undefined
  readonly cookiePartitioned?: boolean | undefined
  readonly cookieOnException?: boolean | undefined
  readonly prefix?: string | undefined
  readonly idEncoding?: "hex" | "base64url" | undefined
  readonly strict?: boolean | undefined
  readonly maxSize?: number | undefined
  readonly maxSessionsPerPrincipal?: number | undefined
  readonly recordClient?: boolean | undefined
  readonly renewalInterval?: Duration.DurationInput | undefined
  readonly renewalGrace?: Duration.DurationInput | undefined
  readonly url?: string | Redacted.Redacted<string> | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly db?: number | undefined
  readonly username?: string | undefined
  readonly password?: string | Redacted.Redacted<string> | undefined
  readonly unixSocketPath?: string | undefined
  readonly socketTimeout?: Duration.DurationInput | undefined
  readonly connectTimeout?: Duration.DurationInput | undefined
  readonly commandTimeout?: Duration.DurationInput | undefined
  readonly lazyConnect?: boolean | undefined
  /** A client span per Redis call (see `RedisClient.Options`). Default `false`. */
  readonly tracing?: boolean | undefined
  /** PEM file of the CAs to trust for TLS to Redis (turns TLS on). */
  readonly tlsCaFile?: string | undefined
  /** PEM file of the client certificate, for mutual TLS (with `tlsKeyFile`). */
  readonly tlsCertFile?: string | undefined
  /** PEM file of the client certificate's private key. */
  readonly tlsKeyFile?: string | undefined
  /** The name the Redis server certificate must carry (default: the host). */
  readonly tlsServername?: string | undefined
  readonly clusterNodes?: ReadonlyArray<string> | undefined
  readonly sentinels?: ReadonlyArray<string> | undefined
  readonly sentinelMasterName?: string | undefined
  readonly sentinelPassword?: string | Redacted.Redacted<string> | undefined
  readonly waitReplicas?: number | undefined
}

// ---------------------------------------------------------------------------
// setting coercions (strings from ini files and env vars, or typed values)
// ---------------------------------------------------------------------------

const fromSetting = <A, I>(target: Schema.Schema<A, I>, parse: (input: unknown) => Either.Either<I, string>) =>
  Schema.transformOrFail(Schema.Unknown, target, {
    strict: true,
    decode: (input, _, ast) => Either.mapLeft(parse(input), (message) => new ParseResult.Type(ast, input, message)),
    encode: ParseResult.succeed
  })

const show = (input: unknown) => JSON.stringify(input) ?? String(input)

const parseNumber = (pattern: RegExp, kind: string) => (input: unknown): Either.Either<number, string> => {
  if (typeof input === "number") return Either.right(input)
  if (typeof input === "string" && pattern.test(input)) return Either.right(Number(input))
  return Either.left(`Expected ${kind}, actual ${show(input)}`)
}

const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  fromSetting(
    Schema.Int.pipe(Schema.between(min, max)),
    parseNumber(/^\s*[+-]?\d+\s*$/, "an integer")
  )

const seconds = fromSetting(
  Schema.Number.pipe(Schema.finite(), Schema.positive()),
  parseNumber(/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/, "a number of seconds")
)

const TRUE = new Set(["t", "true", "y", "yes", "on", "1"])
const FALSE = new Set(["f", "false", "n", "no", "off", "0"])

/** Pyramid's `asbool`, except that text it does not know is an error instead of `false`. */
const boolean = fromSetting(Schema.Boolean, (input) => {
  if (typeof input === "boolean") return Either.right(input)
  if (input === 1 || input === 0) return Either.right(input === 1)
  const text = typeof input === "string" ? input.trim().toLowerCase() : undefined
  if (text !== undefined && TRUE.has(text)) return Either.right(true)
  if (text !== undefined && FALSE.has(text)) return Either.right(false)
  return Either.left(`Expected a boolean (true/yes/on/y/t/1 or false/no/off/n/f/0), actual ${show(input)}`)
})

const text = <A extends string>(target: Schema.Schema<A, any> = Schema.String as any) =>
  fromSetting(target, (input) =>
    typeof input === "string" || Redacted.isRedacted(input)
      ? Either.right(typeof input === "string" ? input : Redacted.value(input as Redacted.Redacted<string>))
      : Either.left(`Expected a string, actual ${show(input)}`))

const listOf = (item: Schema.Schema<string>) =>
  fromSetting(Schema.NonEmptyArray(item), (input) => {
    const items = typeof input === "string"
      ? input.split(",").map((s) => s.trim()).filter((s) => s !== "")
      : Array.isArray(input) && input.every((s) => typeof s === "string" || Redacted.isRedacted(s))
      ? input.map((s) => typeof s === "string" ? s : Redacted.value(s as Redacted.Redacted<string>))
      : undefined
    return items !== undefined && items.length > 0
      ? Either.right(items as [string, ...Array<string>])
      : Either.left(`Expected a non-empty comma-separated list, actual ${show(input)}`)
  })

const SECRET_MIN_LENGTH = 32

const Secret = Schema.String.pipe(
  Schema.filter((s) => s.trim().length >= SECRET_MIN_LENGTH || `must be at least ${SECRET_MIN_LENGTH} characters`)
)

const CookieName = Schema.String.pipe(
  Schema.pattern(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, {
    message: () => "must be a cookie token (letters, digits, !#$%&'*+-.^_`|~)"
  })
)

const HostPort = Schema.String.pipe(
  Schema.pattern(/^[^\s:]+:\d{1,5}$/, { message: () => "must be host:port entries" })
)

/** Every setting, by its name after `redis.sessions.`. */
const SETTINGS = {
  secret: text(Secret),
  secrets: listOf(Secret),
  timeout: integer(1, MAX_TIMEOUT),
  absolute_timeout: integer(1, MAX_TIMEOUT),
  cookie_name: text(CookieName),
  cookie_max_age: integer(1, MAX_TIMEOUT),
  cookie_path: text(Schema.String.pipe(Schema.startsWith("/"))),
  cookie_domain: text(),
  cookie_secure: boolean,
  https: boolean,
  cookie_httponly: boolean,
  cookie_partitioned: boolean,
  cookie_samesite: text(Schema.String).pipe(
    Schema.compose(Schema.transform(Schema.String, Schema.Literal("lax", "strict", "none"), {
      strict: false,
      decode: (s) => s.trim().toLowerCase(),
      encode: (s) => s
    }))
  ),
  cookie_on_exception: boolean,
  prefix: text(),
  id_encoding: text(Schema.Literal("hex", "base64url")),
  strict: boolean,
  max_size: integer(64),
  max_sessions_per_principal: integer(1),
  record_client: boolean,
  renewal_interval: integer(1, MAX_TIMEOUT),
  renewal_grace: integer(1, 3600),
  url: text(Schema.String.pipe(Schema.pattern(/^(redis|rediss):\/\//, {
    message: () => "must start with redis:// or rediss://"
  }))),
  host: text(),
  port: integer(1, 65535),
  db: integer(0),
  username: text(),
  password: text(),
  unix_socket_path: text(),
  lazy_connect: boolean,
  tracing: boolean,
  tls_ca_file: text(),
  tls_cert_file: text(),
  tls_key_file: text(),
  tls_servername: text(),
  socket_timeout: seconds,
  connect_timeout: seconds,
  command_timeout: seconds,
  cluster_nodes: listOf(HostPort),
  sentinels: listOf(HostPort),
  sentinel_master_name: text(),
  sentinel_password: text(),
  wait_replicas: integer(0, 16)
}

type Decoded = { -readonly [K in keyof typeof SETTINGS]?: Schema.Schema.Type<(typeof SETTINGS)[K]> }

/** Settings whose values are credentials: their error messages never repeat the value. */
const SENSITIVE = new Set(["secret", "secrets", "password", "sentinel_password", "url"])

const redactedMessage = (messages: ReadonlyArray<string>) =>
  messages.every((m) => !m.includes("actual")) ? messages.join("; ") : "is not valid (value hidden)"

/** Settings the seed resolved from dotted Python paths; here they are code options. */
const CODE_ONLY: Record<string, string> = {
  id_generator: "is a code option: provide SessionId.Generator",
  serialize: "is a code option: provide Session.Codec",
  deserialize: "is a code option: provide Session.Codec",
  client_callable: "is a code option: use RedisClient.layerFromClient"
}

/** Settings that must not be empty even though the seed's templates leave optional ones blank. */
const NON_EMPTY = new Set(["secret", "cookie_name"])

/**
 * The prefix that marks session settings in a settings record.
 *
 * @example
 * ```ts
 * import { SessionConfig } from "effect-redis-sessions"
 *
 * const settings = SessionConfig.fromSettings({
 *   [`${SessionConfig.SETTINGS_PREFIX}secret`]: process.env.SESSION_SECRET,
 *   [`${SessionConfig.SETTINGS_PREFIX}url`]: process.env.REDIS_URL
 * })
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const SETTINGS_PREFIX = "redis.sessions."

const DEFAULT_MAX_SIZE = 64 * 1024
/** Browsers keep a cookie whose name and value fit in 4096 bytes (RFC 6265 §6.1, ASVS 3.3.5). */
const MAX_COOKIE = 4096
/** The longest signed cookie value: an id of 128 characters, a dot, a MAC of 43. */
const MAX_COOKIE_VALUE = 128 + 1 + 43

/** What each setting means, for `Config.withDescription` (and so for generated configuration docs). */
const DESCRIPTIONS: { readonly [K in keyof typeof SETTINGS]: string } = {
  secret: "Secret that signs session cookies, at least 32 characters",
  secrets: "Signing secrets for rotation, newest first, comma-separated (instead of secret)",
  timeout: "Idle timeout of a session, in seconds (default 1200)",
  absolute_timeout: "Hard limit on a session's life from its creation, in seconds (default none)",
  cookie_name: "Name of the session cookie (default session)",
  cookie_max_age: "Max-Age of the session cookie in seconds (default: a browser-session cookie)",
  cookie_path: "Path attribute of the session cookie (default /)",
  cookie_domain: "Domain attribute of the session cookie (default none: this host only)",
  cookie_secure: "Send the session cookie over HTTPS only (default false; true with https)",
  https: "The application is served over HTTPS: cookie_secure defaults to true and cookie_name to __Host-session",
  cookie_httponly: "Hide the session cookie from scripts (default true)",
  cookie_samesite: "SameSite attribute of the session cookie: lax, strict or none (default lax)",
  cookie_partitioned: "Partitioned attribute (CHIPS) of the session cookie; requires cookie_secure (default false)",
  cookie_on_exception: "Set a new session's cookie when the handler failed (default true)",
  prefix: "Prefix of the Redis keys of sessions (default empty)",
  id_encoding: "Alphabet of generated session ids: hex or base64url (default hex)",
  strict: "Report concurrent writes to the same key as SessionConflict instead of last-writer-wins (default false)",
  max_size: "Largest stored session, in bytes (default 65536)",
  max_sessions_per_principal: "Live sessions allowed per principal; the oldest are revoked (default unlimited)",
  record_client: "Store each new session's user agent and IP prefix, for SessionIndex.list (default false)",
  renewal_interval: "Give a session a new id once its id is this many seconds old (default: never)",
  renewal_grace: "Seconds a renewed id still reaches its session, for requests in flight (default 30)",
  url: "Redis URL, redis:// or rediss:// (instead of host, port, db)",
  host: "Redis host (default localhost)",
  port: "Redis port (default 6379)",
  db: "Redis database index (default 0)",
  username: "Redis ACL user name",
  password: "Redis password",
  unix_socket_path: "Path of the Redis Unix socket (instead of host and port)",
  lazy_connect: "Connect to Redis on first use instead of at startup (default false)",
  tracing: "A client tracing span per Redis call, with OpenTelemetry's database attributes (default false)",
  tls_ca_file: "PEM file of the CAs to trust for TLS to Redis; turns TLS on",
  tls_cert_file: "PEM file of the client certificate for mutual TLS to Redis (with tls_key_file)",
  tls_key_file: "PEM file of the private key of tls_cert_file",
  tls_servername: "Name the Redis server certificate must carry (default: the host)",
  socket_timeout: "Default of connect_timeout and command_timeout, in seconds",
  connect_timeout: "Time allowed to connect to Redis, in seconds (default 5)",
  command_timeout: "Time allowed for one Redis command, in seconds (default 1)",
  cluster_nodes: "Redis Cluster seed nodes, host:port comma-separated",
  sentinels: "Redis Sentinel nodes, host:port comma-separated",
  sentinel_master_name: "Name of the master the sentinels watch",
  sentinel_password: "Password of the sentinels",
  wait_replicas: "Replicas that must acknowledge a login, logout or revocation (WAIT; default 0)"
}

type Setting = keyof typeof SETTINGS

/** Decodes one setting: `undefined` for an absent or blank one (its default applies), or why it is refused. */
const decodeSetting = (key: Setting, value: unknown): Either.Either<unknown, string> => {
  if (value === undefined || value === null) return Either.right(undefined)
  if (typeof value === "string" && value.trim() === "" && !NON_EMPTY.has(key)) return Either.right(undefined)
  return Schema.decodeUnknownEither(SETTINGS[key] as Schema.Schema<unknown, unknown>)(value).pipe(
    Either.mapLeft((error) => {
      const messages = ParseResult.ArrayFormatter.formatErrorSync(error).map((e) => e.message)
      return SENSITIVE.has(key) ? redactedMessage(messages) : messages.join("; ")
    })
  )
}

/** An issue with one setting, by its name after `redis.sessions.`. */
interface Issue {
  readonly key: string
  readonly message: string
  /** The setting is required and absent. */
  readonly missing?: boolean
}

/** The checks that span settings, and the defaults. */
const toSettings = (d: Decoded): Either.Either<Settings, Array<Issue>> => {
  const issues: Array<Issue> = []
  const issue = (key: Setting, message: string) => issues.push({ key, message })
  const secrets = d.secrets ?? (d.secret === undefined ? undefined : [d.secret])
  if (secrets === undefined) issues.push({ key: "secret", message: "is a required setting", missing: true })
  if (d.secret !== undefined && d.secrets !== undefined) issue("secrets", "give either secret or secrets, not both")
  const secure = d.cookie_secure ?? d.https ?? false
  const sameSite = d.cookie_samesite ?? "lax"
  const path = d.cookie_path ?? "/"
  const cookieName = d.cookie_name ?? (d.https !== true || !secure
    ? "session"
    : path === "/" && d.cookie_domain === undefined
    ? "__Host-session"
    : "__Secure-session")
  if (sameSite === "none" && !secure) issue("cookie_samesite", "None requires cookie_secure = true")
  if (d.cookie_partitioned === true && !secure) issue("cookie_partitioned", "Partitioned requires cookie_secure = true")
  if (cookieName.length + 1 + MAX_COOKIE_VALUE > MAX_COOKIE) {
    issue("cookie_name", `leaves no room for a signed id: name and value must fit in ${MAX_COOKIE} bytes`)
  }
  if (cookieName.startsWith("__Secure-") && !secure) {
    issue("cookie_name", "a __Secure- cookie requires cookie_secure = true")
  }
  if (cookieName.startsWith("__Host-")) {
    if (!secure) issue("cookie_name", "a __Host- cookie requires cookie_secure = true")
    if (path !== "/") issue("cookie_path", "a __Host- cookie requires cookie_path = /")
    if (d.cookie_domain !== undefined) issue("cookie_domain", "a __Host- cookie must not set a domain")
  }
  if (Either.isLeft(Cookies.makeCookie(cookieName, "value", { path }))) {
    issue("cookie_path", "is not a valid cookie path")
  }
  if (Either.isLeft(Cookies.makeCookie(cookieName, "value", { domain: d.cookie_domain }))) {
    issue("cookie_domain", "is not a valid cookie domain")
  }
  if (d.cluster_nodes !== undefined && d.sentinels !== undefined) {
    issue("cluster_nodes", "give either cluster_nodes or sentinels, not both")
  }
  if (d.sentinels !== undefined && d.sentinel_master_name === undefined) {
    issue("sentinel_master_name", "is required with sentinels")
  }
  if ((d.tls_cert_file === undefined) !== (d.tls_key_file === undefined)) {
    issue(
      d.tls_cert_file === undefined ? "tls_cert_file" : "tls_key_file",
      "tls_cert_file and tls_key_file go together"
    )
  }
  const pem = (key: "tls_ca_file" | "tls_cert_file" | "tls_key_file") => {
    const file = d[key]
    if (file === undefined) return undefined
    try {
      return readFileSync(file, "utf8")
    } catch (error) {
      issue(key, `cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`)
      return undefined
    }
  }
  const ca = pem("tls_ca_file")
  const cert = pem("tls_cert_file")
  const key = pem("tls_key_file")
  if (issues.length > 0 || secrets === undefined) return Either.left(issues)
  const redacted = (value: string | undefined) => value === undefined ? undefined : Redacted.make(value)
  const seconds = (value: number | undefined) => value === undefined ? undefined : Duration.seconds(value)
  return Either.right({
    session: {
      secrets: secrets.map((s) => Redacted.make(s)) as unknown as SessionOptions["secrets"],
      timeout: Duration.seconds(d.timeout ?? 1200),
      absoluteTimeout: seconds(d.absolute_timeout),
      cookieName,
      cookieMaxAge: seconds(d.cookie_max_age),
      cookiePath: path,
      cookieDomain: d.cookie_domain,
      cookieSecure: secure,
      cookieHttpOnly: d.cookie_httponly ?? true,
      cookieSameSite: sameSite,
      cookiePartitioned: d.cookie_partitioned ?? false,
      cookieOnException: d.cookie_on_exception ?? true,
      prefix: d.prefix ?? "",
      idEncoding: d.id_encoding ?? "hex",
      strict: d.strict ?? false,
      maxSize: d.max_size ?? DEFAULT_MAX_SIZE,
      maxSessionsPerPrincipal: d.max_sessions_per_principal,
      recordClient: d.record_client ?? false,
      renewalInterval: seconds(d.renewal_interval),
      renewalGrace: Duration.seconds(d.renewal_grace ?? 30)
    },
    redis: {
      url: redacted(d.url),
      host: d.host ?? "localhost",
      port: d.port ?? 6379,
      db: d.db ?? 0,
      username: d.username,
      password: redacted(d.password),
      unixSocketPath: d.unix_socket_path,
      connectTimeout: Duration.seconds(d.connect_timeout ?? d.socket_timeout ?? 5),
      commandTimeout: Duration.seconds(d.command_timeout ?? d.socket_timeout ?? 1),
      lazyConnect: d.lazy_connect ?? false,
      tracing: d.tracing ?? false,
      tls: ca === undefined && cert === undefined && d.tls_servername === undefined
        ? undefined
        : { ca, cert, key: key === undefined ? undefined : Redacted.make(key), servername: d.tls_servername },
      waitReplicas: d.wait_replicas ?? 0,
      clusterNodes: d.cluster_nodes,
      sentinels: d.sentinels,
      sentinelMasterName: d.sentinel_master_name,
      sentinelPassword: redacted(d.sentinel_password)
    }
  })
}

/**
 * Decodes the `redis.sessions.*` entries of a settings record (other keys are ignored). Strings are
 * coerced (integers, seconds, Pyramid booleans); an empty string means "use the default". Fails with one
 * {@link SessionConfigError} that names every bad, missing or unknown key.
 *
 * @example
 * ```ts
 * import { SessionConfig } from "effect-redis-sessions"
 *
 * const settings = SessionConfig.fromSettings({
 *   "redis.sessions.secret": "a-secret-of-at-least-32-characters!!",
 *   "redis.sessions.timeout": "3600",
 *   "redis.sessions.cookie_secure": "true"
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSettings = (
  settings: Readonly<Record<string, unknown>>
): Effect.Effect<Settings, SessionConfigError> => Effect.suspend(() => decode(settings))

const decode = (settings: Readonly<Record<string, unknown>>): Either.Either<Settings, SessionConfigError> => {
  const issues: Array<Issue> = []
  const decoded: Record<string, unknown> = {}
  for (const [fullKey, value] of Object.entries(settings)) {
    if (!fullKey.startsWith(SETTINGS_PREFIX)) continue
    const key = fullKey.slice(SETTINGS_PREFIX.length)
    if (Object.hasOwn(CODE_ONLY, key)) issues.push({ key, message: CODE_ONLY[key]! })
    else if (!Object.hasOwn(SETTINGS, key)) issues.push({ key, message: "is not a known setting" })
    else {
      Either.match(decodeSetting(key as Setting, value), {
        onLeft: (message) => issues.push({ key, message }),
        onRight: (value) => void (decoded[key] = value)
      })
    }
  }
  const settled = toSettings(decoded as Decoded)
  const all = Either.isLeft(settled)
    ? [...issues, ...settled.left.filter((i) => !(i.missing && issues.some((j) => j.key.startsWith("secret"))))]
    : issues
  return all.length === 0 && Either.isRight(settled)
    ? Either.right(settled.right)
    : Either.left(
      new SessionConfigError({ issues: all.map((i) => ({ key: SETTINGS_PREFIX + i.key, message: i.message })) })
    )
}

/** Code option names whose setting name is not their plain snake_case (the seed's spelling). */
const SEED_NAMES: Record<string, string> = { cookieHttpOnly: "cookie_httponly", cookieSameSite: "cookie_samesite" }

const settingName = (option: string) => SEED_NAMES[option] ?? option.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

const DURATION_OPTIONS = new Set([
  "timeout",
  "absoluteTimeout",
  "cookieMaxAge",
  "socketTimeout",
  "connectTimeout",
  "commandTimeout",
  "renewalInterval",
  "renewalGrace"
])

/** A duration option in the settings' unit (seconds); what is not a duration is left for the decoder to refuse. */
const inSeconds = (value: unknown) =>
  Option.match(Duration.decodeUnknown(value), { onNone: () => value, onSome: Duration.toSeconds })

/**
 * Decodes options given in code with the same rules as {@link fromSettings}.
 *
 * @example
 * ```ts
 * import { SessionConfig } from "effect-redis-sessions"
 *
 * const settings = SessionConfig.make({ secret: "a-secret-of-at-least-32-characters!!", timeout: "1 hour" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Settings, SessionConfigError> => {
  const { secret, ...rest } = options
  const secrets = Array.isArray(secret) ? { secrets: secret } : { secret }
  const settings: Record<string, unknown> = {}
  for (const [key, value] of Object.entries({ ...rest, ...secrets })) {
    settings[SETTINGS_PREFIX + settingName(key)] = DURATION_OPTIONS.has(key) && value !== undefined
      ? inSeconds(value)
      : value
  }
  return fromSettings(settings)
}

/**
 * One setting from `Config`, decoded by the same rules as a settings record; errors keep its path.
 * Credentials are read with `Config.redacted` and never appear in an error message.
 */
const setting = (key: Setting): Config.Config<Option.Option<unknown>> =>
  (SENSITIVE.has(key) ? Config.map(Config.redacted(), Redacted.value) : Config.string()).pipe(
    Config.mapOrFail((value) =>
      Either.mapLeft(decodeSetting(key, value), (message) => ConfigError.InvalidData([], message))
    ),
    Config.nested(key),
    Config.withDescription(DESCRIPTIONS[key]),
    Config.option
  )

const toConfigError = (issue: Issue): ConfigError.ConfigError =>
  issue.missing
    ? ConfigError.MissingData([issue.key], `Expected ${issue.key} (or secrets) to be set`)
    : ConfigError.InvalidData([issue.key], issue.message)

/**
 * The settings from Effect `Config`, under `redis.sessions`. With
 * `ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase)` they are read from
 * `REDIS_SESSIONS_SECRET`, `REDIS_SESSIONS_TIMEOUT`, `REDIS_SESSIONS_URL`, … (lists comma-separated).
 * A bad value fails with a `ConfigError` at the setting's path; every setting has a description.
 *
 * @example
 * ```ts
 * import { SessionConfig } from "effect-redis-sessions"
 * import { ConfigProvider, Effect } from "effect"
 *
 * const settings = SessionConfig.config.pipe(
 *   Effect.withConfigProvider(ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase))
 * )
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Settings> = Config.all(Record.map(SETTINGS, (_, key) => setting(key))).pipe(
  Config.mapOrFail((values) =>
    toSettings(Record.map(values, Option.getOrUndefined) as Decoded).pipe(
      Either.mapLeft((issues) => issues.map(toConfigError).reduce((a, b) => ConfigError.And(a, b)))
    )
  ),
  Config.nested("sessions"),
  Config.nested("redis")
)

/** The session options of decoded settings, with a warning when their cookie travels over plain HTTP. */
const sessionOptions = <E, R>(settings: Effect.Effect<Settings, E, R>): Effect.Effect<SessionOptions, E, R> =>
  Effect.flatMap(settings, (s) => Effect.as(warnIfInsecure(s.session), s.session))

/**
 * The `SessionConfig` service from options in code (see {@link make}).
 *
 * @example
 * ```ts
 * import { SessionConfig, SessionStore } from "effect-redis-sessions"
 * import { Layer } from "effect"
 *
 * const TestServices = Layer.merge(
 *   SessionConfig.layer({ secret: "a-secret-of-at-least-32-characters!!", timeout: 60 }),
 *   SessionStore.layerMemory
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<SessionConfig, SessionConfigError> =>
  Layer.effect(SessionConfig, sessionOptions(make(options)))

/**
 * The `SessionConfig` service from a `redis.sessions.*` settings record (see {@link fromSettings}).
 *
 * @example
 * ```ts
 * import { SessionConfig } from "effect-redis-sessions"
 *
 * const ConfigLive = SessionConfig.layerFromSettings({
 *   "redis.sessions.secret": "a-secret-of-at-least-32-characters!!",
 *   "redis.sessions.cookie_secure": "true"
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromSettings = (
  settings: Readonly<Record<string, unknown>>
): Layer.Layer<SessionConfig, SessionConfigError> => Layer.effect(SessionConfig, sessionOptions(fromSettings(settings)))

/**
 * The `SessionConfig` service from Effect `Config` (see {@link config}).
 *
 * @example
 * ```ts
 * import { SessionConfig } from "effect-redis-sessions"
 * import { ConfigProvider, Layer } from "effect"
 *
 * const ConfigTest = SessionConfig.layerConfig().pipe(
 *   Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson({
 *     redis: { sessions: { secret: "a-secret-of-at-least-32-characters!!", timeout: "60" } }
 *   })))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  settings: Config.Config<Settings> = config
): Layer.Layer<SessionConfig, ConfigError.ConfigError> => Layer.effect(SessionConfig, sessionOptions(settings))
