import { SessionStoreError } from "../SessionError.js"
import type { SessionEventInput } from "../SessionEvents.js"
import * as SessionMetrics from "../SessionMetrics.js"

const NoTags: ReadonlyArray<never> = []

/** Adds `amount` to `counter` without an effect: counting is on the request path. */
export const count = (counter: { unsafeUpdate(input: number, tags: ReadonlyArray<never>): void }, amount = 1) =>
  counter.unsafeUpdate(amount, NoTags)

/** Counts what a lifecycle event says happened to sessions. */
export const countEvent = (event: SessionEventInput): void => {
  const { sessions } = SessionMetrics
  switch (event._tag) {
    case "Created":
      return count(sessions.created)
    case "Regenerated":
      return count(sessions.regenerated)
    case "Invalidated":
      return count(sessions.invalidated)
    case "Revoked":
      return count(sessions.revoked, event.sessions)
    case "ExpiredOnRead":
      return count(sessions.expired_on_read)
    default:
      return
  }
}

/** Counts a store failure by its reason, if `error` is one. */
export const countStoreError = (error: unknown): void => {
  if (error instanceof SessionStoreError) count(SessionMetrics.storeErrors[error.reason])
}
