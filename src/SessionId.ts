/**
 * Session ids: generation (256 bits from a CSPRNG) and cookie signing and verification
 * (HMAC-SHA256, constant-time, with a rotation list of secrets). How a store names a session is the
 * store's business (the Redis store keys it by the SHA-256 of the id, so the credential never reaches Redis).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { hash, randomBytes } from "node:crypto"

/**
 * Makes new session ids. The default draws 32 bytes from `crypto.randomBytes` and encodes them as hex
 * (64 characters) or base64url (43 characters). Replace it to pin ids in tests, or to use another scheme:
 * ids must be 16 to 128 characters of `[A-Za-z0-9_-]`.
 *
 * @example
 * ```ts
 * import { SessionId } from "effect-redis-sessions"
 * import { Effect, Layer } from "effect"
 *
 * let n = 0
 * const Pinned = Layer.succeed(SessionId.Generator, () => Effect.sync(() => `test-session-${String(++n).padStart(8, "0")}`))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class Generator extends Context.Reference<Generator>()("effect-redis-sessions/SessionId/Generator", {
  defaultValue: (): (encoding: "hex" | "base64url") => Effect.Effect<string> => (encoding) =>
    Effect.sync(() => randomBytes(32).toString(encoding))
}) {}

const MAX_ID_LENGTH = 128
const ID_PATTERN = /^[A-Za-z0-9_-]{16,128}$/

/**
 * Whether a string can be a session id: 16 to 128 characters of `[A-Za-z0-9_-]`.
 *
 * @example
 * ```ts
 * import { SessionId } from "effect-redis-sessions"
 *
 * SessionId.isValid("0123456789abcdef0123456789abcdef") // true
 * SessionId.isValid("../../etc/passwd") // false
 * ```
 *
 * @since 0.1.0
 * @category refinements
 */
export const isValid = (id: string): boolean => ID_PATTERN.test(id)

const BLOCK = 64

/**
 * HMAC-SHA256 (RFC 2104) with one secret, as two one-shot `crypto.hash` calls over buffers made once per secret.
 * `createHmac` allocates a native object per MAC that the garbage collector has to finalize: for a cookie that
 * is not yet remembered (a logout, a first visit after a restart) that cost more than the hashing.
 */
const makeMac = (secret: Redacted.Redacted<string>): (id: string) => string => {
  const raw = Buffer.from(Redacted.value(secret))
  const key = raw.length > BLOCK ? hash("sha256", raw, "buffer") : raw
  // the inner block keeps room after the pad for any id `isValid` accepts (3 bytes per UTF-16 unit at most)
  const inner = Buffer.alloc(BLOCK + 3 * MAX_ID_LENGTH)
  const outer = Buffer.alloc(BLOCK + 32)
  for (let i = 0; i < BLOCK; i++) {
    inner[i] = (key[i] ?? 0) ^ 0x36
    outer[i] = (key[i] ?? 0) ^ 0x5c
  }
  return (id) => {
    const message = id.length <= MAX_ID_LENGTH
      ? inner.subarray(0, BLOCK + inner.write(id, BLOCK))
      : Buffer.concat([inner.subarray(0, BLOCK), Buffer.from(id)])
    outer.write(hash("sha256", message, "binary"), BLOCK, "binary")
    return hash("sha256", outer, "base64url")
  }
}

const macs = new WeakMap<Redacted.Redacted<string>, (id: string) => string>()

/** The base64url HMAC-SHA256 of `id` under `secret`. */
const mac = (id: string, secret: Redacted.Redacted<string>): string => {
  let of = macs.get(secret)
  if (of === undefined) {
    of = makeMac(secret)
    macs.set(secret, of)
  }
  return of(id)
}

/** Whether two strings are equal, in a time that depends on their length only. */
const equalInConstantTime = (a: string, b: string): boolean => {
  if (a.length !== b.length) return false
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return difference === 0
}

/**
 * The cookie value for an id: `<id>.<base64url HMAC-SHA256(secret, id)>`.
 *
 * @example
 * ```ts
 * import { SessionId } from "effect-redis-sessions"
 * import { Redacted } from "effect"
 *
 * const value = SessionId.sign("0123456789abcdef0123456789abcdef", Redacted.make("a-secret-of-at-least-32-characters!!"))
 * ```
 *
 * @since 0.1.0
 * @category signing
 */
export const sign = (id: string, secret: Redacted.Redacted<string>): string => `${id}.${mac(id, secret)}`

/**
 * A verified cookie: the id, and whether it was signed with an older secret than the newest
 * (the cookie should then be re-issued).
 *
 * @example
 * ```ts
 * import { SessionId } from "effect-redis-sessions"
 * import { Option, Redacted } from "effect"
 *
 * const current = Redacted.make("the-newest-secret-of-at-least-32-characters")
 * const previous = Redacted.make("the-previous-secret-of-at-least-32-characters")
 * const cookie = SessionId.sign("0123456789abcdef0123456789abcdef", previous)
 * const reissue = Option.exists(SessionId.verify(cookie, [current, previous]), (verified) => verified.stale) // true
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Verified {
  readonly id: string
  readonly stale: boolean
}

const MAC_LENGTH = 43
const MAX_COOKIE_LENGTH = MAX_ID_LENGTH + 1 + MAC_LENGTH

/**
 * Verifies a cookie value against every secret (newest first) with constant-time comparisons.
 * Anything malformed, oversized or forged is `None`; no secret is tried on a value that cannot be
 * a signed id.
 *
 * @example
 * ```ts
 * import { SessionId } from "effect-redis-sessions"
 * import { Redacted } from "effect"
 *
 * const secrets = [Redacted.make("a-secret-of-at-least-32-characters!!")] as const
 * const verified = SessionId.verify(SessionId.sign("0123456789abcdef0123456789abcdef", secrets[0]), secrets)
 * ```
 *
 * @since 0.1.0
 * @category signing
 */
export const verify = (
  value: string,
  secrets: ReadonlyArray<Redacted.Redacted<string>>
): Option.Option<Verified> => {
  if (value.length > MAX_COOKIE_LENGTH) return Option.none()
  const dot = value.length - MAC_LENGTH - 1
  if (dot < 1 || value[dot] !== ".") return Option.none()
  const id = value.slice(0, dot)
  if (!isValid(id)) return Option.none()
  // the MAC is compared as text with its canonical encoding, so another spelling of the same bytes never matches
  const presented = value.slice(dot + 1)
  let match = -1
  for (let i = 0; i < secrets.length; i++) {
    if (equalInConstantTime(presented, mac(id, secrets[i]!)) && match === -1) match = i
  }
  return match === -1 ? Option.none() : Option.some({ id, stale: match > 0 })
}
