/** The longest idle or absolute timeout, in seconds (ten years): beyond it TTLs stop being exact integers in Lua. */
export const MAX_TIMEOUT = 10 * 365 * 24 * 60 * 60

/** The size the `max_size` limit applies to: bytes of every key name and encoded value. */
export const sizeOf = (fields: Iterable<readonly [string, string]>): number => {
  let size = 0
  for (const [key, value] of fields) size += Buffer.byteLength(key) + Buffer.byteLength(value)
  return size
}

/** Remaining life of a session at `now`, in milliseconds: its idle timeout (seconds), cut at its absolute deadline. */
export const lifetime = (now: number, timeout: number, absoluteDeadline: number | undefined): number =>
  absoluteDeadline === undefined ? timeout * 1000 : Math.min(timeout * 1000, absoluteDeadline - now)
