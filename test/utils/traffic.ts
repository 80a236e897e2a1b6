/**
 * Bounded HTTP traffic for fault tests (failover, resharding): simulated users, each a cookie-keeping
 * {@link Browser} that loops over read / increment / login requests, one request at a time, until told to
 * stop or a request-count or time bound is reached. Every request is recorded with its status and timing,
 * and every user checks that its counter moves exactly as its own successful requests say it should.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { inspect } from "node:util"
import { sessionKey } from "../../src/internal/keys.js"
import { Browser } from "./Browser.js"

/** One request of the traffic. `status` is 0 when the request itself failed (aborted after 10 s, reset). */
export interface Sample {
  readonly user: number
  readonly path: string
  /** Redis key of the session the request was sent with (undefined without a cookie). */
  readonly key: string | undefined
  readonly status: number
  readonly started: number
  readonly ended: number
  readonly error?: string | undefined
}

/** A counter value that contradicts the user's own successful requests (a lost or resurrected write). */
export interface Anomaly {
  readonly user: number
  readonly path: string
  readonly expected: number
  readonly actual: number
  readonly at: number
}

/** The Redis key of a session cookie `id.mac` (no prefix). */
export const keyOfCookie = (cookie: string): string => sessionKey("", cookie.slice(0, cookie.lastIndexOf(".")))

export { slotOf } from "../../src/internal/slot.js"

/** The library's default command timeout, in ms (setting `command_timeout = 1`). */
const COMMAND_TIMEOUT_MS = 1_000
/** Generous bound on one HTTP request: a request runs at most a few commands, each bounded by the timeout. */
export const REQUEST_BOUND_MS = COMMAND_TIMEOUT_MS + 3_000
/** Per fault test (reshard, failover, kill): every wait inside is bounded well below it. */
export const FAULT_TEST_TIMEOUT_MS = 60_000

/**
 * A simulated user: `/incr` mostly, `/read` every 4th request and `/login/<name>` (which regenerates the
 * session id, so the key moves) every `loginEvery`-th request. It knows its counter, two ways:
 *
 * - `anomalies`: after a success the next `/incr` must answer one more and `/read` the same. After a
 *   failure the value is unknown (a write that timed out may or may not have been applied) until the next
 *   success, so this only checks runs of successes.
 * - `lost`: the counter never goes below the highest value a successful request reported (`floor`), since
 *   a failed `/incr` or `/read` cannot lower it; going below means acknowledged writes were lost (for
 *   example written to a master that was then demoted), `expected - actual` of them. A failed login may
 *   legitimately lose the session (old id deleted, new cookie never delivered), so it resets the floor.
 */
export class User {
  readonly browser: Browser
  /** The counter as the last successful request reported it; undefined after a failure. */
  expected: number | undefined = 0
  /** The highest counter value acknowledged so far. */
  floor = 0
  readonly anomalies: Array<Anomaly> = []
  readonly lost: Array<Anomaly> = []
  readonly samples: Array<Sample> = []

  constructor(url: string, readonly id: number, readonly loginEvery = 20) {
    this.browser = new Browser(url)
  }

  get key(): string | undefined {
    return this.browser.cookie === undefined ? undefined : keyOfCookie(this.browser.cookie)
  }

  /** Sends one request and records it. */
  async request(path: string): Promise<Sample> {
    const key = this.key
    const started = Date.now()
    let sample: Sample
    try {
      const reply = await this.browser.get(path)
      sample = { user: this.id, path, key, status: reply.status, started, ended: Date.now() }
      this.check(path, reply.status, reply.body, sample.ended)
    } catch (error) {
      sample = { user: this.id, path, key, status: 0, started, ended: Date.now(), error: String(error) }
      this.check(path, 0, "", sample.ended)
    }
    this.samples.push(sample)
    return sample
  }

  /** The `iteration`-th request of the loop. */
  step(iteration: number): Promise<Sample> {
    const path = iteration % this.loginEvery === this.loginEvery - 1
      ? `/login/user-${this.id}`
      : iteration % 4 === 1
      ? "/read"
      : "/incr"
    return this.request(path)
  }

  private check(path: string, status: number, body: string, at: number): void {
    const login = path.startsWith("/login")
    if (status !== 200) {
      this.expected = undefined
      if (login) this.floor = 0
      return
    }
    if (login) return
    const actual = Number(body)
    const increment = path === "/incr" ? 1 : 0
    const expected = this.expected === undefined ? undefined : this.expected + increment
    if (expected !== undefined && actual !== expected) {
      this.anomalies.push({ user: this.id, path, expected, actual, at })
    }
    if (actual < this.floor + increment) {
      // recorded once per drop: the counter is then compared with its new value
      this.lost.push({ user: this.id, path, expected: this.floor + increment, actual, at })
      this.floor = actual
    }
    this.expected = actual
    this.floor = Math.max(this.floor, actual)
  }
}

export interface Traffic {
  /** Every request so far, in completion order. */
  readonly samples: ReadonlyArray<Sample>
  /** Asks every user to stop after its current request and resolves when all did. */
  stop(): Promise<ReadonlyArray<Sample>>
  /** Resolves when the traffic ended by itself (count or time bound) or after `stop()`. */
  readonly done: Promise<ReadonlyArray<Sample>>
}

/**
 * Runs `users` concurrently, each sending one request after the other, until `stop()`, `maxRequests`
 * requests in total or `maxDurationMs`, whichever comes first.
 */
export const startTraffic = (
  users: ReadonlyArray<User>,
  options: { readonly maxRequests: number; readonly maxDurationMs: number }
): Traffic => {
  const samples: Array<Sample> = []
  const deadline = Date.now() + options.maxDurationMs
  let stopped = false
  const loop = async (user: User) => {
    for (let i = 0; !stopped && samples.length < options.maxRequests && Date.now() < deadline; i++) {
      samples.push(await user.step(i))
    }
  }
  const done = Promise.all(users.map(loop)).then(() => samples)
  return {
    samples,
    done,
    stop: () => {
      stopped = true
      return done
    }
  }
}

export interface Summary {
  readonly total: number
  readonly ok: number
  readonly failed: number
  /** Request count by HTTP status (0: the request itself failed). */
  readonly statuses: Readonly<Record<number, number>>
  /** Start of the first failed request and end of the last one, epoch ms. */
  readonly firstFailure: number | undefined
  readonly lastFailure: number | undefined
  /** From the start of the first failed request to the end of the last one. */
  readonly errorWindowMs: number
  readonly maxLatencyMs: number
  readonly durationMs: number
}

export const summarize = (samples: ReadonlyArray<Sample>): Summary => {
  const statuses: Record<number, number> = {}
  let firstFailure: number | undefined
  let lastFailure: number | undefined
  let maxLatencyMs = 0
  for (const s of samples) {
    statuses[s.status] = (statuses[s.status] ?? 0) + 1
    maxLatencyMs = Math.max(maxLatencyMs, s.ended - s.started)
    if (s.status !== 200) {
      firstFailure = Math.min(firstFailure ?? s.started, s.started)
      lastFailure = Math.max(lastFailure ?? s.ended, s.ended)
    }
  }
  const ok = statuses[200] ?? 0
  const start = Math.min(...samples.map((s) => s.started))
  const end = Math.max(...samples.map((s) => s.ended))
  return {
    total: samples.length,
    ok,
    failed: samples.length - ok,
    statuses,
    firstFailure,
    lastFailure,
    errorWindowMs: firstFailure === undefined || lastFailure === undefined ? 0 : lastFailure - firstFailure,
    maxLatencyMs,
    durationMs: samples.length === 0 ? 0 : end - start
  }
}

/** One line for the lead to quote. */
export const describeSummary = (label: string, s: Summary): string =>
  `${label}: ${s.total} requests in ${s.durationMs} ms, ${s.ok} ok, ${s.failed} failed ` +
  `(statuses ${JSON.stringify(s.statuses)}), error window ${s.errorWindowMs} ms, max latency ${s.maxLatencyMs} ms`

/** Polls `probe` until it returns true; throws after `timeoutMs` naming `what`. */
export const waitUntil = async (what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<number> => {
  const started = Date.now()
  let last: unknown
  while (Date.now() - started < timeoutMs) {
    try {
      if (await probe()) return Date.now() - started
    } catch (error) {
      last = error
    }
    await sleep(100)
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? "" : `: ${String(last)}`}`)
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Every log line (all levels, Debug included) written by the effects run through `capture`, which log
 * nowhere else (fault tests log hundreds of expected 503s); `summary()` counts them by message.
 */
export interface LogCapture {
  readonly lines: Array<string>
  /** Line count by level and first message part, e.g. `{"ERROR Session commit failed; ...": 12}`. */
  readonly summary: () => Record<string, number>
  /** Runs `effect` (and every fiber it forks, e.g. a server) with the capturing logger only. */
  readonly capture: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

const show = (value: unknown): string =>
  typeof value === "string" ? value : value instanceof Error ? `${value.name}: ${value.message}` : inspect(value)

export const makeLogCapture = (): LogCapture => {
  const lines: Array<string> = []
  const heads: Record<string, number> = {}
  const logger = Logger.make(({ cause, logLevel, message }) => {
    const parts = Array.isArray(message) ? message.map(show) : [show(message)]
    const head = `${logLevel.label} ${parts[0] ?? ""}`
    heads[head] = (heads[head] ?? 0) + 1
    lines.push(`${logLevel.label} ${parts.join(" ")}${Cause.isEmpty(cause) ? "" : ` ${Cause.pretty(cause)}`}`)
  })
  return {
    lines,
    summary: () => ({ ...heads }),
    capture: (effect) =>
      effect.pipe(
        Effect.locally(FiberRef.currentLoggers, HashSet.make(logger)),
        Effect.locally(FiberRef.currentMinimumLogLevel, LogLevel.All)
      )
  }
}
