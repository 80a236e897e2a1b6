/** What both stores share about a principal's index of sessions. */
import type { ClientInfo } from "./client.js"

/**
 * A live session of a principal, as listed by the index.
 */
export interface IndexedSession {
  /** Opaque handle of the session: names it in the index, but cannot load or forge it. */
  readonly handle: string
  /** Creation time, epoch milliseconds. */
  readonly created: number
  /** Last time the session was used in a way that extended its life, epoch milliseconds. */
  readonly lastSeen: number
  /** What the session recorded of its client (with `record_client`). */
  readonly client: ClientInfo | undefined
  /** Whether this is the session whose id `list` was given as the current one. */
  readonly current: boolean
}

/** Oldest first, the order `list` reports and the limit revokes in. */
export const byAge = (a: IndexedSession, b: IndexedSession) => a.created - b.created

/**
 * The handles to revoke so that at most `max` sessions remain, oldest first, never `keep` (the session
 * being bound: a login never revokes itself).
 */
export const overLimit = (
  sessions: ReadonlyArray<IndexedSession>,
  max: number,
  keep: string
): Array<string> => {
  const others = sessions.filter((s) => s.handle !== keep)
  const excess = others.length - (max - 1)
  return excess <= 0 ? [] : others.slice(0, excess).map((s) => s.handle)
}
