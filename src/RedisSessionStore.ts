/**
 * The Redis implementation of {@link SessionStore.SessionStore}: one hash per session, one script (one
 * round trip) per operation, every script on the keys of one slot so it runs unchanged on Redis Cluster.
 *
 * It alone knows how sessions sit in Redis. The key of a session is the prefix followed by the SHA-256 of
 * its id, so the bearer credential never reaches Redis. Hash layout: session key `k` is stored in field
 * `.k` (encoded value); meta fields are `c` (created, epoch ms), `t` (idle timeout, s), `a` (absolute
 * deadline, epoch ms, optional), `p` (principal, optional), `x` (until when the principal's index is kept
 * alive for it, epoch ms), `u` (last authentication, epoch ms, optional), `m` (`1` for a remember-me session),
 * `g` and `n` (the user agent and network of the client that created it, with `record_client`), `r` (when its
 * id was issued, epoch ms),
 * `l` (last time the TTL was extended, epoch ms) and `s` (size in bytes of all keys and values, kept up to
 * date by every write so the `max_size` check costs O(changed keys)).
 *
 * A principal's index is a hash `field = session digest, value = created` under the hash tag of the
 * principal's digest; its TTL is kept at least as long as its longest-lived session, and ended sessions
 * are pruned when it is read. Logins, logouts, bindings and revocations wait for replicas (`WAIT`) when
 * the client is configured to.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import type * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { Cluster, type Redis } from "ioredis"
import { digest, indexKey, sessionKey } from "./internal/keys.js"
import { byAge, type IndexedSession, overLimit } from "./internal/principalIndex.js"
import { slotOf } from "./internal/slot.js"
import { lifetime, MAX_TIMEOUT, sizeOf } from "./internal/storage.js"
import * as RedisClient from "./RedisClient.js"
import * as SessionConfig from "./SessionConfig.js"
import { type RedisError, SessionConflict, SessionStoreError, SessionTooLarge } from "./SessionError.js"
import {
  type Changes,
  type CommitResult,
  type Limits,
  type NewSession,
  type ReindexProgress,
  type RemovalProgress,
  type RenewResult,
  SessionStore,
  type StoredSession
} from "./SessionStore.js"

const FIELD = "."

/** Keys of the store, after the prefix: a session's digest, or a principal's index. */
const sessionName = /^[0-9a-f]{64}$/
const indexName = /^principal:\{[0-9a-f]{64}\}$/

/**
 * Lua shared by COMMIT and TOUCH, run after the TTL of `key` was set to `ttl` at `now`: when the session is
 * bound and now outlives the time its principal's index is kept for (`x`), records a new time (twice the
 * remaining life) and returns {principal, created, new time} so the store renews the index; `{}` otherwise.
 */
const RENEW = `
local function renew(key, now, ttl)
  local principal = redis.call('HGET', key, 'p')
  if not principal then return {} end
  local expiry = tonumber(redis.call('HGET', key, 'x') or '0') or 0
  if now + ttl <= expiry then return {} end
  local renewed = string.format('%d', now + 2 * ttl)
  redis.call('HSET', key, 'x', renewed)
  return {principal, redis.call('HGET', key, 'c'), renewed}
end
`

/**
 * Lua shared by CREATE and REPLACE. ARGV: ttl ms, created, timeout, absolute deadline or '', size,
 * principal or '', now, index expiry or '', last authentication or '', remember-me ('1' or ''), user agent
 * or '', network or '', then field/value pairs from ARGV[from]. 1 if created, 0 if the key exists.
 */
const CREATE_SESSION = `
local function create(key, from)
  if redis.call('EXISTS', key) == 1 then return 0 end
  redis.call('HSET', key, 'c', ARGV[2], 't', ARGV[3], 's', ARGV[5], 'l', ARGV[7], 'r', ARGV[7])
  if ARGV[4] ~= '' then redis.call('HSET', key, 'a', ARGV[4]) end
  if ARGV[6] ~= '' then redis.call('HSET', key, 'p', ARGV[6], 'x', ARGV[8]) end
  if ARGV[9] ~= '' then redis.call('HSET', key, 'u', ARGV[9]) end
  if ARGV[10] == '1' then redis.call('HSET', key, 'm', '1') end
  if ARGV[11] ~= '' then redis.call('HSET', key, 'g', ARGV[11]) end
  if ARGV[12] ~= '' then redis.call('HSET', key, 'n', ARGV[12]) end
  for i = from, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', key, ARGV[1])
  return 1
end
`

/** Lua shared by RETIRE and REPLACE: deletes a session; {1, its principal or ''} if it existed, {0} otherwise. */
const RETIRE_SESSION = `
local function retire(key)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'none' then return {0} end
  local principal = kind == 'hash' and redis.call('HGET', key, 'p') or ''
  redis.call('DEL', key)
  return {1, principal or ''}
end
`

/**
 * Lua shared by FORWARD and RENEW_ID: turns a session into a forward to the session of digest `target` for
 * `grace` ms (a hash holding only `f`); {1, its principal or ''} if it existed, {0} otherwise.
 */
const FORWARD_SESSION = `
local function forward(key, target, grace)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'none' then return {0} end
  local principal = kind == 'hash' and redis.call('HGET', key, 'p') or ''
  redis.call('DEL', key)
  redis.call('HSET', key, 'f', target)
  redis.call('PEXPIRE', key, grace)
  return {1, principal or ''}
end
`

/** Read-only, so it also runs on replicas and while writes are paused. A forward answers {pttl, {'f', target}}. */
const LOAD = RedisClient.script(`#!lua flags=no-writes
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return false end
if kind ~= 'hash' then return 0 end
return {redis.call('PTTL', KEYS[1]), redis.call('HGETALL', KEYS[1])}`)

const CREATE = RedisClient.script(CREATE_SESSION + "return {create(KEYS[1], 13)}")

/**
 * Creates KEYS[1] and, only if it was created, deletes KEYS[2] (same ARGV as CREATE). Returns {0} when
 * nothing happened, {1} or {1, 0} when the replaced session was already gone, {1, 1, its principal or ''}.
 */
const REPLACE = RedisClient.script(
  CREATE_SESSION + RETIRE_SESSION + `
if create(KEYS[1], 13) == 0 then return {0} end
local retired = retire(KEYS[2])
return {1, retired[1], retired[2]}`
)

/**
 * Renews a session's id: KEYS[1] (the session) is copied whole to KEYS[2] with `r` = now and the same TTL, then
 * becomes a forward to it. ARGV: now, the new session's digest, grace ms. Returns {1, principal or '', created,
 * ttl} renewed, {0} gone, {2} new key taken, {3} already a forward.
 */
const RENEW_ID = RedisClient.script(
  FORWARD_SESSION + `
local old, new = KEYS[1], KEYS[2]
if redis.call('TYPE', old)['ok'] ~= 'hash' then return {0} end
if redis.call('HEXISTS', old, 'f') == 1 then return {3} end
if redis.call('EXISTS', new) == 1 then return {2} end
local ttl = redis.call('PTTL', old)
if ttl <= 0 then return {0} end
local fields = redis.call('HGETALL', old)
for i = 1, #fields, 2 do redis.call('HSET', new, fields[i], fields[i + 1]) end
redis.call('HSET', new, 'r', ARGV[1])
redis.call('PEXPIRE', new, ttl)
local created = redis.call('HGET', old, 'c')
local forwarded = forward(old, ARGV[2], ARGV[3])
return {1, forwarded[2], created, ttl}`
)

/**
 * The steps of a renewal on a Cluster whose two keys are in different slots. PUT: KEYS[1] gets the field/value
 * pairs of ARGV[3..] and `r` = ARGV[1], with a TTL of ARGV[2] ms, unless it exists ({0} then, {1} done).
 */
const PUT = RedisClient.script(`
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'r', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1}`)

/** KEYS[1] becomes a forward (ARGV: the new digest, grace ms) if it is still a session: {1, principal} or {0}. */
const FORWARD = RedisClient.script(
  FORWARD_SESSION + `
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' or redis.call('HEXISTS', KEYS[1], 'f') == 1 then return {0} end
return forward(KEYS[1], ARGV[1], ARGV[2])`
)

/** A forward is deleted and answers {2, target}: the caller retires the session it forwards to. */
const RETIRE = RedisClient.script(
  RETIRE_SESSION + `
local target = redis.call('TYPE', KEYS[1])['ok'] == 'hash' and redis.call('HGET', KEYS[1], 'f')
if target then
  redis.call('DEL', KEYS[1])
  return {2, target}
end
return retire(KEYS[1])`
)

/**
 * ARGV: now, clear (0/1), new timeout or '', max size, strict (0/1), new principal or '', new last
 * authentication or '', remember-me ('1' on, '0' off, '' unchanged), then the number of set fields and (field, value[, expected]) for each, then the number of removed fields and
 * (field[, expected]) for each. `expected` is '-' for "was absent" or '+' followed by the value read.
 * Returns {1, previous principal or '', then RENEW's reply} committed, {0} gone, {-1, field} conflict,
 * {-2, size} too large, {2, target} for a forward (commit to the session of that digest instead). Nothing is
 * written unless it returns {1, ...}.
 */
const COMMIT = RedisClient.script(
  RENEW + `
local key = KEYS[1]
if redis.call('TYPE', key)['ok'] ~= 'hash' then return {0} end
local target = redis.call('HGET', key, 'f')
if target then return {2, target} end
local now, clear, timeout, maxSize, strict = tonumber(ARGV[1]), ARGV[2] == '1', ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1'
local function unchanged(field, expected)
  local current = redis.call('HGET', key, field)
  if current == false then return expected == '-' end
  return expected == '+' .. current
end
local function stored(field)
  if clear then return nil end
  local value = redis.call('HGET', key, field)
  if value == false then return nil end
  return value
end
local storedSize = tonumber(redis.call('HGET', key, 's') or '0')
local seconds = tonumber(timeout ~= '' and timeout or redis.call('HGET', key, 't'))
local deadlineText = redis.call('HGET', key, 'a')
local deadline = deadlineText and tonumber(deadlineText)
if storedSize == nil or seconds == nil or seconds < 1 or seconds > ${MAX_TIMEOUT} or (deadlineText and deadline == nil) then
  return {0}
end
local ttl = seconds * 1000
if deadline then ttl = math.min(ttl, deadline - now) end
if ttl <= 0 then
  redis.call('DEL', key)
  return {0}
end
local size = clear and 0 or storedSize
local i = 9
local sets, removes = {}, {}
for n = 1, tonumber(ARGV[i]) do
  local field, value = ARGV[i + 1], ARGV[i + 2]
  i = i + 2
  if strict then
    i = i + 1
    if not unchanged(field, ARGV[i]) then return {-1, field} end
  end
  local old = stored(field)
  if old then size = size - #field + 1 - #old end
  size = size + #field - 1 + #value
  sets[#sets + 1] = field
  sets[#sets + 1] = value
end
i = i + 1
for n = 1, tonumber(ARGV[i]) do
  local field = ARGV[i + 1]
  i = i + 1
  if strict then
    i = i + 1
    if not unchanged(field, ARGV[i]) then return {-1, field} end
  end
  local old = stored(field)
  if old then size = size - #field + 1 - #old end
  removes[#removes + 1] = field
end
if size > maxSize then return {-2, size} end
if clear then
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 1) == '.' then redis.call('HDEL', key, field) end
  end
end
for j = 1, #sets, 2 do redis.call('HSET', key, sets[j], sets[j + 1]) end
for _, field in ipairs(removes) do redis.call('HDEL', key, field) end
redis.call('HSET', key, 's', size, 'l', ARGV[1])
if timeout ~= '' then redis.call('HSET', key, 't', timeout) end
if ARGV[7] ~= '' then redis.call('HSET', key, 'u', ARGV[7]) end
if ARGV[8] == '1' then redis.call('HSET', key, 'm', '1') elseif ARGV[8] == '0' then redis.call('HDEL', key, 'm') end
local previous = ''
if ARGV[6] ~= '' then
  previous = redis.call('HGET', key, 'p') or ''
  -- a new binding renews the new principal's index at once
  if previous ~= ARGV[6] then redis.call('HSET', key, 'p', ARGV[6], 'x', '0') end
end
redis.call('PEXPIRE', key, string.format('%d', ttl))
local renewal = renew(key, now, ttl)
return {1, previous, renewal[1], renewal[2], renewal[3]}`
)

/** ARGV: ttl ms, now. Returns RENEW's reply ({} also for a missing session, and a forward, left as it is). */
const TOUCH = RedisClient.script(
  RENEW + `
local key, ttl, now = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('HEXISTS', key, 'f') == 1 then return {} end
if redis.call('PEXPIRE', key, ttl) == 0 then return {} end
redis.call('HSET', key, 'l', now)
return renew(key, now, ttl)`
)

/** ARGV: session digest, created, ttl ms. */
const INDEX = RedisClient.script(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1`)

const parseNumber = (value: string | undefined) => {
  const n = value === undefined ? NaN : Number(value)
  return Number.isFinite(n) ? n : undefined
}

/** A renewed id within its grace: the digest of the session it forwards to. */
interface Forward {
  readonly forward: string
}

/** A LOAD reply as a stored session, a forward, or why it is unreadable. */
const decode = (reply: unknown): StoredSession | Forward | string => {
  if (!Array.isArray(reply) || reply.length !== 2 || !Array.isArray(reply[1])) return "not a hash"
  const [ttl, flat] = reply as [number, Array<string>]
  const fields = new Map<string, string>()
  let c, t, a, l, s, p, u, m, g, n, r: string | undefined
  for (let i = 0; i < flat.length; i += 2) {
    const field = flat[i]!
    const value = flat[i + 1]!
    if (field.startsWith(FIELD)) fields.set(field.slice(1), value)
    else if (field === "c") c = value
    else if (field === "t") t = value
    else if (field === "a") a = value
    else if (field === "l") l = value
    else if (field === "s") s = value
    else if (field === "p") p = value
    else if (field === "u") u = value
    else if (field === "m") m = value
    else if (field === "g") g = value
    else if (field === "n") n = value
    else if (field === "r") r = value
    else if (field === "f") return { forward: value }
  }
  const created = parseNumber(c)
  const timeout = parseNumber(t)
  const absoluteDeadline = parseNumber(a)
  const lastSeen = l === undefined ? created : parseNumber(l)
  const authenticated = parseNumber(u)
  if (
    created === undefined || timeout === undefined || timeout < 1 || timeout > MAX_TIMEOUT ||
    lastSeen === undefined || (a !== undefined && absoluteDeadline === undefined) ||
    (s !== undefined && parseNumber(s) === undefined) || (u !== undefined && authenticated === undefined)
  ) return "bad meta fields"
  return {
    fields,
    created,
    timeout,
    absoluteDeadline,
    principal: p,
    authenticated,
    persistent: m === "1",
    client: g === undefined && n === undefined ? undefined : { userAgent: g, network: n },
    issued: parseNumber(r) ?? created,
    lastSeen,
    ttl
  }
}

const expectation = (value: string | undefined) => value === undefined ? "-" : "+" + value

const commitArgs = (now: number, changes: Changes, maxSize: number): Array<string | number> => {
  const strict = changes.expected !== undefined
  const args: Array<string | number> = [
    now,
    changes.clear ? 1 : 0,
    changes.timeout ?? "",
    maxSize,
    strict ? 1 : 0,
    changes.principal ?? "",
    changes.authenticated ?? "",
    changes.persistent === undefined ? "" : changes.persistent ? 1 : 0,
    changes.set.size
  ]
  for (const [k, v] of changes.set) {
    args.push(FIELD + k, v)
    if (strict) args.push(expectation(changes.expected!.get(k)))
  }
  args.push(changes.remove.length)
  for (const k of changes.remove) {
    args.push(FIELD + k)
    if (strict) args.push(expectation(changes.expected!.get(k)))
  }
  return args
}

const createArgs = (now: number, session: NewSession, size: number): Array<string | number> => {
  const ttl = lifetime(now, session.timeout, session.absoluteDeadline)
  const args: Array<string | number> = [
    ttl,
    session.created,
    session.timeout,
    session.absoluteDeadline ?? "",
    size,
    session.principal ?? "",
    now,
    session.principal === undefined ? "" : now + 2 * ttl,
    session.authenticated ?? "",
    session.persistent === true ? 1 : "",
    session.client?.userAgent ?? "",
    session.client?.network ?? ""
  ]
  for (const [k, v] of session.fields) args.push(FIELD + k, v)
  return args
}

/** The Redis client's failure as the store-neutral error; the client's error stays in `cause`. */
const storeError = (error: RedisError): SessionStoreError =>
  new SessionStoreError({
    reason: error.reason === "Timeout" || error.reason === "Replication" ? error.reason : "Unavailable",
    operation: error.operation,
    cause: error
  })

/**
 * Options of the Redis store.
 *
 * @example
 * ```ts
 * import { RedisSessionStore } from "effect-redis-sessions"
 *
 * const options: RedisSessionStore.Options = { prefix: "myapp:session:" }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Prepended to every key the store writes. Default `""`. */
  readonly prefix?: string | undefined
}

/**
 * Builds the Redis store on the {@link RedisClient.RedisClient} in context.
 *
 * @example
 * ```ts
 * import { RedisSessionStore, SessionStore } from "effect-redis-sessions"
 * import { Effect, Layer } from "effect"
 *
 * const AuditedStore = Layer.effect(
 *   SessionStore.SessionStore,
 *   Effect.map(RedisSessionStore.make({ prefix: "app:" }), (store) => ({
 *     ...store,
 *     remove: (id: string) => Effect.tap(store.remove(id), (existed) => Effect.logInfo("session deleted", existed))
 *   }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const redis = yield* RedisClient.RedisClient
  const prefix = options.prefix ?? ""
  const keyOf = (id: string) => sessionKey(prefix, id)
  const cluster = redis.client instanceof Cluster

  const unreadable = (why: string) =>
    Effect.as(Effect.logWarning(`Unreadable session record ignored: ${why}`), Option.none())

  /** Loads a session; `follow`: through a renewed id's forward (one hop), marking it `forwarded`. */
  const loadKey = (key: string, follow = true): Effect.Effect<Option.Option<StoredSession>, RedisError> =>
    Effect.flatMap(redis.eval("load", LOAD, [key], []), (reply) => {
      if (reply === null) return Effect.succeedNone
      const decoded = decode(reply)
      if (typeof decoded === "string") return unreadable(decoded)
      if (!("forward" in decoded)) return Effect.succeedSome(decoded)
      if (!follow || !sessionName.test(decoded.forward)) return Effect.succeedNone
      return Effect.map(
        loadKey(prefix + decoded.forward, false),
        Option.map((session): StoredSession => ({ ...session, forwarded: true }))
      )
    })

  const index = (principal: string, handle: string, created: number, until: number, now: number) =>
    redis.eval("index", INDEX, [indexKey(prefix, principal)], [handle, created, Math.max(1, Math.round(until - now))])

  const unindex = (principal: string, handles: ReadonlyArray<string>) =>
    handles.length === 0 || principal === ""
      ? Effect.void
      : Effect.asVoid(redis.run("unindex", (c) => c.hdel(indexKey(prefix, principal), ...handles)))

  /** Renews an index as a COMMIT or TOUCH asked for (`[principal, created, until]`). */
  const renewIndex = (handle: string, renewal: ReadonlyArray<unknown>, now: number) =>
    renewal.length === 3 && renewal[0] !== null
      ? Effect.asVoid(index(String(renewal[0]), handle, Number(renewal[1]), Number(renewal[2]), now))
      : Effect.void

  /** Indexes written by 0.1 name sessions by their whole key (prefix + digest) instead of the digest. */
  const handleOf = (member: string) =>
    prefix !== "" && member.length === prefix.length + 64 && member.startsWith(prefix)
      ? member.slice(prefix.length)
      : member

  const list = (principal: string, current?: string): Effect.Effect<Array<IndexedSession>, RedisError> =>
    Effect.gen(function*() {
      const currentHandle = current === undefined ? undefined : digest(current)
      const index = indexKey(prefix, principal)
      const members = yield* redis.run("indexed", (c) => c.hgetall(index))
      const loaded = yield* Effect.forEach(
        Object.keys(members),
        (member) => Effect.map(loadKey(prefix + handleOf(member)), (session) => [member, session] as const),
        { concurrency: 16 }
      )
      const live: Array<IndexedSession> = []
      const stale: Array<string> = []
      const renamed: Array<string> = []
      for (const [member, session] of loaded) {
        const handle = handleOf(member)
        if (Option.isNone(session) || session.value.principal !== principal) {
          stale.push(member)
          continue
        }
        const { client, created, lastSeen } = session.value
        live.push({ handle, created, lastSeen, client, current: handle === currentHandle })
        if (handle !== member) {
          stale.push(member)
          renamed.push(handle, String(session.value.created))
        }
      }
      if (renamed.length > 0) yield* redis.run("index", (c) => c.hset(index, ...renamed))
      yield* unindex(principal, stale)
      return live.sort(byAge)
    })

  /** Deletes sessions by handle and drops them from the principal's index; how many existed. */
  const retire = (principal: string, handles: ReadonlyArray<string>) =>
    Effect.flatMap(
      Effect.forEach(handles, (handle) => {
        const key = prefix + handle
        return Effect.tap(redis.eval("retire", RETIRE, [key], []), () => redis.confirmWrites(key))
      }, { concurrency: 16 }),
      (replies) =>
        Effect.as(
          unindex(principal, handles),
          replies.filter((reply) => (reply as Array<unknown>)[0] === 1).length
        )
    )

  /** After `handle` was bound to `principal`: revokes the principal's oldest sessions beyond the limit. */
  const enforceLimit = (principal: string, handle: string, limits: Limits) =>
    limits.maxSessionsPerPrincipal === undefined
      ? Effect.void
      : Effect.flatMap(list(principal), (sessions) => {
        const doomed = overLimit(sessions, limits.maxSessionsPerPrincipal!, handle)
        return doomed.length === 0 ? Effect.void : Effect.asVoid(retire(principal, doomed))
      })

  /** Creates `key`, then deletes `replaced` only if that worked: one script where both keys share a node. */
  const createReplacing = (key: string, args: Array<string | number>, replaced: string) => {
    if (!cluster || slotOf(key) === slotOf(replaced)) {
      return Effect.map(redis.eval("replace", REPLACE, [key, replaced], args), (reply) => reply as Array<unknown>)
    }
    return Effect.flatMap(redis.eval("create", CREATE, [key], args), (created) =>
      (created as Array<unknown>)[0] === 1
        ? Effect.map(redis.eval("retire", RETIRE, [replaced], []), (retired) => [1, ...(retired as Array<unknown>)])
        : Effect.succeed([0]))
  }

  /**
   * RENEW_ID's reply, in three steps on a Cluster whose keys are in different slots: read the session, PUT its
   * copy, then FORWARD the old key if it is still a session (else the copy is deleted again). A commit to the
   * old key between the read and the forward is not in the copy.
   */
  const renewAcrossSlots = (old: string, key: string, args: ReadonlyArray<string | number>) =>
    Effect.gen(function*() {
      const reply = yield* redis.eval("load", LOAD, [old], [])
      if (!Array.isArray(reply)) return [0]
      const [ttl, flat] = reply as [number, Array<string>]
      const field = (name: string) => {
        for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1]
        return undefined
      }
      if (field("f") !== undefined) return [3]
      if (ttl <= 0) return [0]
      const put = (yield* redis.eval("put", PUT, [key], [args[0]!, ttl, ...flat])) as Array<unknown>
      if (put[0] !== 1) return [2]
      const forwarded = (yield* redis.eval("forward", FORWARD, [old], [args[1]!, args[2]!])) as Array<unknown>
      if (forwarded[0] !== 1) {
        yield* redis.run("unlink", (c) => c.unlink(key))
        return [0]
      }
      return [1, forwarded[1], field("c"), ttl]
    })

  const renew = (id: string, newId: string, grace: number): Effect.Effect<RenewResult, RedisError> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const old = keyOf(id)
      const key = keyOf(newId)
      const args = [now, digest(newId), Math.max(1, Math.round(grace))]
      const renewing = !cluster || slotOf(key) === slotOf(old)
        ? Effect.map(redis.eval("renew", RENEW_ID, [old, key], args), (reply) => reply as Array<unknown>)
        : renewAcrossSlots(old, key, args)
      return Effect.flatMap(renewing, (reply): Effect.Effect<RenewResult, RedisError> => {
        switch (reply[0]) {
          case 0:
            return Effect.succeed("Gone")
          case 2:
            return Effect.succeed("Taken")
          case 3:
            return Effect.succeed("AlreadyRenewed")
        }
        const principal = String(reply[1])
        const confirmed = Effect.as(redis.confirmWrites(old), "Renewed" as const)
        if (principal === "") return confirmed
        const moved = Effect.zipRight(
          unindex(principal, [digest(id)]),
          index(principal, digest(newId), Number(reply[2]), now + 2 * Number(reply[3]), now)
        )
        return Effect.zipRight(moved, confirmed)
      })
    })

  /** After a bound session was stored: indexes it and applies the per-principal limit. */
  const bound = (principal: string, handle: string, created: number, until: number, limits: Limits, now: number) =>
    Effect.zipRight(index(principal, handle, created, until, now), enforceLimit(principal, handle, limits))

  const create = (
    id: string,
    session: NewSession,
    limits: Limits,
    replaces: string | undefined
  ): Effect.Effect<boolean, RedisError | SessionTooLarge> => {
    const size = sizeOf(session.fields)
    if (size > limits.maxSize) return Effect.fail(new SessionTooLarge({ size, maxSize: limits.maxSize }))
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const key = keyOf(id)
      const args = createArgs(now, session, size)
      const written = replaces === undefined
        ? Effect.map(redis.eval("create", CREATE, [key], args), (reply) => (reply as Array<unknown>)[0] === 1)
        : Effect.flatMap(createReplacing(key, args, keyOf(replaces)), ([created, existed, principal]) => {
          if (created !== 1) return Effect.succeed(false)
          const replaced = keyOf(replaces)
          // on a Cluster the two keys may live on two masters: each must reach its replicas
          const confirmed = Effect.as(
            cluster && slotOf(key) !== slotOf(replaced)
              ? Effect.zipRight(redis.confirmWrites(key), redis.confirmWrites(replaced))
              : redis.confirmWrites(replaced),
            true
          )
          return existed === 1
            ? Effect.zipRight(unindex(String(principal), [digest(replaces)]), confirmed)
            : confirmed
        })
      if (session.principal === undefined) return written
      const principal = session.principal
      return Effect.tap(written, (created) => {
        if (!created) return Effect.void
        const indexed = bound(principal, digest(id), session.created, Number(args[7]), limits, now)
        return replaces === undefined ? Effect.zipRight(indexed, redis.confirmWrites(key)) : indexed
      })
    })
  }

  /** `target`: the digest of the session a renewed id forwards to, when the commit is sent on to it. */
  const commit = (
    id: string,
    changes: Changes,
    limits: Limits,
    target?: string
  ): Effect.Effect<CommitResult, RedisError | SessionConflict | SessionTooLarge> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const handle = target ?? digest(id)
      const key = prefix + handle
      const args = commitArgs(now, changes, limits.maxSize)
      return Effect.flatMap(redis.eval("commit", COMMIT, [key], args), (result): Effect.Effect<
        CommitResult,
        RedisError | SessionConflict | SessionTooLarge
      > => {
        const reply = result as Array<unknown>
        switch (reply[0]) {
          case 1:
            break
          case -1:
            return Effect.fail(new SessionConflict({ key: String(reply[1]).slice(FIELD.length) }))
          case -2:
            return Effect.fail(new SessionTooLarge({ size: Number(reply[1]), maxSize: limits.maxSize }))
          case 2:
            // a renewed id within its grace: the commit goes to the session it forwards to, once
            return sessionName.test(String(reply[1])) && target === undefined
              ? Effect.map(
                commit(id, changes, limits, String(reply[1])),
                (result): CommitResult => result === "Committed" ? "Forwarded" : result
              )
              : Effect.succeed<CommitResult>("Gone")
          default:
            return Effect.succeed<CommitResult>("Gone")
        }
        const previous = String(reply[1])
        const rebound = changes.principal !== undefined && changes.principal !== previous
        if (reply.length < 5 && !rebound) return Effect.succeed<CommitResult>("Committed")
        const renewed = renewIndex(handle, reply.slice(2), now)
        if (!rebound) return Effect.as(renewed, "Committed" as const)
        return renewed.pipe(
          Effect.zipRight(unindex(previous, [handle])),
          Effect.zipRight(enforceLimit(changes.principal!, handle, limits)),
          Effect.zipRight(redis.confirmWrites(key)),
          Effect.as("Committed" as const)
        )
      })
    })

  /** Deletes the session of `key` (whose digest is `handle`); through a forward, the session it forwards to too. */
  const removeKey = (key: string, handle: string, follow: boolean): Effect.Effect<boolean, RedisError> =>
    Effect.flatMap(redis.eval("retire", RETIRE, [key], []), (reply) => {
      const [existed, principal] = reply as Array<unknown>
      if (existed === 2) {
        const target = String(principal)
        return follow && sessionName.test(target) ? removeKey(prefix + target, target, false) : Effect.succeed(false)
      }
      const confirmed = redis.confirmWrites(key)
      if (existed !== 1 || principal === "") return Effect.as(confirmed, existed === 1)
      return Effect.as(Effect.zipRight(unindex(String(principal), [handle]), confirmed), true)
    })

  const remove = (id: string) => removeKey(keyOf(id), digest(id), true)

  const touch = (id: string, ttl: number) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.flatMap(
        redis.eval("touch", TOUCH, [keyOf(id)], [Math.max(1, Math.round(ttl)), now]),
        (renewal) => renewIndex(digest(id), renewal as Array<unknown>, now)
      ))

  const revoke = (principal: string, handles: ReadonlyArray<string>) =>
    Effect.flatMap(list(principal), (sessions) => {
      const members = new Set(sessions.map((s) => s.handle))
      return retire(principal, handles.filter((handle) => members.has(handle)))
    })

  const pattern = prefix.replace(/[*?[\]\\]/g, "\\$&") + "*"

  /** The keys of one SCAN batch that are sessions and principal indexes. */
  interface Batch {
    readonly scanned: number
    readonly sessions: ReadonlyArray<string>
    readonly indexes: ReadonlyArray<string>
  }

  /**
   * Walks every session and index key (`SCAN` on every master), a batch at a time, running `step` on each
   * batch and emitting the totals `step` keeps.
   */
  const walk = <P>(
    batchSize: number,
    initial: P,
    step: (batch: Batch, totals: P) => Effect.Effect<P, RedisError>
  ): Stream.Stream<P, RedisError> =>
    Stream.unwrap(Effect.sync(() => {
      const nodes: ReadonlyArray<Redis> = redis.client instanceof Cluster
        ? redis.client.nodes("master")
        : [redis.client]
      return Stream.unfoldEffect({ node: 0, cursor: "0", totals: initial }, (state) => {
        const node = nodes[state.node]
        if (node === undefined) return Effect.succeedNone
        return Effect.gen(function*() {
          const [next, keys] = yield* redis.run(
            "scan",
            () => node.scan(state.cursor, "MATCH", pattern, "COUNT", batchSize, "TYPE", "hash")
          )
          const batch: Batch = {
            scanned: keys.length,
            sessions: keys.filter((key) => sessionName.test(key.slice(prefix.length))),
            indexes: keys.filter((key) => indexName.test(key.slice(prefix.length)))
          }
          const totals = yield* step(batch, state.totals)
          const done = next === "0"
          return Option.some([totals, { node: done ? state.node + 1 : state.node, cursor: next, totals }] as const)
        })
      })
    }))

  const removeAll = (batchSize: number) =>
    walk<RemovalProgress>(batchSize, { scanned: 0, sessions: 0, indexes: 0 }, (batch, totals) => {
      const doomed = [...batch.sessions, ...batch.indexes]
      const progress: RemovalProgress = {
        scanned: totals.scanned + batch.scanned,
        sessions: totals.sessions + batch.sessions.length,
        indexes: totals.indexes + batch.indexes.length
      }
      if (doomed.length === 0) return Effect.succeed(progress)
      // on a Cluster the keys of one node lie in many slots: one UNLINK each
      const unlinked = cluster
        ? Effect.forEach(doomed, (key) => redis.run("unlink", (c) => c.unlink(key)), { concurrency: 16, discard: true })
        : redis.run("unlink", (c) => c.unlink(...doomed))
      return Effect.as(unlinked, progress)
    })

  const reindex = (batchSize: number) =>
    walk<ReindexProgress>(
      batchSize,
      { scanned: 0, sessions: 0, bound: 0 },
      (batch, totals) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.map(
            Effect.forEach(batch.sessions, (key) =>
              Effect.flatMap(loadKey(key, false), (loaded) => {
                if (Option.isNone(loaded) || loaded.value.principal === undefined) return Effect.succeed(0)
                const { created, principal, ttl } = loaded.value
                return Effect.as(index(principal, key.slice(prefix.length), created, now + 2 * ttl, now), 1)
              }), { concurrency: 16 }),
            (bound) => ({
              scanned: totals.scanned + batch.scanned,
              sessions: totals.sessions + batch.sessions.length,
              bound: totals.bound + bound.reduce((a, b) => a + b, 0)
            })
          ))
    )

  return SessionStore.of({
    load: (id) => Effect.mapError(loadKey(keyOf(id)), storeError),
    create: (id, session, limits, replaces) =>
      Effect.catchTag(create(id, session, limits, replaces), "RedisError", (e) => Effect.fail(storeError(e))),
    renew: (id, newId, grace) => Effect.mapError(renew(id, newId, grace), storeError),
    commit: (id, changes, limits) =>
      Effect.catchTag(commit(id, changes, limits), "RedisError", (e) => Effect.fail(storeError(e))),
    remove: (id) => Effect.mapError(remove(id), storeError),
    touch: (id, ttl) => Effect.mapError(touch(id, ttl), storeError),
    list: (principal, current) => Effect.mapError(list(principal, current), storeError),
    revoke: (principal, handles) => Effect.mapError(revoke(principal, handles), storeError),
    removeAll: (batchSize) => Stream.mapError(removeAll(batchSize), storeError),
    reindex: (batchSize) => Stream.mapError(reindex(batchSize), storeError)
  })
})

/**
 * The Redis session store; needs a {@link RedisClient.RedisClient}.
 *
 * @example
 * ```ts
 * import { RedisClient, RedisSessionStore } from "effect-redis-sessions"
 * import { Layer, Redacted } from "effect"
 *
 * const StoreLive = RedisSessionStore.layer({ prefix: "app:" }).pipe(
 *   Layer.provide(RedisClient.layer({ url: Redacted.make("redis://127.0.0.1:6379") }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<SessionStore, never, RedisClient.RedisClient> =>
  Layer.effect(SessionStore, make(options))

/**
 * The Redis session store and its client, from Effect `Config`: the prefix and the connection settings of
 * `SessionConfig.config` (`REDIS_SESSIONS_PREFIX`, `REDIS_SESSIONS_URL`, …), or of another settings `Config`.
 *
 * @example
 * ```ts
 * import { HttpSession, RedisSessionStore, SessionConfig } from "effect-redis-sessions"
 * import { Layer } from "effect"
 *
 * // an HttpApi whose sessions live in Redis, every setting read from the environment
 * const SessionApiLive = HttpSession.layerHttpApi.pipe(
 *   Layer.provide([SessionConfig.layerConfig(), RedisSessionStore.layerConfig()])
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<SessionConfig.Settings> = SessionConfig.config
): Layer.Layer<SessionStore, ConfigError | RedisError> =>
  Layer.unwrapEffect(
    Effect.map(config, (settings) =>
      layer({ prefix: settings.session.prefix }).pipe(Layer.provide(RedisClient.layer(settings.redis))))
  )
