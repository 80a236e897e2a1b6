import type { Agent } from "node:http"
import type { CookieJar } from "./cookie-jar.js"
import { get } from "./http.js"

/** Chooses the cookie jar (or none) request number `index` sent by worker `worker` uses. */
export type JarFor = (worker: number, index: number) => CookieJar | undefined

/** One burst of requests on one route. */
export interface BurstOptions {
  readonly agent: Agent
  readonly port: number
  readonly path: string
  /** Stop after this many requests... */
  readonly requests: number
  /** ...or after this many milliseconds, whichever comes first. */
  readonly maxMs: number
  /** Number of requests in flight at any time. */
  readonly concurrency: number
  readonly jarFor: JarFor
}

/** Outcome of a burst. */
export interface BurstResult {
  readonly completed: number
  readonly failed: number
  readonly elapsedMs: number
  /** Latency of every completed request in milliseconds, in completion order. */
  readonly latenciesMs: Float64Array
  /** First failure, to explain a non-zero `failed`. */
  readonly firstError: string | undefined
}

/**
 * Runs a closed-loop burst: `concurrency` workers each send a request as soon as their previous one answered,
 * until `requests` were sent or `maxMs` elapsed. Non-2xx answers and transport errors count as failed.
 */
export const runBurst = async (options: BurstOptions): Promise<BurstResult> => {
  const latenciesMs = new Float64Array(options.requests)
  let issued = 0
  let completed = 0
  let failed = 0
  let firstError: string | undefined
  const start = performance.now()
  const deadline = start + options.maxMs
  const worker = async (id: number) => {
    while (issued < options.requests && performance.now() < deadline) {
      const index = issued++
      const sent = performance.now()
      try {
        const reply = await get(options.agent, options.port, options.path, options.jarFor(id, index))
        if (reply.status >= 200 && reply.status < 300) {
          latenciesMs[completed++] = performance.now() - sent
        } else {
          failed++
          firstError ??= `status ${reply.status}: ${reply.body.slice(0, 200)}`
        }
      } catch (error) {
        failed++
        firstError ??= String(error)
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, (_, id) => worker(id)))
  return {
    completed,
    failed,
    elapsedMs: performance.now() - start,
    latenciesMs: latenciesMs.subarray(0, completed),
    firstError
  }
}
