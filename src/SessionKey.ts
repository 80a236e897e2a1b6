/**
 * Typed session keys: a name plus a Schema. Values are encoded with the Schema when they are set
 * (a bad value fails at `set`) and decoded when they are read (a stored value that no longer matches
 * reads as absent and is logged).
 *
 * @since 0.1.0
 */
import type * as Schema from "effect/Schema"

/**
 * The brand of session keys (see {@link isSessionKey}).
 *
 * @example
 * ```ts
 * import { SessionKey } from "effect-redis-sessions"
 *
 * const looksLikeKey = (u: object) => SessionKey.TypeId in u
 * ```
 *
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-redis-sessions/SessionKey")

/**
 * A typed session key: its name in the session and the Schema of its values (`A` in code, `I` as stored).
 *
 * @example
 * ```ts
 * import { SessionKey } from "effect-redis-sessions"
 * import { Schema } from "effect"
 *
 * const UserId: SessionKey.SessionKey<string> = SessionKey.make("userId", Schema.String)
 * const LastLogin: SessionKey.SessionKey<Date, string> = SessionKey.make("lastLogin", Schema.Date)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionKey<A, I = A> {
  readonly [TypeId]: typeof TypeId
  readonly name: string
  readonly schema: Schema.Schema<A, I>
}

/**
 * @example
 * ```ts
 * import { SessionKey } from "effect-redis-sessions"
 * import { Schema } from "effect"
 *
 * const UserId = SessionKey.make("userId", Schema.String)
 * const Cart = SessionKey.make("cart", Schema.Array(Schema.Struct({ sku: Schema.String, qty: Schema.Int })))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, I>(name: string, schema: Schema.Schema<A, I>): SessionKey<A, I> => ({
  [TypeId]: TypeId,
  name,
  schema
})

/**
 * Whether a value is a {@link SessionKey}.
 *
 * @example
 * ```ts
 * import { SessionKey } from "effect-redis-sessions"
 *
 * const nameOf = (key: SessionKey.SessionKey<any, any> | string) => SessionKey.isSessionKey(key) ? key.name : key
 * ```
 *
 * @since 0.1.0
 * @category refinements
 */
export const isSessionKey = (u: unknown): u is SessionKey<unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u
