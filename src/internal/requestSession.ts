import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Codec } from "../Session.js"
import type { SessionOptions } from "../SessionConfig.js"
import {
  InvalidTimeout,
  type SessionConflict,
  SessionEncodeError,
  SessionNotFresh,
  type SessionStoreError,
  type SessionTooLarge
} from "../SessionError.js"
import type { SessionEventInput, SessionEventsService } from "../SessionEvents.js"
import * as SessionId from "../SessionId.js"
import { isSessionKey, type SessionKey } from "../SessionKey.js"
import * as SessionMetrics from "../SessionMetrics.js"
import type { Changes, Limits, SessionStore, StoredSession } from "../SessionStore.js"
import { clientOf } from "./client.js"
import { count, countEvent, countStoreError } from "./counting.js"
import { lifetime, MAX_TIMEOUT } from "./storage.js"

const REMOVED = Symbol("removed")
const passiveWrite = Effect.dieMessage("A passive request changed its session: Session.passive requests never write")
const CREATE_ATTEMPTS = 5
/** A touch is skipped while the TTL is within this share of the session's timeout. */
const TOUCH_SLACK = 0.05

/** What the request brought: whether a session cookie came, and the id of the one that verified. */
export interface Incoming {
  readonly presented: boolean
  readonly id: string | undefined
  /** The verified cookie was signed with an older secret. */
  readonly stale: boolean
}

/** What the commit did, for the HTTP layer to turn into a cookie. */
export type Outcome =
  /** Nothing to tell the client. */
  | { readonly _tag: "Unchanged" }
  /** The request's session no longer exists. */
  | { readonly _tag: "Ended" }
  /**
   * The session `id` lives on; `isNew`: its id is new; `renewed`: its life was extended; `persistent`: the
   * seconds a remember-me cookie should live (`undefined`: a cookie of the configured kind).
   */
  | {
    readonly _tag: "Live"
    readonly id: string
    readonly isNew: boolean
    readonly renewed: boolean
    readonly persistent: number | undefined
  }

const Unchanged: Outcome = { _tag: "Unchanged" }
const Ended: Outcome = { _tag: "Ended" }
const NoEvents: ReadonlyArray<SessionEventInput> = []
/** An empty map no one writes to: a new session's data, and a request's changes, until their first change. */
const Empty: ReadonlyMap<string, never> = new Map<string, never>()
const loadOutcomes = {
  Live: SessionMetrics.loads.live,
  Missing: SessionMetrics.loads.missing,
  Expired: SessionMetrics.loads.expired,
  Undecodable: SessionMetrics.loads.undecodable
} as const

/** What every request of one application shares. */
export interface Services {
  readonly options: SessionOptions
  /** `options.timeout` in seconds. */
  readonly timeout: number
  /** `options.absoluteTimeout` in milliseconds. */
  readonly absoluteTimeout: number | undefined
  readonly limits: Limits
  /** Id renewal (`renewal_interval`, `renewal_grace`), in milliseconds. */
  readonly renewal: { readonly interval: number; readonly grace: number } | undefined
  readonly store: SessionStore["Type"]
  readonly codec: Codec["Type"]
  readonly generate: SessionId.Generator["Type"]
  /** Reads the session cookie out of what the HTTP layer handed over (opaque here: the `Cookie` header). */
  readonly incoming: (source: string | undefined) => Incoming
  /** Where lifecycle events go; `undefined` when nobody listens. */
  readonly events: SessionEventsService | undefined
}

type Phase =
  /** A verified cookie whose session has not been read yet. */
  | "Unloaded"
  /** Read from the store, alive. */
  | "Existing"
  /** Created in this request, in memory until committed. */
  | "Fresh"
  /** Invalidated, and not used since. */
  | "Invalidated"

type Change = string | typeof REMOVED

type Verdict = "Live" | "Missing" | "Expired" | "Undecodable"

const keyName = (key: SessionKey<any, any> | string) => typeof key === "string" ? key : key.name

const hasValues = (changes: ReadonlyMap<string, Change>) => {
  for (const value of changes.values()) if (value !== REMOVED) return true
  return false
}

/**
 * The state of one request's session. Made for every request that may use it, but does nothing (not even
 * read the cookie) until the handler does. Every fiber of the request shares it; a read loads the session
 * at most once, however many fibers ask at the same time.
 */
export class RequestSession {
  /** Whether the handler used the session at all. */
  touched = false
  incoming: Incoming | undefined
  private phase: Phase = "Fresh"
  private sessionId: string | undefined
  private stored: StoredSession | undefined
  /** The current data, encoded; `undefined` until it is known (Unloaded, Invalidated, Fresh before use). */
  private current: ReadonlyMap<string, string> | undefined
  /** `current` is the loaded record's own map, or `Empty`: copied before the first change. */
  private shared = false
  private changes: ReadonlyMap<string, Change> = Empty
  private cleared = false
  private dirty = false
  private timeoutChange: number | undefined
  private created = 0
  private timeout: number
  private absoluteDeadline: number | undefined
  private principal: string | undefined
  private principalChange: string | undefined
  /** The principal the session was bound to when it was loaded. */
  private loadedPrincipal: string | undefined
  /** When the user last proved who they are, epoch milliseconds. */
  private authenticated: number | undefined
  private authenticatedChange: number | undefined
  /** Remember-me: the cookie outlives the browser session. */
  private persistent = false
  private persistentChange: boolean | undefined
  /** A passive request reads the session but neither writes it nor extends its life. */
  private passive = false
  /** Id of the session this one was regenerated from: deleted when, and only if, this one is stored. */
  private replaces: string | undefined
  /** A load is in flight. */
  private loading = false
  /** Made when a second fiber reads while the load is in flight; completed with the load. */
  private waiters: Deferred.Deferred<void, SessionStoreError> | undefined

  /**
   * `clock`: the clock of the fiber serving the request; `source`: what the HTTP layer hands over to read the
   * cookie from (the `Cookie` header); `client`: the `User-Agent` header and remote address, only when
   * `record_client` is on.
   */
  constructor(
    readonly services: Services,
    private readonly clock: Clock.Clock,
    private readonly source: string | undefined,
    private readonly client?: { readonly userAgent: string | undefined; readonly address: string | undefined }
  ) {
    this.timeout = services.timeout
  }

  // -------------------------------------------------------------------------
  // lifecycle
  // -------------------------------------------------------------------------

  /** Reads the cookie on first use. */
  private begin(): void {
    if (this.touched) return
    this.touched = true
    this.incoming = this.services.incoming(this.source)
    if (this.incoming.id !== undefined) {
      this.phase = "Unloaded"
      this.sessionId = this.incoming.id
    }
  }

  /** Starts a new, empty session, created at `now`. */
  private startFresh(now: number): void {
    this.phase = "Fresh"
    this.sessionId = undefined
    this.stored = undefined
    this.current = Empty
    this.shared = true
    this.changes = Empty
    this.cleared = false
    this.dirty = false
    this.timeoutChange = undefined
    this.principal = this.principalChange = this.loadedPrincipal = undefined
    this.authenticated = this.authenticatedChange = this.persistentChange = undefined
    this.persistent = false
    this.timeout = this.services.timeout
    this.created = now
    const absolute = this.services.absoluteTimeout
    this.absoluteDeadline = absolute === undefined ? undefined : now + absolute
  }

  private fresh(): Effect.Effect<void> {
    this.startFresh(this.now())
    return Effect.void
  }

  /** Epoch milliseconds on the clock of the fiber that serves the request (a `TestClock` in tests). */
  now(): number {
    return this.clock.unsafeCurrentTimeMillis()
  }

  /** Makes the data readable: loads an Unloaded session, starts a new one after invalidate or when none came. */
  ready(): Effect.Effect<void, SessionStoreError> {
    this.begin()
    if (this.current !== undefined) return Effect.void
    return this.phase === "Unloaded" ? this.load() : this.fresh()
  }

  /**
   * Loads the session once, then makes it readable: fibers that read while the load is in flight wait for it.
   */
  private load(): Effect.Effect<void, SessionStoreError> {
    if (this.loading) {
      this.waiters ??= Deferred.unsafeMake<void, SessionStoreError>(FiberId.none)
      return Effect.flatMap(Deferred.await(this.waiters), () => this.ready())
    }
    this.loading = true
    const id = this.sessionId!
    return Effect.matchCauseEffect(this.services.store.load(id), {
      onFailure: (cause) => {
        count(SessionMetrics.loads.error)
        countStoreError(Cause.squash(cause))
        this.settle(Effect.failCause(cause))
        return Effect.failCause(cause)
      },
      onSuccess: (loaded) => {
        const verdict = this.apply(id, loaded, this.now())
        if (verdict !== "Skipped") count(loadOutcomes[verdict])
        this.settle(Effect.void)
        // the request may have moved on meanwhile (invalidated it): then it starts afresh
        const readable = this.current === undefined ? this.ready() : Effect.void
        switch (verdict) {
          case "Undecodable":
            return Effect.zipRight(
              Effect.logWarning("Unreadable session record ignored: a value does not decode"),
              readable
            )
          case "Missing":
          case "Expired":
            return this.publishing([{ _tag: "ExpiredOnRead" }], readable)
          default:
            return readable
        }
      }
    })
  }

  /** Ends the load in flight and wakes the fibers waiting for it. */
  private settle(result: Effect.Effect<void, SessionStoreError>) {
    this.loading = false
    if (this.waiters !== undefined) Deferred.unsafeDone(this.waiters, result)
    this.waiters = undefined
  }

  /** Takes in a loaded session, unless the request moved on meanwhile (invalidated it); what it found. */
  private apply(id: string, loaded: Option.Option<StoredSession>, now: number): Verdict | "Skipped" {
    if (this.phase !== "Unloaded" || this.sessionId !== id) return "Skipped"
    const stored = Option.getOrUndefined(loaded)
    const verdict = stored === undefined ? "Missing" : this.check(stored, now)
    if (verdict !== "Live") {
      this.replaceEnded(now)
      return verdict
    }
    this.phase = "Existing"
    this.stored = stored
    this.created = stored!.created
    this.timeout = this.timeoutChange ?? stored!.timeout
    this.absoluteDeadline = stored!.absoluteDeadline
    this.loadedPrincipal = stored!.principal
    this.principal = this.principalChange ?? stored!.principal
    this.authenticated = this.authenticatedChange ?? stored!.authenticated
    this.persistent = this.persistentChange ?? stored!.persistent === true
    this.current = this.cleared ? Empty : stored!.fields
    this.shared = true
    for (const [k, v] of this.changes) applyChange(this.data(), k, v)
    return verdict
  }

  private check(stored: StoredSession, now: number): Verdict {
    if (stored.absoluteDeadline !== undefined && stored.absoluteDeadline <= now) return "Expired"
    try {
      for (const value of stored.fields.values()) this.services.codec.decode(value)
      return "Live"
    } catch {
      return "Undecodable"
    }
  }

  /**
   * The session turned out to be gone: starts a new one that keeps the values written blind meanwhile, and is
   * stored only if there are any (removals and clears of an ended session store nothing).
   */
  private replaceEnded(now: number): void {
    const { authenticatedChange, changes, persistentChange, principalChange, timeoutChange } = this
    this.startFresh(now)
    for (const [k, v] of changes) {
      if (v === REMOVED) continue
      this.data().set(k, v)
      this.record(k, v)
    }
    this.dirty = hasValues(changes)
    if (timeoutChange !== undefined) this.timeout = this.timeoutChange = timeoutChange
    if (principalChange !== undefined) this.principal = this.principalChange = principalChange
    if (authenticatedChange !== undefined) this.authenticated = this.authenticatedChange = authenticatedChange
    if (persistentChange !== undefined) this.persistent = this.persistentChange = persistentChange
  }

  /** Prepares a write: starts a new session after invalidate or when none came, never loads. */
  private writable(): Effect.Effect<void> {
    this.begin()
    if (this.passive) return passiveWrite
    return this.current === undefined && this.phase !== "Unloaded" ? this.fresh() : Effect.void
  }

  /** The current data, to change: the loaded record's map is copied first (its values stay what was read). */
  private data(): Map<string, string> {
    if (this.shared) {
      this.current = new Map(this.current)
      this.shared = false
    }
    return this.current as Map<string, string>
  }

  /** Notes a change to write at commit. */
  private record(key: string, value: Change) {
    if (this.changes === Empty) this.changes = new Map()
    ;(this.changes as Map<string, Change>).set(key, value)
  }

  private write(key: string, value: Change) {
    this.record(key, value)
    this.dirty = true
    if (this.current !== undefined) applyChange(this.data(), key, value)
  }

  private encode(key: SessionKey<any, any> | string, value: unknown): Effect.Effect<string, SessionEncodeError> {
    const name = keyName(key)
    const json = typeof key === "string" ? Effect.succeed(value) : Schema.encodeUnknown(key.schema)(value)
    return json.pipe(
      Effect.flatMap((json) => Effect.try(() => this.services.codec.encode(json))),
      Effect.mapError((cause) => new SessionEncodeError({ key: name, cause }))
    )
  }

  /** A stored value of a typed key through its schema. */
  private decode(key: SessionKey<any, any>, encoded: string | undefined): Effect.Effect<Option.Option<any>> {
    if (encoded === undefined) return Effect.succeedNone
    return Schema.decodeUnknown(key.schema)(this.services.codec.decode(encoded)).pipe(
      Effect.asSome,
      Effect.catchAll((error) =>
        Effect.as(
          Effect.logWarning("Stored session value does not match its schema; read as absent").pipe(
            Effect.annotateLogs({ key: key.name, error: error.message })
          ),
          Option.none()
        )
      )
    )
  }

  private decodeJson(encoded: string | undefined): Option.Option<unknown> {
    return encoded === undefined ? Option.none() : Option.some(this.services.codec.decode(encoded))
  }

  /** `f` once the data is readable: at once when it already is (a new session, every read after the first). */
  private readable<A, E>(f: () => Effect.Effect<A, E>): Effect.Effect<A, E | SessionStoreError> {
    const ready = this.ready()
    return this.current !== undefined ? f() : Effect.flatMap(ready, f)
  }

  private read<A>(f: (data: ReadonlyMap<string, string>) => A): Effect.Effect<A, SessionStoreError> {
    return this.readable(() => Effect.succeed(f(this.current!)))
  }

  // -------------------------------------------------------------------------
  // the operations of the Session service
  // -------------------------------------------------------------------------

  id(): Effect.Effect<string, SessionStoreError> {
    return Effect.flatMap(this.ready(), () => this.currentId())
  }
  isNew(): Effect.Effect<boolean, SessionStoreError> {
    return this.read(() => this.phase === "Fresh")
  }
  /** Epoch milliseconds. */
  createdAt(): Effect.Effect<number, SessionStoreError> {
    return this.read(() => this.created)
  }
  /** Seconds. */
  idleTimeout(): Effect.Effect<number, SessionStoreError> {
    return this.read(() => this.timeout)
  }
  get(key: SessionKey<any, any> | string): Effect.Effect<Option.Option<any>, SessionStoreError> {
    if (isSessionKey(key)) return this.readable(() => this.decode(key, this.current!.get(key.name)))
    return this.read((data) => this.decodeJson(data.get(key)))
  }
  set(key: SessionKey<any, any> | string, value: unknown): Effect.Effect<void, SessionEncodeError> {
    return Effect.flatMap(
      this.encode(key, value),
      (encoded) => Effect.map(this.writable(), () => this.write(keyName(key), encoded))
    )
  }
  remove(key: SessionKey<any, any> | string): Effect.Effect<void> {
    return Effect.map(this.writable(), () => {
      const name = keyName(key)
      if (this.current === undefined || this.current.has(name)) this.write(name, REMOVED)
    })
  }
  has(key: SessionKey<any, any> | string): Effect.Effect<boolean, SessionStoreError> {
    return this.read((data) => data.has(keyName(key)))
  }
  keys(): Effect.Effect<ReadonlyArray<string>, SessionStoreError> {
    return this.read((data) => Array.from(data.keys()))
  }
  values(): Effect.Effect<ReadonlyArray<unknown>, SessionStoreError> {
    return this.read((data) => Array.from(data.values(), (v) => this.services.codec.decode(v)))
  }
  entries(): Effect.Effect<ReadonlyArray<readonly [string, unknown]>, SessionStoreError> {
    return this.read((data) => Array.from(data, ([k, v]) => [k, this.services.codec.decode(v)] as const))
  }
  size(): Effect.Effect<number, SessionStoreError> {
    return this.read((data) => data.size)
  }
  clear(): Effect.Effect<void> {
    return Effect.map(this.writable(), () => {
      if (this.current !== undefined && this.current.size === 0 && !this.cleared) return
      this.cleared = true
      this.changes = Empty
      if (this.current !== undefined) this.current = Empty
      this.shared = true
      this.dirty = true
    })
  }
  pop(key: SessionKey<any, any> | string): Effect.Effect<Option.Option<any>, SessionStoreError> {
    return Effect.flatMap(this.ready(), () => {
      const name = keyName(key)
      const encoded = this.current!.get(name)
      if (encoded !== undefined && this.passive) return passiveWrite
      if (encoded !== undefined) this.write(name, REMOVED)
      return isSessionKey(key) ? this.decode(key, encoded) : Effect.succeed(this.decodeJson(encoded))
    })
  }
  changed(): Effect.Effect<void> {
    return Effect.map(this.writable(), () => void (this.dirty = true))
  }
  boundTo(): Effect.Effect<Option.Option<string>, SessionStoreError> {
    return this.read(() => Option.fromNullable(this.principal))
  }
  bind(principal: string): Effect.Effect<void> {
    if (principal === "") return Effect.dieMessage("Session.bind needs a non-empty principal")
    return Effect.map(this.reauthenticated(), () => {
      this.principal = this.principalChange = principal
    })
  }
  reauthenticated(): Effect.Effect<void> {
    return Effect.map(this.writable(), () => {
      this.authenticated = this.authenticatedChange = this.now()
      this.dirty = true
    })
  }
  /** Epoch milliseconds of the last authentication, if any. */
  authenticatedAt(): Effect.Effect<number | undefined, SessionStoreError> {
    return this.read(() => this.authenticated)
  }
  requireFresh(maxAge: Duration.Duration): Effect.Effect<void, SessionStoreError | SessionNotFresh> {
    return Effect.flatMap(this.ready(), () => {
      const at = this.authenticated
      return at !== undefined && this.now() - at <= Duration.toMillis(maxAge)
        ? Effect.void
        : Effect.fail(new SessionNotFresh({ maxAge: Duration.format(maxAge) }))
    })
  }
  /** Loads the session first: its cookie's life depends on its absolute deadline. */
  rememberMe(duration: Duration.DurationInput): Effect.Effect<void, InvalidTimeout | SessionStoreError> {
    if (this.passive) return passiveWrite
    return Effect.flatMap(validTimeout(duration), (seconds) =>
      Effect.map(this.ready(), () => {
        this.timeout = this.timeoutChange = seconds
        this.persistent = this.persistentChange = true
        this.dirty = true
      }))
  }
  /** The id of the stored session the request came with, if it is still its session (reads the cookie only). */
  storedId(): string | undefined {
    this.begin()
    return this.phase === "Unloaded" || this.phase === "Existing" ? this.sessionId : undefined
  }

  /** Marks the request passive; dies if it already changed the session. */
  markPassive(): Effect.Effect<void> {
    this.begin()
    if (this.dirty || this.replaces !== undefined) {
      return Effect.dieMessage("Session.passive came after the request changed its session")
    }
    this.passive = true
    return Effect.void
  }
  invalidate(): Effect.Effect<void, SessionStoreError> {
    this.begin()
    const doomed: Array<string> = []
    if (this.phase === "Unloaded" || this.phase === "Existing") doomed.push(this.sessionId!)
    if (this.replaces !== undefined) doomed.push(this.replaces)
    const { store } = this.services
    // one delete, or two (a session regenerated earlier in the request) sent together; no fiber for the usual one
    const removal = doomed.length === 2
      ? Effect.all([store.remove(doomed[0]!), store.remove(doomed[1]!)], { concurrency: 2, discard: true })
      : doomed.length === 1
      ? store.remove(doomed[0]!)
      : Effect.void
    const principal = this.principal
    return Effect.matchEffect(removal, {
      onFailure: (error) => {
        countStoreError(error)
        return Effect.fail(error)
      },
      onSuccess: () => {
        this.phase = "Invalidated"
        this.sessionId =
          this.stored =
          this.current =
          this.replaces =
            undefined
        this.changes = Empty
        this.cleared = this.dirty = false
        return doomed.length === 0
          ? Effect.void
          : this.published({ _tag: "Invalidated", principal: Option.fromNullable(principal) })
      }
    })
  }
  regenerate(): Effect.Effect<void, SessionStoreError> {
    if (this.passive) return passiveWrite
    return Effect.map(this.ready(), () => {
      if (this.phase === "Existing") {
        this.replaces = this.sessionId
        for (const [k, v] of this.current!) this.record(k, v)
        this.phase = "Fresh"
        this.stored = undefined
        this.dirty = true
      }
      this.sessionId = undefined
    })
  }
  adjustTimeout(timeout: Duration.DurationInput): Effect.Effect<void, InvalidTimeout> {
    return Effect.flatMap(validTimeout(timeout), (seconds) =>
      Effect.map(this.writable(), () => {
        this.timeout = this.timeoutChange = seconds
        this.dirty = true
      }))
  }

  /** Counts `event`, and publishes it when anybody listens. */
  private published(event: SessionEventInput): Effect.Effect<void> {
    countEvent(event)
    return this.services.events === undefined ? Effect.void : this.services.events.publish(event)
  }

  /** `effect`, then the `events` it led to: counted, and published when anybody listens. */
  private publishing<A, E>(events: ReadonlyArray<SessionEventInput>, effect: Effect.Effect<A, E>): Effect.Effect<A, E> {
    if (events.length === 0) return effect
    const bus = this.services.events
    return Effect.tap(effect, () => {
      for (const event of events) countEvent(event)
      return bus === undefined ? Effect.void : Effect.forEach(events, bus.publish, { discard: true })
    })
  }

  /** The `Bound` event of a commit that stores a new principal. */
  private rebinding(): ReadonlyArray<SessionEventInput> {
    const { principalChange, loadedPrincipal } = this
    if (principalChange === undefined || principalChange === loadedPrincipal) return NoEvents
    return [{ _tag: "Bound", principal: principalChange, previous: Option.fromNullable(loadedPrincipal) }]
  }

  private currentId(): Effect.Effect<string> {
    if (this.sessionId !== undefined) return Effect.succeed(this.sessionId)
    return Effect.map(this.services.generate(this.services.options.idEncoding), (id) => (this.sessionId = id))
  }

  // -------------------------------------------------------------------------
  // commit
  // -------------------------------------------------------------------------

  /** What became of the session when that needs no store call; `undefined` when it needs {@link commit}. */
  settled(failed: boolean): Outcome | undefined {
    switch (this.phase) {
      case "Unloaded":
        return this.dirty ? undefined : Unchanged
      case "Existing":
        return undefined
      case "Fresh":
        return this.storesFresh(failed) || this.replaces !== undefined ? undefined : Ended
      case "Invalidated":
        return Ended
    }
  }

  /** A session made in this request is stored when it holds something, unless the handler failed. */
  private storesFresh(failed: boolean): boolean {
    return this.dirty && (!failed || this.services.options.cookieOnException)
  }

  /**
   * Writes what the request changed (one store call) and says what became of the session.
   * `failed`: the handler failed (for `cookie_on_exception`).
   */
  commit(
    failed: boolean
  ): Effect.Effect<Outcome, SessionStoreError | SessionConflict | SessionTooLarge> {
    const settled = this.settled(failed)
    if (settled !== undefined) return Effect.succeed(settled)
    switch (this.phase) {
      case "Existing":
        if (this.services.renewal !== undefined && !this.passive && !failed && this.renewalDue(this.now())) {
          return this.renew(failed)
        }
        return this.dirty ? this.commitChanges(failed) : this.keepAlive()
      case "Fresh":
        return this.storesFresh(failed)
          ? this.createFresh()
          : Effect.as(this.services.store.remove(this.replaces!), Ended)
      default:
        return this.commitChanges(failed)
    }
  }

  /** Seconds a remember-me cookie should live from `now`: as long as the session. */
  private cookieLife(now: number): number | undefined {
    return this.persistent ? Math.floor(lifetime(now, this.timeout, this.absoluteDeadline) / 1000) : undefined
  }

  /** The outcome of a write that stored the session `id` and extended its life. */
  private live(id: string, isNew: boolean): Effect.Effect<Outcome> {
    return Effect.succeed({ _tag: "Live", id, isNew, renewed: true, persistent: this.cookieLife(this.now()) })
  }

  /** Whether the loaded session's id is older than `renewal_interval` (never when loaded through a forward). */
  private renewalDue(now: number): boolean {
    const stored = this.stored!
    return stored.forwarded !== true && now - (stored.issued ?? stored.created) >= this.services.renewal!.interval
  }

  /**
   * Commits what the request changed, then moves the session, as stored, to a new id; the old id reaches it for
   * the grace. Another request that renewed it first, or a session that ended, leaves the cookie as it is.
   */
  private renew(failed: boolean): Effect.Effect<Outcome, SessionStoreError | SessionConflict | SessionTooLarge> {
    const old = this.sessionId!
    const { grace } = this.services.renewal!
    const renewing = () => {
      this.sessionId = undefined
      return this.withNewId((id) =>
        Effect.flatMap(this.services.store.renew(old, id, grace), (result): Effect.Effect<Outcome | undefined> => {
          switch (result) {
            case "Renewed": {
              const renewed: SessionEventInput = { _tag: "Regenerated", principal: Option.fromNullable(this.principal) }
              return this.publishing([renewed], this.live(id, true))
            }
            case "Taken":
              return Effect.succeed(undefined)
            case "Gone":
              return Effect.succeed(Ended)
            case "AlreadyRenewed":
              return Effect.succeed(Unchanged)
          }
        })
      )
    }
    const committed = this.dirty ? this.commitChanges(failed) : Effect.succeed<Outcome>(Unchanged)
    return Effect.flatMap(committed, (outcome) => outcome._tag === "Ended" ? Effect.succeed(outcome) : renewing())
  }

  private keepAlive(): Effect.Effect<Outcome> {
    const stored = this.stored!
    const id = this.sessionId!
    if (stored.forwarded === true) return Effect.succeed(Unchanged)
    const now = this.now()
    const target = lifetime(now, stored.timeout, stored.absoluteDeadline)
    const slide = !this.passive && target - stored.ttl > stored.timeout * 1000 * TOUCH_SLACK
    const outcome: Outcome = { _tag: "Live", id, isNew: false, renewed: slide, persistent: this.cookieLife(now) }
    if (!slide) return Effect.succeed(outcome)
    return this.services.store.touch(id, target).pipe(
      Effect.catchAll((error) => Effect.logDebug("Session TTL refresh failed", error)),
      Effect.forkDaemon,
      Effect.as(outcome)
    )
  }

  private changeSet(): Changes {
    const set = new Map<string, string>()
    const remove: Array<string> = []
    for (const [k, v] of this.changes) {
      if (v === REMOVED) remove.push(k)
      else set.set(k, v)
    }
    const loaded = this.stored?.fields
    return {
      clear: this.cleared,
      set,
      remove,
      timeout: this.timeoutChange,
      principal: this.principalChange,
      authenticated: this.authenticatedChange,
      persistent: this.persistentChange,
      expected: this.services.options.strict && loaded !== undefined
        ? new Map(Array.from(this.changes.keys(), (k) => [k, loaded.get(k)]))
        : undefined
    }
  }

  private commitChanges(failed: boolean) {
    const id = this.sessionId!
    const committing = this.services.store.commit(id, this.changeSet(), this.services.limits)
    const committed = this.services.events === undefined ? committing : Effect.tapErrorTag(
      committing,
      "SessionConflict",
      () => this.publishing([{ _tag: "Conflict", principal: Option.fromNullable(this.principal) }], Effect.void)
    )
    return Effect.flatMap(committed, (result) => {
      if (result === "Committed") return this.publishing(this.rebinding(), this.live(id, false))
      // through a renewed id: the session lives on under its new id, whose cookie is not ours to send
      if (result === "Forwarded") return this.publishing(this.rebinding(), Effect.succeed(Unchanged))
      if (this.phase === "Existing") {
        return Effect.as(Effect.logWarning("Session ended while the request ran; its changes were dropped"), Ended)
      }
      // written without reading, to a session that had already ended
      this.replaceEnded(this.now())
      return this.commit(failed)
    })
  }

  private createFresh() {
    const fields = new Map<string, string>()
    for (const [k, v] of this.changes) if (v !== REMOVED) fields.set(k, v)
    const session = {
      fields,
      created: this.created,
      timeout: this.timeout,
      absoluteDeadline: this.absoluteDeadline,
      principal: this.principal,
      authenticated: this.authenticated,
      persistent: this.persistent,
      client: this.client === undefined ? undefined : clientOf(this.client.userAgent, this.client.address)
    }
    return this.withNewId((id) =>
      Effect.flatMap(this.services.store.create(id, session, this.services.limits, this.replaces), (created) => {
        if (!created) return Effect.succeed(undefined)
        const principal = Option.fromNullable(this.principal)
        return this.publishing(
          [
            this.replaces === undefined ? { _tag: "Created", principal } : { _tag: "Regenerated", principal },
            ...this.rebinding()
          ],
          this.live(id, true)
        )
      })
    )
  }

  /**
   * Stores the session under the request's new id: `store` tries one id and answers what became of the session,
   * or `undefined` when the id is taken, and another is drawn. A bad id, or ids that keep being taken, are defects.
   */
  private withNewId<E>(
    store: (id: string) => Effect.Effect<Outcome | undefined, E>,
    remaining = CREATE_ATTEMPTS
  ): Effect.Effect<Outcome, E> {
    return Effect.flatMap(this.currentId(), (id) => {
      if (!SessionId.isValid(id)) {
        return Effect.dieMessage("The session id generator returned an id that is empty, too long or not cookie-safe")
      }
      return Effect.flatMap(store(id), (outcome) => {
        if (outcome !== undefined) return Effect.succeed(outcome)
        if (remaining <= 1) {
          return Effect.dieMessage("The session id generator kept returning ids that are already in use")
        }
        this.sessionId = undefined
        return this.withNewId(store, remaining - 1)
      })
    })
  }
}

/** Whole seconds from 1 s to ten years, or `InvalidTimeout`. */
const validTimeout = (timeout: Duration.DurationInput): Effect.Effect<number, InvalidTimeout> => {
  const duration = Duration.decodeUnknown(timeout)
  const seconds = Option.isSome(duration) ? Duration.toSeconds(duration.value) : Number.NaN
  return Number.isInteger(seconds) && seconds >= 1 && seconds <= MAX_TIMEOUT
    ? Effect.succeed(seconds)
    : Effect.fail(
      new InvalidTimeout({
        timeout: Option.match(duration, { onNone: () => String(timeout), onSome: Duration.format })
      })
    )
}

const applyChange = (data: Map<string, string>, key: string, value: Change) => {
  if (value === REMOVED) data.delete(key)
  else data.set(key, value)
}
