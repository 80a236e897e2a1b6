/**
 * The Redis implementation of {@link SessionStore.SessionStore}: one hash per session, one script
 * (one round trip) per operation, every script on a single key so it runs unchanged on Redis Cluster.
 *
 * Hash layout: session key `k` is stored in field `.k` (encoded value); meta fields are `c` (created,
 * epoch ms), `t` (idle timeout, s), `a` (absolute deadline, epoch ms, optional), `p` (principal, optional),
 * `l` (last time the TTL was extended, epoch ms) and `s` (size in bytes of all keys and values, kept up to
 * date by every write so the `max_size` check costs O(changed keys)).
 *
 * A principal's index is a hash `field = session storage key, value = created`, whose TTL is kept at least
 * as long as its longest-lived session; ended sessions are pruned when the index is read.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as RedisClient from "./RedisClient.js"
import { SessionConflict, SessionTooLarge } from "./SessionError.js"
import {
  type Changes,
  type CommitResult,
  type IndexRenewal,
  lifetime,
  MAX_TIMEOUT,
  SessionStore,
  sizeOf,
  type StoredSession
} from "./SessionStore.js"

const FIELD = "."

/**
 * Lua shared by COMMIT and TOUCH, run after the TTL of `key` was set to `ttl` at `now`: when the session is
 * bound and now outlives the time its principal's index is kept for (`x`), records a new time (twice the
 * remaining life) and returns it so the caller renews the index; the same rule as
 * `SessionStore.indexRenewalTime`.
 */
const RENEW = `
local principal = redis.call('HGET', key, 'p')
if principal then
  local expiry = tonumber(redis.call('HGET', key, 'x') or '0') or 0
  if now + ttl > expiry then
    local renewed = now + 2 * ttl
    redis.call('HSET', key, 'x', string.format('%d', renewed))
    return {1, principal, redis.call('HGET', key, 'c'), renewed}
  end
end
return {1}`

/** Read-only, so it also runs on replicas and while writes are paused. */
const LOAD = RedisClient.script(`#!lua flags=no-writes
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return false end
if kind ~= 'hash' then return 0 end
return {redis.call('PTTL', KEYS[1]), redis.call('HGETALL', KEYS[1])}`)

/**
 * ARGV: ttl ms, created, timeout, absolute deadline or '', size, principal or '', now, index expiry or '',
 * then field/value pairs.
 */
const CREATE = RedisClient.script(`
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then return 0 end
redis.call('HSET', key, 'c', ARGV[2], 't', ARGV[3], 's', ARGV[5], 'l', ARGV[7])
if ARGV[4] ~= '' then redis.call('HSET', key, 'a', ARGV[4]) end
if ARGV[6] ~= '' then redis.call('HSET', key, 'p', ARGV[6], 'x', ARGV[8]) end
for i = 9, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', key, ARGV[1])
return 1`)

/**
 * ARGV: now, clear (0/1), new timeout or '', max size, strict (0/1), new principal or '', its index expiry,
 * then the number of set fields and
 * (field, value[, expected]) for each, then the number of removed fields and (field[, expected]) for each.
 * `expected` is '-' for "was absent" or '+' followed by the value read.
 * Returns {1[, principal, created, index expiry]} committed (see RENEW), {0} gone, {-1, field} conflict,
 * {-2, size} too large. Nothing is written unless it returns {1, ...}.
 */
const COMMIT = RedisClient.script(
  `
local key = KEYS[1]
if redis.call('TYPE', key)['ok'] ~= 'hash' then return {0} end
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
local i = 8
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
if ARGV[6] ~= '' then redis.call('HSET', key, 'p', ARGV[6], 'x', ARGV[7]) end
redis.call('PEXPIRE', key, string.format('%d', ttl))` + RENEW
)

/** ARGV: ttl ms, now. Returns {} for a missing session, otherwise as RENEW. */
const TOUCH = RedisClient.script(
  `
local key, ttl, now = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('PEXPIRE', key, ttl) == 0 then return {} end
redis.call('HSET', key, 'l', now)` + RENEW
)

/** ARGV: session key, created, ttl ms. */
const INDEX = RedisClient.script(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1`)

/** The optional renewal part of a COMMIT or TOUCH reply. */
const renewalOf = (reply: ReadonlyArray<unknown>): IndexRenewal | undefined =>
  reply.length === 4
    ? { principal: String(reply[1]), created: Number(reply[2]), until: Number(reply[3]) }
    : undefined

const parseNumber = (value: string | undefined) => {
  const n = value === undefined ? NaN : Number(value)
  return Number.isFinite(n) ? n : undefined
}

/** A LOAD reply as a stored session, or why it is unreadable. */
const decode = (reply: unknown): StoredSession | string => {
  if (!Array.isArray(reply) || reply.length !== 2 || !Array.isArray(reply[1])) return "not a hash"
  const [ttl, flat] = reply as [number, Array<string>]
  const fields = new Map<string, string>()
  const meta = new Map<string, string>()
  for (let i = 0; i < flat.length; i += 2) {
    const field = flat[i]!
    if (field.startsWith(FIELD)) fields.set(field.slice(1), flat[i + 1]!)
    else meta.set(field, flat[i + 1]!)
  }
  const created = parseNumber(meta.get("c"))
  const timeout = parseNumber(meta.get("t"))
  const absoluteDeadline = meta.has("a") ? parseNumber(meta.get("a")) : undefined
  const lastSeen = meta.has("l") ? parseNumber(meta.get("l")) : created
  const indexExpiry = meta.has("x") ? parseNumber(meta.get("x")) : undefined
  if (
    created === undefined || timeout === undefined || timeout < 1 || timeout > MAX_TIMEOUT ||
    lastSeen === undefined || (meta.has("a") && absoluteDeadline === undefined) ||
    (meta.has("s") && parseNumber(meta.get("s")) === undefined)
  ) return "bad meta fields"
  return { fields, created, timeout, absoluteDeadline, principal: meta.get("p"), lastSeen, indexExpiry, ttl }
}

const expectation = (value: string | undefined) => value === undefined ? "-" : "+" + value

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
 *   Effect.map(RedisSessionStore.make, (store) => ({
 *     ...store,
 *     remove: (key: string) => Effect.tap(store.remove(key), (existed) => Effect.logInfo("session deleted", existed))
 *   }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function*() {
  const redis = yield* RedisClient.RedisClient

  const unreadable = (key: string, why: string) =>
    Effect.as(
      Effect.logWarning(`Unreadable session record ignored: ${why}`).pipe(Effect.annotateLogs({ key })),
      Option.none()
    )

  const load = (key: string) =>
    Effect.flatMap(redis.eval("load", LOAD, key, []), (reply) => {
      if (reply === null) return Effect.succeedNone
      const decoded = decode(reply)
      return typeof decoded === "string" ? unreadable(key, decoded) : Effect.succeedSome(decoded)
    })

  const commitArgs = (now: number, changes: Changes, maxSize: number): Array<string | number> => {
    const strict = changes.expected !== undefined
    const args: Array<string | number> = [
      now,
      changes.clear ? 1 : 0,
      changes.timeout ?? "",
      maxSize,
      strict ? 1 : 0,
      changes.principal ?? "",
      changes.indexExpiry ?? "",
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

  return SessionStore.of({
    load,
    create: (key, session, maxSize) =>
      Effect.gen(function*() {
        const size = sizeOf(session.fields)
        if (size > maxSize) return yield* new SessionTooLarge({ size, maxSize })
        const now = yield* Clock.currentTimeMillis
        const args: Array<string | number> = [
          lifetime(now, session.timeout, session.absoluteDeadline),
          session.created,
          session.timeout,
          session.absoluteDeadline ?? "",
          size,
          session.principal ?? "",
          now,
          session.indexExpiry ?? ""
        ]
        for (const [k, v] of session.fields) args.push(FIELD + k, v)
        return (yield* redis.eval("create", CREATE, key, args)) === 1
      }),
    commit: (key, changes, maxSize) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const reply = (yield* redis.eval("commit", COMMIT, key, commitArgs(now, changes, maxSize))) as Array<unknown>
        switch (reply[0]) {
          case 1:
            return { _tag: "Committed", renewal: renewalOf(reply) } as CommitResult
          case -1:
            return yield* new SessionConflict({ key: String(reply[1]).slice(FIELD.length) })
          case -2:
            return yield* new SessionTooLarge({ size: Number(reply[1]), maxSize })
          default:
            return { _tag: "Gone" } as CommitResult
        }
      }),
    remove: (key) => Effect.map(redis.run("remove", (c) => c.del(key)), (n) => n > 0),
    touch: (key, ttl) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) =>
          Effect.map(
            redis.eval("touch", TOUCH, key, [Math.max(1, Math.round(ttl)), now]),
            (reply) => renewalOf(reply as Array<unknown>)
          )
      ),
    index: (indexKey, sessionKey, created, ttl) =>
      Effect.asVoid(redis.eval("index", INDEX, indexKey, [sessionKey, created, Math.max(1, Math.round(ttl))])),
    confirm: redis.confirmWrites,
    indexed: (indexKey) =>
      Effect.map(
        redis.run("indexed", (c) => c.hgetall(indexKey)),
        (members) => new Map(Object.entries(members).map(([key, created]) => [key, Number(created)]))
      ),
    unindex: (indexKey, sessionKeys) =>
      sessionKeys.length === 0
        ? Effect.void
        : Effect.asVoid(redis.run("unindex", (c) => c.hdel(indexKey, ...sessionKeys)))
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
 * const StoreLive = RedisSessionStore.layer.pipe(
 *   Layer.provide(RedisClient.layer({ url: Redacted.make("redis://127.0.0.1:6379") }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<SessionStore, never, RedisClient.RedisClient> = Layer.effect(SessionStore, make)
