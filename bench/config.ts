/**
 * Sizes of the run; env vars override. With the defaults, the rounds of `npm run bench` take about 5 minutes on
 * 2 cores, and the heap loop after them up to 6 × `heapMaxS` more.
 */
export interface BenchConfig {
  /** Rounds interleaved across servers; medians are taken over them. */
  readonly rounds: number
  /** Requests in each measured burst (upper bound)... */
  readonly requests: number
  /** ...and its time limit in milliseconds. */
  readonly maxMs: number
  /** Requests of the warm-up burst before each measured one (time-limited to a quarter of `maxMs`). */
  readonly warmup: number
  /** Requests in flight during a burst. */
  readonly concurrency: number
  /** Requests per route whose Redis commands are counted under MONITOR. */
  readonly countedRequests: number
  /** No round starts unless it is expected to end within this many seconds of the start of the run. */
  readonly budgetS: number
  /** Requests per route sent to `effect-redis-sessions` between its two heap readings, after the rounds... */
  readonly heapRequests: number
  /** ...stopping a route earlier when it has run this many seconds. */
  readonly heapMaxS: number
}

const intFromEnv = (name: string, fallback: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === "") return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`)
  return value
}

/**
 * Reads the configuration, honouring BENCH_ROUNDS, BENCH_REQUESTS, BENCH_MAX_MS, BENCH_WARMUP, BENCH_CONCURRENCY,
 * BENCH_BUDGET_S, BENCH_HEAP_REQUESTS and BENCH_HEAP_MAX_S.
 */
export const readConfig = (): BenchConfig => ({
  rounds: intFromEnv("BENCH_ROUNDS", 12),
  requests: intFromEnv("BENCH_REQUESTS", 3000),
  maxMs: intFromEnv("BENCH_MAX_MS", 2000),
  warmup: intFromEnv("BENCH_WARMUP", 300),
  concurrency: intFromEnv("BENCH_CONCURRENCY", 16),
  countedRequests: 20,
  budgetS: intFromEnv("BENCH_BUDGET_S", 480),
  heapRequests: intFromEnv("BENCH_HEAP_REQUESTS", 200_000),
  heapMaxS: intFromEnv("BENCH_HEAP_MAX_S", 90)
})
