/**
 * Typed session keys: a name plus a Schema. Values are encoded with the Schema when they are set
 * (a bad value fails at `set`) and decoded when they are read (a stored value that no longer matches
 * reads as absent and is logged).
 *
 * @since 0.1.0
 */
import type * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-redis-sessions/SessionKey")

/**
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
 * @since 0.1.0
 * @category refinements
 */
export const isSessionKey = (u: unknown): u is SessionKey<unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u
