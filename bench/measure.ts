import type { Agent } from "node:http"
import type { BenchConfig } from "./config.js"
import { getOk } from "./http.js"
import { type JarFor, runBurst } from "./load.js"
import type { Route } from "./peers.js"
import type { CommandCount, RedisProbe } from "./redis-probe.js"
import type { ServerProcess } from "./server-process.js"
import { percentile } from "./stats.js"
import { newSession, type Workloads } from "./workloads.js"

/** Everything needed to measure one server. */
export interface Target {
  readonly server: ServerProcess
  readonly agent: Agent
  readonly probe: RedisProbe
  readonly workloads: Workloads
}

/** One measured burst of one route on one server. */
export interface Sample {
  readonly requestsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Server process CPU (user + system) during the burst, divided by completed requests. */
  readonly cpuUsPerRequest: number
  /** Keys added to the server's Redis database during the burst, divided by completed requests. */
  readonly keysPerRequest: number
  readonly completed: number
  readonly failed: number
  readonly firstError: string | undefined
}

/** Cumulative CPU time of the server process in microseconds, as reported by its `/__cpu` route. */
const readCpu = async (target: Target): Promise<number> => {
  const { system, user } = JSON.parse(await getOk(target.agent, target.server.port, "/__cpu")) as {
    user: number
    system: number
  }
  return user + system
}

const burst = (target: Target, route: Route, config: BenchConfig, requests: number, maxMs: number, jarFor: JarFor) =>
  runBurst({
    agent: target.agent,
    port: target.server.port,
    path: `/${route}`,
    requests,
    maxMs,
    concurrency: config.concurrency,
    jarFor
  })

/** An unmeasured burst of `requests` requests on `route` (at most `maxMs` long), to let the server warm up. */
export const warmUp = async (
  target: Target,
  route: Route,
  config: BenchConfig,
  requests: number,
  maxMs: number
): Promise<void> => {
  await burst(target, route, config, requests, maxMs, await target.workloads.jarFor(route, requests))
}

/** A warm-up burst, then a measured burst of `route` with CPU and key counts taken right around it. */
export const measureBurst = async (target: Target, route: Route, config: BenchConfig): Promise<Sample> => {
  const { db } = target.server.peer
  await warmUp(target, route, config, config.warmup, config.maxMs / 4)
  // Sessions consumed by the burst (logout) are created before the CPU and key counts are taken.
  const jarFor = await target.workloads.jarFor(route, config.requests)
  const keysBefore = await target.probe.dbSize(db)
  const cpuBefore = await readCpu(target)
  const result = await burst(target, route, config, config.requests, config.maxMs, jarFor)
  const cpuAfter = await readCpu(target)
  const keysAfter = await target.probe.dbSize(db)
  const completed = Math.max(result.completed, 1)
  return {
    requestsPerSecond: result.completed / (result.elapsedMs / 1000),
    p50Ms: percentile(result.latenciesMs, 50),
    p99Ms: percentile(result.latenciesMs, 99),
    cpuUsPerRequest: (cpuAfter - cpuBefore) / completed,
    keysPerRequest: (keysAfter - keysBefore) / completed,
    completed: result.completed,
    failed: result.failed,
    firstError: result.firstError
  }
}

/** Heap of a server around many requests of one route. */
export interface HeapSample {
  readonly route: Route
  /** Requests answered 2xx... */
  readonly completed: number
  /** ...and not. */
  readonly failed: number
  /** True when the loop stopped at `config.heapMaxS` before sending `config.heapRequests` requests. */
  readonly capped: boolean
  /** V8 heap used after a forced full garbage collection, in bytes, before the first request and after the last. */
  readonly beforeBytes: number
  readonly afterBytes: number
}

/** Requests per burst of the heap loop: `/logout` creates the sessions it consumes one burst at a time. */
export const heapBurst = 5_000

/** Readings of `/__heap` per heap figure: the first collection after a burst leaves a few hundred KB behind. */
export const heapReadings = 3

/**
 * V8 heap used by the server process after a forced full garbage collection: the lowest of {@link heapReadings}
 * readings of its `/__heap` route.
 */
const readHeap = async (target: Target): Promise<number> => {
  let lowest = Infinity
  for (let i = 0; i < heapReadings; i++) {
    const { collected, heapUsed } = JSON.parse(await getOk(target.agent, target.server.port, "/__heap")) as {
      heapUsed: number
      collected: boolean
    }
    if (!collected) throw new Error(`${target.server.peer.name} cannot force a garbage collection (no --expose-gc)`)
    lowest = Math.min(lowest, heapUsed)
  }
  return lowest
}

/**
 * Reads the heap, sends `config.heapRequests` requests of `route` (fewer if `config.heapMaxS` runs out first) in
 * bursts of {@link heapBurst}, and reads the heap again.
 */
export const measureHeap = async (target: Target, route: Route, config: BenchConfig): Promise<HeapSample> => {
  const deadline = performance.now() + config.heapMaxS * 1000
  const beforeBytes = await readHeap(target)
  let completed = 0
  let failed = 0
  while (completed + failed < config.heapRequests && performance.now() < deadline) {
    const requests = Math.min(heapBurst, config.heapRequests - completed - failed)
    const jarFor = await target.workloads.jarFor(route, requests)
    const result = await burst(target, route, config, requests, deadline - performance.now(), jarFor)
    completed += result.completed
    failed += result.failed
  }
  const capped = completed + failed < config.heapRequests
  return { route, completed, failed, capped, beforeBytes, afterBytes: await readHeap(target) }
}

/** Redis commands per request of `route`, from `requests` sequential requests watched under MONITOR. */
export const countRouteCommands = async (target: Target, route: Route, requests: number): Promise<CommandCount> => {
  const jarFor = await target.workloads.jarFor(route, requests)
  let failure: string | undefined
  const count = await target.probe.countCommands(target.server.peer.db, async () => {
    const result = await runBurst({
      agent: target.agent,
      port: target.server.port,
      path: `/${route}`,
      requests,
      maxMs: 30_000,
      concurrency: 1,
      jarFor
    })
    if (result.failed > 0 || result.completed < requests) failure = result.firstError ?? "time limit reached"
  })
  if (failure !== undefined) throw new Error(`${target.server.peer.name} /${route}: ${failure}`)
  return {
    topLevel: count.topLevel / requests,
    inScript: count.inScript / requests,
    byName: new Map(Array.from(count.byName, ([name, calls]) => [name, calls / requests]))
  }
}

/** Size in Redis of one session holding the seed data set: the keys it adds and their `MEMORY USAGE` sum. */
export interface SessionSize {
  readonly bytes: number
  readonly keys: number
}

/** Stores one session through `/seed` (no cookie) and measures the keys it added to the server's database. */
export const measureSessionSize = async (
  server: ServerProcess,
  agent: Agent,
  probe: RedisProbe
): Promise<SessionSize> => {
  const before = new Set(await probe.keys(server.peer.db))
  await newSession(server, agent, "/seed")
  const added = (await probe.keys(server.peer.db)).filter((key) => !before.has(key))
  return { bytes: await probe.memoryUsage(server.peer.db, added), keys: added.length }
}
