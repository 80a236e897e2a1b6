/**
 * The library's Effect `Metric`s, for dashboards and alerts (export them with `@effect/opentelemetry` or any
 * Effect metrics exporter). Counters are updated whether or not anything reads them, at the cost of a map
 * lookup each; `docs/operations.md` has example alert rules.
 *
 * @since 0.3.0
 */
import * as Metric from "effect/Metric"
import { latency, taggedCounter } from "./internal/taggedMetrics.js"

/** One counter per value of `tag`, made once so that counting is a lookup. */
const byTag = <const Values extends ReadonlyArray<string>>(
  name: string,
  description: string,
  tag: string,
  values: Values
): { readonly [K in Values[number]]: Metric.Metric.Counter<number> } =>
  Object.fromEntries(values.map((value) => [value, taggedCounter(name, description, tag, value)])) as any

/**
 * Session loads by `outcome`: `live`, `missing` (ended, expired or never stored), `expired` (past its absolute
 * timeout), `undecodable` (a value the codec cannot read) and `error` (the store failed).
 *
 * @example
 * ```ts
 * import { SessionMetrics } from "effect-redis-sessions"
 * import { Effect, Metric } from "effect"
 *
 * const failedLoads = Effect.map(Metric.value(SessionMetrics.loads.error), (state) => state.count)
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const loads = byTag("sessions_loads", "Session loads by outcome", "outcome", [
  "live",
  "missing",
  "expired",
  "undecodable",
  "error"
])

/**
 * Commits of requests that used the session, by `outcome`: `unchanged` (nothing to write), `written` (changes
 * or a TTL extension stored), `created`, `ended` (logged out, or nothing left to store), `conflict` (409 in
 * strict mode), `too_large` (413) and `error` (the store failed: 503).
 *
 * @example
 * ```ts
 * import { SessionMetrics } from "effect-redis-sessions"
 * import { Effect, Metric } from "effect"
 *
 * const conflicts = Effect.map(Metric.value(SessionMetrics.commits.conflict), (state) => state.count)
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const commits = byTag("sessions_commits", "Session commits by outcome", "outcome", [
  "unchanged",
  "written",
  "created",
  "ended",
  "conflict",
  "too_large",
  "error"
])

/**
 * Store failures seen by requests, by `reason` (`Unavailable`, `Timeout`, `Replication`), whichever operation
 * failed.
 *
 * @example
 * ```ts
 * import { SessionMetrics } from "effect-redis-sessions"
 * import { Effect, Metric } from "effect"
 *
 * const timeouts = Effect.map(Metric.value(SessionMetrics.storeErrors.Timeout), (state) => state.count)
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const storeErrors = byTag("sessions_store_errors", "Session store failures by reason", "reason", [
  "Unavailable",
  "Timeout",
  "Replication"
])

/**
 * Sessions by what happened to them: `created`, `regenerated`, `invalidated` (by their own request), `revoked`
 * (through `SessionIndex`, one per session ended), `expired_on_read` (a valid cookie whose session had ended).
 *
 * @example
 * ```ts
 * import { SessionMetrics } from "effect-redis-sessions"
 * import { Effect, Metric } from "effect"
 *
 * const logins = Effect.map(Metric.value(SessionMetrics.sessions.regenerated), (state) => state.count)
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const sessions = byTag("sessions_lifecycle", "Sessions by what happened to them", "event", [
  "created",
  "regenerated",
  "invalidated",
  "revoked",
  "expired_on_read"
])

/**
 * Session cookies that verified, by whether the verification was remembered (`hit`) or the MAC was computed
 * (`miss`: a cookie new to this process).
 *
 * @example
 * ```ts
 * import { SessionMetrics } from "effect-redis-sessions"
 * import { Effect, Metric } from "effect"
 *
 * const hits = Effect.map(Metric.value(SessionMetrics.cookieCache.hit), (state) => state.count)
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const cookieCache = byTag("sessions_cookie_cache", "Session cookie verifications by cache result", "result", [
  "hit",
  "miss"
])

/**
 * How long Redis took to answer, in milliseconds, by `operation` (the store operation or script name: `load`,
 * `create`, `commit`, …), failures included.
 *
 * @example
 * ```ts
 * import { SessionMetrics } from "effect-redis-sessions"
 * import { Effect, Metric } from "effect"
 *
 * const loadLatency = Metric.value(SessionMetrics.redisLatency.pipe(Metric.tagged("operation", "load")))
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const redisLatency = Metric.histogram(latency.name, latency.boundaries, latency.description)

/**
 * Lifecycle events that did not reach a `SessionEvents` subscriber because it was `capacity` events behind.
 *
 * @example
 * ```ts
 * import { SessionMetrics } from "effect-redis-sessions"
 * import { Effect, Metric } from "effect"
 *
 * const dropped = Effect.map(Metric.value(SessionMetrics.eventsDropped), (state) => state.count)
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const eventsDropped = Metric.counter("sessions_events_dropped", {
  description: "Session events a slow subscriber missed",
  incremental: true
})
