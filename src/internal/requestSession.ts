import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { randomBytes, timingSafeEqual } from "node:crypto"
import type { Codec, Session } from "../Session.js"
import type { SessionOptions } from "../SessionConfig.js"
import {
  IdGenerationError,
  InvalidTimeout,
  type RedisError,
  type SessionConflict,
  SessionEncodeError,
  type SessionTooLarge
} from "../SessionError.js"
import * as SessionId from "../SessionId.js"
import { isSessionKey, type SessionKey } from "../SessionKey.js"
import {
  type Changes,
  type IndexRenewal,
  lifetime,
  MAX_TIMEOUT,
  type SessionStore,
  type StoredSession
} from "../SessionStore.js"
import * as PrincipalIndex from "./principalIndex.js"

const CSRF_KEY = "_csrft_"
const flashKey = (queue: string) => `_f_${queue}`
const REMOVED = Symbol("removed")
const CREATE_ATTEMPTS = 5
/** A touch is skipped while the TTL is within this share of the session's timeout. */
export const TOUCH_SLACK = 0.05

/** What the response must do with the cookie once the session is committed. */
export type CookieAction =
  | { readonly _tag: "None" }
  | { readonly _tag: "Set"; readonly value: string }
  | { readonly _tag: "Expire" }

const None: CookieAction = { _tag: "None" }
const Expire: CookieAction = { _tag: "Expire" }

type Phase =
  /** A verified cookie whose session has not been read yet. */
  | "Unloaded"
  /** Read from the store, alive. */
  | "Existing"
  /** Created in this request, in memory until committed. */
  | "Fresh"
  /** Invalidated, and not used since. */
  | "Invalidated"

export interface Services {
  readonly options: SessionOptions
  readonly verify: (cookie: string) => Option.Option<SessionId.Verified>
  readonly store: SessionStore["Type"]
  readonly codec: Codec["Type"]
  readonly generate: SessionId.Generator["Type"]
}

const keyName = (key: SessionKey<any, any> | string) => typeof key === "string" ? key : key.name

/**
 * The state of one request's session, and the `Session` service over it. Created for every request
 * but does nothing (not even verify the cookie) until the handler uses it.
 */
export class RequestSession {
  /** Whether the handler used the session at all. */
  touched = false
  private phase: Phase = "Fresh"
  private cookieChecked = false
  /** A session cookie came with the request (verified or not). */
  private presented = false
  /** The presented cookie was signed with an older secret. */
  private stale = false
  private sessionId: string | undefined
  private stored: StoredSession | undefined
  /** The current data, encoded; `undefined` while Unloaded. */
  private current: Map<string, string> | undefined
  private changes = new Map<string, string | typeof REMOVED>()
  private cleared = false
  private dirty = false
  private timeoutChange: number | undefined
  private created = 0
  private timeout: number
  private absoluteDeadline: number | undefined
  private principal: string | undefined
  private principalChange: string | undefined
  /** Storage key of a session this one was regenerated from, deleted at commit. */
  private retired: string | undefined

  constructor(
    private readonly services: Services,
    private readonly cookieHeader: string | undefined
  ) {
    this.timeout = services.options.timeout
  }

  // -------------------------------------------------------------------------
  // lifecycle
  // -------------------------------------------------------------------------

  /** Reads the cookie on first use: first value of the cookie name that verifies wins. */
  private checkCookie(): void {
    this.touched = true
    if (this.cookieChecked) return
    this.cookieChecked = true
    for (const value of cookieValues(this.cookieHeader, this.services.options.cookieName)) {
      this.presented = true
      const verified = this.services.verify(value)
      if (Option.isSome(verified)) {
        this.phase = "Unloaded"
        this.sessionId = verified.value.id
        this.stale = verified.value.stale
        return
      }
    }
  }

  private readonly startFresh = Effect.suspend(() => {
    this.phase = "Fresh"
    this.sessionId = undefined
    this.stored = undefined
    this.current = new Map()
    this.changes = new Map()
    this.cleared = false
    this.dirty = false
    this.timeoutChange = undefined
    this.principal = this.principalChange = undefined
    this.timeout = this.services.options.timeout
    return Effect.map(Clock.currentTimeMillis, (now) => {
      this.created = now
      const absolute = this.services.options.absoluteTimeout
      this.absoluteDeadline = absolute === undefined ? undefined : now + absolute * 1000
    })
  })

  /** Makes the data readable: loads an Unloaded session, starts a new one after invalidate. */
  private readonly ready: Effect.Effect<void, RedisError> = Effect.suspend(() => {
    this.checkCookie()
    if (this.phase === "Invalidated" || (this.phase === "Fresh" && this.current === undefined)) return this.startFresh
    if (this.phase !== "Unloaded") return Effect.void
    const key = SessionId.storageKey(this.services.options.prefix, this.sessionId!)
    return Effect.flatMap(this.services.store.load(key), (loaded) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const stored = Option.getOrUndefined(loaded)
        const verdict = stored === undefined ? "Missing" : this.check(stored, now)
        if (verdict !== "Live") {
          const pending = this.pendingChanges()
          const replace = Effect.map(this.startFresh, () => this.replay(pending))
          return verdict === "Undecodable"
            ? Effect.zipRight(Effect.logWarning("Unreadable session record ignored: a value does not decode"), replace)
            : replace
        }
        this.phase = "Existing"
        this.stored = stored
        this.created = stored!.created
        this.timeout = this.timeoutChange ?? stored!.timeout
        this.absoluteDeadline = stored!.absoluteDeadline
        this.principal = this.principalChange ?? stored!.principal
        this.current = new Map(this.cleared ? [] : stored!.fields)
        for (const [k, v] of this.changes) applyChange(this.current, k, v)
        return Effect.void
      }))
  })

  private check(stored: StoredSession, now: number): "Live" | "Expired" | "Undecodable" {
    if (stored.absoluteDeadline !== undefined && stored.absoluteDeadline <= now) return "Expired"
    try {
      for (const value of stored.fields.values()) this.services.codec.decode(value)
      return "Live"
    } catch {
      return "Undecodable"
    }
  }

  /** Changes made before the session turned out to be gone, to apply to its replacement. */
  private pendingChanges() {
    return {
      changes: this.changes,
      cleared: this.cleared,
      dirty: this.dirty,
      timeout: this.timeoutChange,
      principal: this.principalChange
    }
  }

  private replay(pending: ReturnType<RequestSession["pendingChanges"]>) {
    for (const [k, v] of pending.changes) {
      if (v === REMOVED) continue
      this.current!.set(k, v)
      this.changes.set(k, v)
    }
    this.dirty = pending.dirty
    if (pending.timeout !== undefined) this.timeout = this.timeoutChange = pending.timeout
    if (pending.principal !== undefined) this.principal = this.principalChange = pending.principal
  }

  /** Prepares a write: starts a new session after invalidate, never loads. */
  private writable(): Effect.Effect<void> {
    this.checkCookie()
    return this.phase === "Invalidated" || (this.phase === "Fresh" && this.current === undefined)
      ? this.startFresh
      : Effect.void
  }

  private write(key: string, value: string | typeof REMOVED) {
    this.changes.set(key, value)
    this.dirty = true
    if (this.current !== undefined) applyChange(this.current, key, value)
  }

  private encode(key: SessionKey<any, any> | string, value: unknown): Effect.Effect<string, SessionEncodeError> {
    const name = keyName(key)
    const json = typeof key === "string" ? Effect.succeed(value) : Schema.encodeUnknown(key.schema)(value)
    return json.pipe(
      Effect.flatMap((json) => Effect.try(() => this.services.codec.encode(json))),
      Effect.mapError((cause) => new SessionEncodeError({ key: name, cause }))
    )
  }

  private decode(key: SessionKey<any, any> | string, encoded: string | undefined): Effect.Effect<Option.Option<any>> {
    if (encoded === undefined) return Effect.succeedNone
    const json = this.services.codec.decode(encoded)
    if (!isSessionKey(key)) return Effect.succeedSome(json)
    return Schema.decodeUnknown(key.schema)(json).pipe(
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

  private read<A>(f: () => A): Effect.Effect<A, RedisError> {
    return Effect.map(this.ready, f)
  }

  // -------------------------------------------------------------------------
  // the Session service
  // -------------------------------------------------------------------------

  readonly service: Session["Type"] = {
    id: Effect.flatMap(this.ready, () => this.currentId()),
    isNew: this.read(() => this.phase === "Fresh"),
    created: this.read(() => this.created / 1000),
    timeout: this.read(() => this.timeout),
    get:
      ((key: SessionKey<any, any> | string) =>
        Effect.flatMap(this.ready, () => this.decode(key, this.current!.get(keyName(key))))) as Session["Type"]["get"],
    set: ((key: SessionKey<any, any> | string, value: unknown) =>
      Effect.flatMap(
        this.encode(key, value),
        (encoded) => Effect.map(this.writable(), () => this.write(keyName(key), encoded))
      )) as Session["Type"]["set"],
    remove: (key) =>
      Effect.map(this.writable(), () => {
        const name = keyName(key)
        if (this.current === undefined || this.current.has(name)) this.write(name, REMOVED)
      }),
    has: (key) => this.read(() => this.current!.has(keyName(key))),
    keys: this.read(() => Array.from(this.current!.keys())),
    values: this.read(() => Array.from(this.current!.values(), (v) => this.services.codec.decode(v))),
    entries: this.read(() => Array.from(this.current!, ([k, v]) => [k, this.services.codec.decode(v)] as const)),
    size: this.read(() => this.current!.size),
    clear: Effect.suspend(() =>
      Effect.map(this.writable(), () => {
        if (this.current !== undefined && this.current.size === 0 && !this.cleared) return
        this.cleared = true
        this.changes.clear()
        this.current?.clear()
        this.dirty = true
      })
    ),
    update: (values) => Effect.forEach(Object.entries(values), ([k, v]) => this.service.set(k, v), { discard: true }),
    pop: ((key: SessionKey<any, any> | string) =>
      Effect.flatMap(this.ready, () => {
        const name = keyName(key)
        const encoded = this.current!.get(name)
        if (encoded !== undefined) this.write(name, REMOVED)
        return this.decode(key, encoded)
      })) as Session["Type"]["pop"],
    setDefault:
      ((key: SessionKey<any, any> | string, value: unknown) =>
        Effect.flatMap(this.service.get(key as string), (existing) =>
          Option.isSome(existing)
            ? Effect.succeed(existing.value)
            : Effect.as(this.service.set(key as string, value), value))) as Session["Type"]["setDefault"],
    changed: Effect.suspend(() => Effect.map(this.writable(), () => void (this.dirty = true))),
    principal: this.read(() => Option.fromNullable(this.principal)),
    bind: (principal) =>
      principal === ""
        ? Effect.dieMessage("Session.bind needs a non-empty principal")
        : Effect.map(this.writable(), () => {
          this.principal = this.principalChange = principal
          this.dirty = true
        }),
    invalidate: Effect.suspend(() => {
      this.checkCookie()
      const doomed = [
        this.phase === "Unloaded" || this.phase === "Existing"
          ? SessionId.storageKey(this.services.options.prefix, this.sessionId!)
          : undefined,
        this.retired
      ].filter((key): key is string => key !== undefined)
      const { store } = this.services
      const principal = this.phase === "Existing" ? this.principal : undefined
      return Effect.forEach(
        doomed,
        (key) => Effect.all([store.remove(key), store.confirm(key), this.unindex(key, principal)], { discard: true }),
        { discard: true, concurrency: 2 }
      ).pipe(
        Effect.tap(() => {
          this.phase = "Invalidated"
          this.retired = undefined
          this.changes = new Map()
          this.dirty = false
        })
      )
    }),
    regenerate: Effect.flatMap(Effect.suspend(() => this.ready), () => {
      if (this.phase === "Existing") {
        this.retired = SessionId.storageKey(this.services.options.prefix, this.sessionId!)
        for (const [k, v] of this.current!) this.changes.set(k, v)
        this.phase = "Fresh"
        this.stored = undefined
        this.dirty = true
      }
      this.sessionId = undefined
      return Effect.void
    }),
    adjustTimeout: (seconds) =>
      Number.isInteger(seconds) && seconds >= 1 && seconds <= MAX_TIMEOUT
        ? Effect.map(this.writable(), () => {
          this.timeout = this.timeoutChange = seconds
          this.dirty = true
        })
        : Effect.fail(new InvalidTimeout({ timeout: seconds })),
    flash: (message, options) =>
      Effect.flatMap(this.service.peekFlash(options?.queue), (queue) => {
        if (options?.allowDuplicate === false && queue.some((m) => jsonEquals(m, message))) return Effect.void
        return this.service.set(flashKey(options?.queue ?? ""), [...queue, message])
      }),
    peekFlash: (queue = "") =>
      Effect.map(
        this.service.get(flashKey(queue)),
        (messages) => Option.match(messages, { onNone: () => [], onSome: (m) => (Array.isArray(m) ? m : []) })
      ),
    popFlash: (queue = "") =>
      Effect.map(
        this.service.pop(flashKey(queue)),
        (messages) => Option.match(messages, { onNone: () => [], onSome: (m) => (Array.isArray(m) ? m : []) })
      ),
    newCsrfToken: Effect.suspend(() => {
      const token = randomBytes(20).toString("hex")
      return Effect.as(Effect.orDie(this.service.set(CSRF_KEY, token)), token)
    }),
    getCsrfToken: Effect.flatMap(
      Effect.suspend(() => this.service.get(CSRF_KEY)),
      (token) =>
        Option.isSome(token) && typeof token.value === "string"
          ? Effect.succeed(token.value)
          : this.service.newCsrfToken
    ),
    verifyCsrfToken: (candidate) =>
      Effect.map(this.service.get(CSRF_KEY), (token) => {
        if (Option.isNone(token) || typeof token.value !== "string") return false
        const expected = Buffer.from(token.value)
        const given = Buffer.from(candidate)
        return expected.length === given.length && timingSafeEqual(expected, given)
      })
  }

  private currentId(): Effect.Effect<string> {
    if (this.sessionId !== undefined) return Effect.succeed(this.sessionId)
    return Effect.map(this.services.generate(this.services.options.idEncoding), (id) => (this.sessionId = id))
  }

  // -------------------------------------------------------------------------
  // commit
  // -------------------------------------------------------------------------

  /**
   * Writes what the request changed (one store call, two when a regenerated session replaces an old one)
   * and says what to do with the cookie. `failed`: the handler failed (for `cookie_on_exception`).
   */
  commit(
    failed: boolean
  ): Effect.Effect<CookieAction, RedisError | SessionConflict | SessionTooLarge | IdGenerationError> {
    if (!this.touched) return Effect.succeed(None)
    switch (this.phase) {
      case "Unloaded":
        return this.dirty ? this.commitChanges(failed) : Effect.succeed(None)
      case "Existing":
        return this.dirty ? this.commitChanges(failed) : this.keepAlive()
      case "Fresh":
        return this.dirty && (!failed || this.services.options.cookieOnException)
          ? this.createFresh()
          : Effect.as(this.retire(), this.presented ? Expire : None)
      case "Invalidated":
        return Effect.succeed(this.presented ? Expire : None)
    }
  }

  private retire(): Effect.Effect<void, RedisError> {
    const retired = this.retired
    return retired === undefined ? Effect.void : Effect.all([
      this.services.store.remove(retired),
      this.services.store.confirm(retired),
      this.unindex(retired, this.principal)
    ], { discard: true })
  }

  /** Drops an ended session from its principal's index now rather than at the next listing. */
  private unindex(key: string, principal: string | undefined): Effect.Effect<void, RedisError> {
    return principal === undefined
      ? Effect.void
      : this.services.store.unindex(SessionId.principalKey(this.services.options.prefix, principal), [key])
  }

  private cookieFor(id: string): CookieAction {
    return { _tag: "Set", value: SessionId.sign(id, this.services.options.secrets[0]) }
  }

  /** Re-sends the cookie of a live session when its signature is old or its Max-Age must slide. */
  private refreshCookie(slid: boolean): CookieAction {
    return this.stale || (slid && this.services.options.cookieMaxAge !== undefined)
      ? this.cookieFor(this.sessionId!)
      : None
  }

  private keepAlive(): Effect.Effect<CookieAction> {
    const stored = this.stored!
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const target = lifetime(now, stored.timeout, stored.absoluteDeadline)
      const slide = target - stored.ttl > stored.timeout * 1000 * TOUCH_SLACK
      if (!slide) return Effect.succeed(this.refreshCookie(false))
      const key = SessionId.storageKey(this.services.options.prefix, this.sessionId!)
      return this.services.store.touch(key, target).pipe(
        Effect.flatMap((renewal) => renewal === undefined ? Effect.void : this.index(key, renewal)),
        Effect.catchAll((error) => Effect.logDebug("Session TTL refresh failed", error)),
        Effect.forkDaemon,
        Effect.as(this.refreshCookie(true))
      )
    })
  }

  /** Until when a newly bound session keeps its principal's index alive: twice its life. */
  private newIndexExpiry(now: number): number | undefined {
    return this.principal === undefined ? undefined : now + 2 * lifetime(now, this.timeout, this.absoluteDeadline)
  }

  /** Keeps `key` in its principal's index until `until`; after a new binding, applies the per-principal limit. */
  private index(key: string, entry: IndexRenewal, bound = false): Effect.Effect<void, RedisError> {
    const { options, store } = this.services
    return Effect.flatMap(
      Clock.currentTimeMillis,
      (now) =>
        store.index(SessionId.principalKey(options.prefix, entry.principal), key, entry.created, entry.until - now)
    ).pipe(
      Effect.zipRight(
        bound && options.maxSessionsPerPrincipal !== undefined
          ? PrincipalIndex.enforceLimit(store, options.prefix, entry.principal, options.maxSessionsPerPrincipal, key)
          : Effect.void
      )
    )
  }

  private changeSet(now: number): Changes {
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
      indexExpiry: this.principalChange === undefined ? undefined : this.newIndexExpiry(now),
      expected: this.services.options.strict && loaded !== undefined
        ? new Map(Array.from(this.changes.keys(), (k) => [k, loaded.get(k)]))
        : undefined
    }
  }

  private commitChanges(failed: boolean) {
    const key = SessionId.storageKey(this.services.options.prefix, this.sessionId!)
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const changes = this.changeSet(now)
      return Effect.flatMap(this.services.store.commit(key, changes, this.services.options.maxSize), (result) => {
        if (result._tag === "Committed") {
          const bound = changes.principal === undefined ? undefined : {
            principal: changes.principal,
            created: this.created,
            until: changes.indexExpiry!
          }
          const entry = result.renewal ?? bound
          return Effect.as(
            Effect.zipRight(
              bound === undefined ? Effect.void : this.services.store.confirm(key),
              entry === undefined ? Effect.void : this.index(key, entry, bound !== undefined)
            ),
            this.refreshCookie(true)
          )
        }
        if (this.phase === "Existing") {
          return Effect.as(
            Effect.logWarning("Session ended while the request ran; its changes were dropped"),
            this.presented ? Expire : None
          )
        }
        // written without reading, to a session that had already ended: values written start a new session
        const pending = this.pendingChanges()
        if (!Array.from(pending.changes.values()).some((v) => v !== REMOVED)) {
          return Effect.succeed(this.presented ? Expire : None)
        }
        return Effect.flatMap(this.startFresh, () => {
          this.replay(pending)
          return this.commit(failed)
        })
      })
    })
  }

  private createFresh() {
    const attempt = (
      now: number,
      remaining: number
    ): Effect.Effect<CookieAction, RedisError | SessionTooLarge | IdGenerationError> =>
      Effect.flatMap(this.currentId(), (id) => {
        if (!SessionId.isValid(id)) return Effect.fail(new IdGenerationError({ reason: "InvalidId" }))
        const fields = new Map<string, string>()
        for (const [k, v] of this.changes) if (v !== REMOVED) fields.set(k, v)
        const session = {
          fields,
          created: this.created,
          timeout: this.timeout,
          absoluteDeadline: this.absoluteDeadline,
          principal: this.principal,
          indexExpiry: this.newIndexExpiry(now)
        }
        const key = SessionId.storageKey(this.services.options.prefix, id)
        return Effect.flatMap(this.services.store.create(key, session, this.services.options.maxSize), (created) => {
          if (created) {
            const confirm = this.retired === undefined && session.principal === undefined
              ? Effect.void
              : this.services.store.confirm(key)
            return Effect.as(
              Effect.zipRight(
                confirm,
                session.principal === undefined ? Effect.void : this.index(key, {
                  principal: session.principal,
                  created: session.created,
                  until: session.indexExpiry!
                }, true)
              ),
              this.cookieFor(id)
            )
          }
          if (remaining <= 1) return Effect.fail(new IdGenerationError({ reason: "Collision" }))
          this.sessionId = undefined
          return attempt(now, remaining - 1)
        })
      })
    return Effect.zipWith(
      Effect.flatMap(Clock.currentTimeMillis, (now) => attempt(now, CREATE_ATTEMPTS)),
      this.retire(),
      (action) => action,
      { concurrent: true }
    )
  }
}

const applyChange = (data: Map<string, string>, key: string, value: string | typeof REMOVED) => {
  if (value === REMOVED) data.delete(key)
  else data.set(key, value)
}

/** RFC 6265 §5.2 trims spaces and tabs only, not every Unicode white space like `String.trim`. */
const trimSpaces = (text: string) => text.replace(/^[ \t]+|[ \t]+$/g, "")

/** Every value of cookie `name` in a Cookie header, in order. */
const cookieValues = (header: string | undefined, name: string): Array<string> => {
  if (header === undefined || !header.includes(name)) return []
  const values: Array<string> = []
  for (const pair of header.split(";")) {
    const eq = pair.indexOf("=")
    if (eq === -1 || trimSpaces(pair.slice(0, eq)) !== name) continue
    let value = trimSpaces(pair.slice(eq + 1))
    if (value.startsWith("\"") && value.endsWith("\"") && value.length >= 2) value = value.slice(1, -1)
    values.push(value)
  }
  return values
}

const jsonEquals = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return ka.length === kb.length &&
    ka.every((k) => Object.hasOwn(b, k) && jsonEquals((a as any)[k], (b as any)[k]))
}

/** Builds the per-request session over the services of the application. */
export const makeRequestSession = (services: Services, cookieHeader: string | undefined) =>
  new RequestSession(services, cookieHeader)
