/**
 * What every benchmark server shares: its settings (read from the environment the harness sets),
 * the session secret, the data set stored by `/seed`, the `/__cpu` and `/__heap` reports and the readiness line.
 */
/** Port to listen on; 0 lets the OS pick one, which is then announced by {@link announceReady}. */
export const port: number = Number(process.env.PORT ?? 0)

/** Redis URL including the database index reserved for this server, e.g. `redis://127.0.0.1:7000/3`. */
export const redisUrl = (): string => {
  const url = process.env.REDIS_URL
  if (url === undefined || url === "") throw new Error("REDIS_URL is not set")
  return url
}

/** Cookie-signing secret used by every session peer (>= 32 characters). */
export const secret: string = "bench-secret-bench-secret-bench-secret-0123"

/** The small data set every session peer stores on `/seed`, to compare bytes per stored session. */
export const seedData = { user: "alice", count: 42, roles: ["admin"] } as const

/** Body of the private `/__cpu` route: this process' cumulative CPU time in microseconds. */
export const cpuReport = (): string => {
  const { system, user } = process.cpuUsage()
  return JSON.stringify({ user, system })
}

/**
 * Body of the private `/__heap` route: V8 heap used in bytes right after a full garbage collection, and whether
 * one could be forced (only when Node runs with `--expose-gc`).
 */
export const heapReport = (): string => {
  gc?.()
  return JSON.stringify({ heapUsed: process.memoryUsage().heapUsed, collected: gc !== undefined })
}

/**
 * Tells the harness (which reads the child's stdout) that the server accepts connections,
 * given the listening socket's address (`server.address()`, or Effect's `HttpServer.address`).
 */
export const announceReady = (address: { readonly port: number } | string | null): void => {
  const actualPort = typeof address === "object" && address !== null ? address.port : port
  process.stdout.write(`ready ${actualPort}\n`)
}

/** Reads the `count` value of a session as a number (absent or malformed counts as 0). */
export const toCount = (value: unknown): number => typeof value === "number" ? value : 0
