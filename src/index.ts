/**
 * effect-redis-sessions: server-side HTTP sessions for Effect HTTP servers, stored in Redis.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as HttpSession from "./HttpSession.js"
/** @since 0.1.0 */
export * as RedisClient from "./RedisClient.js"
/** @since 0.1.0 */
export * as RedisSession from "./RedisSession.js"
/** @since 0.1.0 */
export * as RedisSessionStore from "./RedisSessionStore.js"
/** @since 0.1.0 */
export * as Session from "./Session.js"
/** @since 0.1.0 */
export * as SessionConfig from "./SessionConfig.js"
/** @since 0.1.0 */
export * as SessionError from "./SessionError.js"
/** @since 0.3.0 */
export * as SessionEvents from "./SessionEvents.js"
/** @since 0.1.0 */
export * as SessionId from "./SessionId.js"
/** @since 0.1.0 */
export * as SessionIndex from "./SessionIndex.js"
/** @since 0.1.0 */
export * as SessionKey from "./SessionKey.js"
/** @since 0.3.0 */
export * as SessionMetrics from "./SessionMetrics.js"
/** @since 0.1.0 */
export * as SessionStore from "./SessionStore.js"
