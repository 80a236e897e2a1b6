/**
 * A scoped ioredis client (single node, Cluster or Sentinel) whose every failure is a typed
 * {@link RedisError} and whose every command ends within `commandTimeout`.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import { Cluster, Redis } from "ioredis"
import { createHash } from "node:crypto"
import { count } from "./internal/counting.js"
import { slotOf } from "./internal/slot.js"
import { latencyOf } from "./internal/taggedMetrics.js"
import { RedisError } from "./SessionError.js"

/**
 * How to reach Redis. `url` wins over host, port, db, username and password; `unixSocketPath` wins over
 * host and port; `clusterNodes` selects Redis Cluster and `sentinels` Redis Sentinel. Times are milliseconds.
 *
 * @example
 * ```ts
 * import { RedisClient } from "effect-redis-sessions"
 *
 * const options: RedisClient.Options = {
 *   sentinels: ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"],
 *   sentinelMasterName: "sessions",
 *   waitReplicas: 1
 * }
 * const RedisLive = RedisClient.layer(options)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly url?: Redacted.Redacted<string> | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly db?: number | undefined
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted<string> | undefined
  readonly unixSocketPath?: string | undefined
  /** Deadline for connecting, at layer build and on every reconnect. Default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Deadline for every command. Default 1 second. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /**
   * Build the layer without waiting for Redis: the app starts even when Redis is down, session
   * operations fail with `RedisError` (503) until it is reachable, and the client keeps reconnecting.
   * Default `false`: the layer fails with `RedisError` when Redis is not reachable within `connectTimeout`.
   */
  readonly lazyConnect?: boolean | undefined
  /** `host:port` seeds of a Redis Cluster. */
  readonly clusterNodes?: ReadonlyArray<string> | undefined
  /** `host:port` addresses of Redis Sentinels. */
  readonly sentinels?: ReadonlyArray<string> | undefined
  readonly sentinelMasterName?: string | undefined
  readonly sentinelPassword?: Redacted.Redacted<string> | undefined
  /**
   * Replicas that must acknowledge a login, logout, regenerate or revocation before it is reported as
   * done (`WAIT`, bounded by `commandTimeout`); fewer acknowledgements fail the request with
   * `RedisError` (reason `Replication`). Default 0: no waiting.
   */
  readonly waitReplicas?: number | undefined
  /**
   * TLS to Redis. A `rediss://` URL turns it on (trusting the system's CAs); these options turn it on for host
   * and port too. `ca`: PEM of the CAs to trust instead; `cert` and `key`: a client certificate for mutual TLS;
   * `servername`: the name the server certificate must carry (default: the host). A handshake that fails fails
   * the connection, never falls back to plaintext.
   */
  readonly tls?: TlsOptions | undefined
  /**
   * A client span per Redis call (a child of the request's span), with OpenTelemetry's database attributes.
   * Default `false`: a span costs every call, even when no tracer is installed.
   */
  readonly tracing?: boolean | undefined
}

/**
 * TLS settings of {@link Options} (PEM text, as read from files).
 *
 * @example
 * ```ts
 * import { RedisClient } from "effect-redis-sessions"
 * import { Redacted } from "effect"
 * import { readFileSync } from "node:fs"
 *
 * // certificates from a directory, e.g. "/etc/redis"
 * const RedisLive = (dir: string) =>
 *   RedisClient.layer({
 *     url: Redacted.make("rediss://redis.internal:6380"),
 *     tls: {
 *       ca: readFileSync(`${dir}/ca.crt`, "utf8"),
 *       cert: readFileSync(`${dir}/client.crt`, "utf8"),
 *       key: Redacted.make(readFileSync(`${dir}/client.key`, "utf8"))
 *     }
 *   })
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface TlsOptions {
  readonly ca?: string | undefined
  readonly cert?: string | undefined
  readonly key?: Redacted.Redacted<string> | undefined
  readonly servername?: string | undefined
}

/**
 * A Lua script run by its SHA-1, sent in full only when Redis does not know it yet.
 *
 * @example
 * ```ts
 * import { RedisClient } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const FieldCount = RedisClient.script("return redis.call('HLEN', KEYS[1])")
 * const fieldCount = (key: string) =>
 *   Effect.flatMap(RedisClient.RedisClient, (redis) => redis.eval("fieldCount", FieldCount, [key], []))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Script {
  readonly source: string
  readonly sha: string
}

/**
 * @example
 * ```ts
 * import { RedisClient } from "effect-redis-sessions"
 *
 * const count = RedisClient.script("return redis.call('HLEN', KEYS[1])")
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const script = (source: string): Script => ({ source, sha: createHash("sha1").update(source).digest("hex") })

/**
 * The Redis connection used by the session store.
 *
 * @example
 * ```ts
 * import { RedisClient } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const ping = Effect.flatMap(RedisClient.RedisClient, (redis) => redis.run("PING", (client) => client.ping()))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class RedisClient extends Context.Tag("effect-redis-sessions/RedisClient")<RedisClient, {
  /** The underlying ioredis client. */
  readonly client: Redis | Cluster
  /** Runs one command (or a command sequence) with the deadline and typed errors. */
  readonly run: <A>(operation: string, f: (client: Redis | Cluster) => Promise<A>) => Effect.Effect<A, RedisError>
  /**
   * Waits until the configured number of replicas acknowledged the writes made so far on the connection
   * that serves `key` (no-op when `waitReplicas` is 0).
   */
  readonly confirmWrites: (key: string) => Effect.Effect<void, RedisError>
  /** Runs a script on its keys (on a Cluster, keys of one slot). */
  readonly eval: (
    operation: string,
    script: Script,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string | number>
  ) => Effect.Effect<unknown, RedisError>
}>() {}

const classify = (client: Redis | Cluster, operation: string, cause: unknown): RedisError => {
  const message = cause instanceof Error ? cause.message : String(cause)
  const reason = client.status === "end"
    ? "Closed"
    : cause instanceof Error && cause.name === "ReplyError"
    ? "Command"
    : /timed? ?out/i.test(message)
    ? "Timeout"
    : "Connection"
  return new RedisError({ reason, operation, cause })
}

/**
 * `ownDeadline`: bound every call with a timer of our own, behind ioredis' `commandTimeout`, for what it does not
 * cover (cluster redirections, sentinel lookups, an application's client without `commandTimeout`). A single
 * node client this module built needs none: ioredis bounds each of its commands.
 */
const makeService = (
  client: Redis | Cluster,
  commandTimeout: number,
  waitReplicas: number,
  ownDeadline: boolean,
  tracing: boolean
) => {
  const deadline = commandTimeout + 50
  /** `f` on the client; `fallback`, when given, runs instead once when `f` fails with `NOSCRIPT`. */
  const call = <A>(
    operation: string,
    f: (client: Redis | Cluster) => Promise<A>,
    fallback?: (client: Redis | Cluster) => Promise<A>
  ): Effect.Effect<A, RedisError> =>
    Effect.async<A, RedisError>((resume) => {
      const started = performance.now()
      const timer = ownDeadline ? setTimeout(() => fail(new DeadlineExceeded()), deadline) : undefined
      const settle = (result: Effect.Effect<A, RedisError>) => {
        if (timer !== undefined) clearTimeout(timer)
        count(latencyOf(operation), performance.now() - started)
        resume(result)
      }
      const fail = (cause: unknown) => settle(Effect.fail(classify(client, operation, cause)))
      const succeed = (value: A) => settle(Effect.succeed(value))
      const attempt = (run: (client: Redis | Cluster) => Promise<A>, retry: typeof fallback) => {
        try {
          run(client).then(succeed, (cause) =>
            retry !== undefined && cause instanceof Error && cause.message.startsWith("NOSCRIPT")
              ? attempt(retry, undefined)
              : fail(cause))
        } catch (cause) {
          fail(cause)
        }
      }
      attempt(f, fallback)
    })
  const server = serverAttributes(client)
  /** A span named `name`: `EVALSHA <script>` for a script, the caller's operation name otherwise. */
  const traced = <A>(
    name: string,
    operation: string,
    attributes: Record<string, string>,
    f: (client: Redis | Cluster) => Promise<A>,
    fallback?: (client: Redis | Cluster) => Promise<A>
  ) =>
    call(operation, f, fallback).pipe(
      Effect.tapError((error) => Effect.annotateCurrentSpan(errorAttributes(error))),
      Effect.withSpan(name, { kind: "client", attributes: { ...server, ...attributes }, captureStackTrace: false })
    )
  const run = <A>(operation: string, f: (client: Redis | Cluster) => Promise<A>): Effect.Effect<A, RedisError> =>
    tracing ? traced(operation, operation, { "db.operation.name": operation }, f) : call(operation, f)
  // WAIT answers after its own timeout, which must end before the command deadline
  const waitTimeout = Math.max(1, Math.floor(commandTimeout * 0.8))
  return RedisClient.of({
    client,
    run,
    confirmWrites: (key) =>
      waitReplicas === 0 ? Effect.void : Effect.flatMap(
        run("wait", (c) => nodeFor(c, key).wait(waitReplicas, waitTimeout)),
        (acknowledged) =>
          acknowledged >= waitReplicas ? Effect.void : Effect.fail(
            new RedisError({
              reason: "Replication",
              operation: "wait",
              cause: new Error(`${acknowledged} of ${waitReplicas} replicas acknowledged`)
            })
          )
      ),
    eval: (operation, script, keys, args) => {
      const bySha = (c: Redis | Cluster) => c.evalsha(script.sha, keys.length, ...keys, ...args)
      // a server that restarted or flushed its scripts answers NOSCRIPT: send the script itself, once
      const bySource = (c: Redis | Cluster) => c.eval(script.source, keys.length, ...keys, ...args)
      return tracing
        ? traced(
          `EVALSHA ${operation}`,
          operation,
          { "db.operation.name": "EVALSHA", "db.stored_procedure.name": operation },
          bySha,
          bySource
        )
        : call(operation, bySha, bySource)
    }
  })
}

/** Where a span's calls go, in OpenTelemetry's attribute names; a Cluster has no single address. */
const serverAttributes = (client: Redis | Cluster): Record<string, string | number> =>
  client instanceof Cluster
    ? { "db.system.name": "redis" }
    : {
      "db.system.name": "redis",
      "db.namespace": String(client.options.db ?? 0),
      ...(client.options.path === undefined
        ? { "server.address": client.options.host ?? "localhost", "server.port": client.options.port ?? 6379 }
        : { "server.address": client.options.path })
    }

/** A failed call's span attributes: the reason, and the error prefix Redis answered (`NOPERM`, `OOM`, …) if any. */
const errorAttributes = (error: RedisError): Record<string, string> =>
  error.reason === "Command" && error.cause instanceof Error
    ? { "error.type": error.reason, "db.response.status_code": error.cause.message.split(" ", 1)[0]! }
    : { "error.type": error.reason }

/** Why a connection failed: a failed TLS handshake named as such (the socket error alone does not say TLS). */
const connectionFailure = (lastError: unknown, cause: unknown): unknown => {
  const error = lastError ?? cause
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : ""
  const tls = /CERT|SELF_SIGNED|TLS|SSL|ALTNAME|HANDSHAKE/.test(code) ||
    (error instanceof Error && /certificate|tls|ssl/i.test(error.message))
  return tls && error instanceof Error ? new Error(`TLS: ${error.message}`, { cause: error }) : error
}

/** A plain timer's verdict: an Effect timeout per command would cost a fiber. */
class DeadlineExceeded extends Error {
  constructor() {
    super("Command timed out")
  }
}

/** The connection that owns `key`: the client itself, or on a Cluster the master of the key's slot. */
const nodeFor = (client: Redis | Cluster, key: string): Redis => {
  if (!(client instanceof Cluster)) return client
  const owner = client.slots[slotOf(key)]?.[0]
  return client.nodes("master").find((node) => `${node.options.host}:${node.options.port}` === owner) ??
    client.nodes("master")[0]!
}

const hostPort = (address: string) => {
  const at = address.lastIndexOf(":")
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) }
}

const millis = (duration: Duration.DurationInput | undefined, fallback: number) =>
  duration === undefined ? fallback : Duration.toMillis(duration)

const connectionOptions = (options: Options) => {
  const commandTimeout = millis(options.commandTimeout, 1000)
  return {
    lazyConnect: true,
    connectTimeout: millis(options.connectTimeout, 5000),
    commandTimeout,
    // a connection that owes a reply and stays silent is dropped and rebuilt, so one lost reply cannot wedge it
    socketTimeout: Math.max(commandTimeout * 2, 1000),
    // fail at once while disconnected (bounded memory, 503 within the deadline) and never replay a write
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: Redacted.value(options.password) }),
    ...(options.tls === undefined ? {} : { tls: tlsConnection(options.tls) }),
    db: options.db ?? 0
  }
}

const tlsConnection = (tls: TlsOptions) => ({
  ...(tls.ca === undefined ? {} : { ca: tls.ca }),
  ...(tls.cert === undefined ? {} : { cert: tls.cert }),
  ...(tls.key === undefined ? {} : { key: Redacted.value(tls.key) }),
  ...(tls.servername === undefined ? {} : { servername: tls.servername })
})

const construct = (options: Options): Redis | Cluster => {
  const base = connectionOptions(options)
  if (options.clusterNodes !== undefined) {
    const { db: _db, ...redisOptions } = base
    return new Cluster(options.clusterNodes.map(hostPort), {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 1000),
      slotsRefreshTimeout: base.connectTimeout ?? 5000,
      redisOptions
    })
  }
  if (options.sentinels !== undefined) {
    return new Redis({
      ...base,
      sentinels: options.sentinels.map(hostPort),
      name: options.sentinelMasterName ?? "mymaster",
      ...(options.sentinelPassword === undefined ? {} : { sentinelPassword: Redacted.value(options.sentinelPassword) }),
      sentinelRetryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
      // a Sentinel that accepts connections but never answers (hung, SIGSTOP) must not stall the search for
      // the master: without a deadline the client waits on it forever and never reconnects
      sentinelCommandTimeout: base.commandTimeout,
      // leave the old master as soon as the Sentinels announce a new one (+switch-master): otherwise the
      // client keeps writing to it until the Sentinels demote it (~10 s later), and its resync discards
      // every write it acknowledged meanwhile
      failoverDetector: true
    })
  }
  if (options.url !== undefined) {
    const { db: _db, username: _username, password: _password, ...fromUrl } = base as typeof base & {
      username?: string
      password?: string
    }
    return new Redis(Redacted.value(options.url), fromUrl)
  }
  if (options.unixSocketPath !== undefined) return new Redis({ ...base, path: options.unixSocketPath })
  return new Redis({ ...base, host: options.host ?? "localhost", port: options.port ?? 6379 })
}

/**
 * Builds a client, connects within `connectTimeout` (failing with `RedisError` otherwise, unless
 * `lazyConnect`) and closes it when the scope ends.
 *
 * @example
 * ```ts
 * import { RedisClient } from "effect-redis-sessions"
 * import { Effect } from "effect"
 *
 * const ping = Effect.scoped(Effect.gen(function*() {
 *   const redis = yield* RedisClient.make({ host: "127.0.0.1", port: 6379 })
 *   return yield* redis.run("ping", (client) => client.ping())
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options) {
  let closed = false
  const client = yield* Effect.acquireRelease(
    Effect.sync(() => construct(options)),
    (client) =>
      Effect.tryPromise(() => {
        closed = true
        return client.quit()
      }).pipe(
        Effect.timeoutOption("1 second"),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => client.disconnect()))
      )
  )
  const runFork = Runtime.runFork(yield* Effect.runtime<never>())
  /** What the connection last failed with: `connect()` itself only says "Connection is closed." */
  let lastError: unknown
  client.on("error", (cause) => {
    lastError = cause
    runFork(Effect.logDebug("Redis connection error", cause))
  })
  if (options.sentinels !== undefined) {
    // ioredis ends a Sentinel client for good when its failover detector fires while the client is still
    // asking the Sentinels for the master (after the master died, a hung Sentinel holds that step for up
    // to commandTimeout): start it again, so the client never gives up while the layer lives
    client.on("end", () =>
      setTimeout(() => {
        if (!closed && client.status === "end") client.connect().catch(() => {})
      }, 100))
  }
  const connect = Effect.tryPromise({
    try: () => client.connect(),
    catch: (cause) =>
      new RedisError({ reason: "Connection", operation: "connect", cause: connectionFailure(lastError, cause) })
  })
  if (options.lazyConnect === true) {
    yield* Effect.forkDaemon(Effect.ignore(connect))
  } else {
    yield* connect.pipe(
      Effect.timeoutFail({
        duration: millis(options.connectTimeout, 5000),
        onTimeout: () => new RedisError({ reason: "Timeout", operation: "connect" })
      })
    )
  }
  const singleNode = options.clusterNodes === undefined && options.sentinels === undefined
  return makeService(
    client,
    millis(options.commandTimeout, 1000),
    options.waitReplicas ?? 0,
    !singleNode,
    options.tracing ?? false
  )
})

/**
 * @example
 * ```ts
 * import { RedisClient } from "effect-redis-sessions"
 * import { Redacted } from "effect"
 *
 * const RedisLive = RedisClient.layer({ url: Redacted.make("redis://127.0.0.1:6379/0"), commandTimeout: "500 millis" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<RedisClient, RedisError> =>
  Layer.scoped(RedisClient, make(options))

/**
 * Uses a client the application created and owns (the seed's `client_callable`): the library never
 * connects or closes it, but still bounds every command by `commandTimeout` (default 1 second).
 *
 * @example
 * ```ts
 * import { RedisClient } from "effect-redis-sessions"
 * import { Redis } from "ioredis"
 *
 * // lazyConnect: the application connects it when it starts (client.connect())
 * const client = new Redis({ lazyConnect: true, commandTimeout: 500, enableOfflineQueue: false })
 * const RedisLive = RedisClient.layerFromClient(client)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromClient = (
  client: Redis | Cluster,
  options?: {
    readonly commandTimeout?: Duration.DurationInput | undefined
    readonly waitReplicas?: number | undefined
    readonly tracing?: boolean | undefined
  }
): Layer.Layer<RedisClient> =>
  Layer.succeed(
    RedisClient,
    makeService(
      client,
      millis(options?.commandTimeout, 1000),
      options?.waitReplicas ?? 0,
      true,
      options?.tracing ?? false
    )
  )

/**
 * The client from `Config`: each option is a `Config` of its own (as `PgClient.layerConfig` takes them).
 *
 * @example
 * ```ts
 * import { RedisClient } from "effect-redis-sessions"
 * import { Config } from "effect"
 *
 * const RedisLive = RedisClient.layerConfig({
 *   url: Config.redacted("REDIS_URL"),
 *   commandTimeout: Config.succeed("500 millis")
 * })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (config: Config.Config.Wrap<Options>): Layer.Layer<RedisClient, ConfigError | RedisError> =>
  Layer.scoped(RedisClient, Effect.flatMap(Config.unwrap(config), make))
