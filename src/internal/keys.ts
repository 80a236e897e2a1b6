import { hash } from "node:crypto"
import { memo } from "./cache.js"

/**
 * The SHA-256 of a session id, in hex: how stores name a session without ever holding the id, which is
 * the bearer credential. Also the session's handle in a principal's index. Recent ones are remembered, so a
 * returning session skips the hash as its cookie skips the HMAC (the verified-cookie memo in `HttpSession`).
 */
export const digest: (id: string) => string = memo(10_000, (id) => hash("sha256", id))

/** The Redis key of a session: the prefix followed by the digest of its id. */
export const sessionKey = (prefix: string, id: string): string => prefix + digest(id)

/**
 * The Redis key of a principal's session index. The principal's digest is a Redis Cluster hash tag, so the
 * index has one slot whatever the principal's characters.
 */
export const indexKey = (prefix: string, principal: string): string => `${prefix}principal:{${digest(principal)}}`
