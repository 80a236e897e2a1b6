/**
 * `npm run bench`: starts a private Redis and one child process per server, measures every route under load in
 * interleaved rounds, counts Redis commands, keys, bytes and lost updates, reads this library's heap around many
 * requests of each route, then writes `docs/benchmarks.md` and `docs/benchmarks.svg` and prints a summary.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { Agent } from "node:http"
import { startRedisServer } from "../test/utils/RedisServer.js"
import { renderBarChart } from "./chart.js"
import { readConfig } from "./config.js"
import { measureLostUpdates } from "./lost-updates.js"
import { describeMachine } from "./machine.js"
import {
  countRouteCommands,
  type HeapSample,
  measureBurst,
  measureHeap,
  measureSessionSize,
  type Sample,
  type SessionSize,
  type Target,
  warmUp
} from "./measure.js"
import { ours, peers, type Route, routes } from "./peers.js"
import { type CommandCount, RedisProbe } from "./redis-probe.js"
import { floorRows, layerCpuChart, metText, renderReport, targetText, versusLeanest } from "./report.js"
import { type BenchResults, type PeerRecord, summarize } from "./results.js"
import { startServer } from "./server-process.js"
import { Workloads } from "./workloads.js"

const startedAt = new Date()
const elapsedS = () => (Date.now() - startedAt.getTime()) / 1000
const log = (message: string) => console.log(`[${elapsedS().toFixed(0).padStart(4)} s] ${message}`)

/** Stops everything this run started, latest first; safe to call more than once. */
const cleanups: Array<() => void> = []
const cleanUp = () => {
  for (const stop of cleanups.splice(0).reverse()) {
    try {
      stop()
    } catch {
      // already gone
    }
  }
}
process.on("exit", cleanUp)
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    cleanUp()
    process.exit(130)
  })
}

/** A running server and what has been measured on it so far. */
interface Measured {
  readonly target: Target
  readonly sessionSize: SessionSize | undefined
  readonly samples: Map<Route, Array<Sample>>
  readonly commands: Map<Route, CommandCount>
}

const main = async () => {
  const config = readConfig()
  const machine = describeMachine()
  log(`config ${JSON.stringify(config)}`)

  if (process.env.REDIS_URL !== undefined) {
    log("ignoring REDIS_URL: the benchmark always runs its own redis-server")
    delete process.env.REDIS_URL
  }
  const redis = await startRedisServer()
  cleanups.push(() => void redis.stop())
  const probe = await RedisProbe.open(redis.port)
  cleanups.push(() => probe.close())
  log(`redis-server ${machine.redis} pid ${redis.pid} on port ${redis.port}`)

  const calibration = await probe.calibrate()
  if (calibration.monitor.topLevel !== 2 || calibration.monitor.inScript !== 2 || calibration.commandstatsCalls !== 4) {
    throw new Error(`command counting is off on the known case: ${JSON.stringify(calibration)}`)
  }
  log("command counting checked on the known case (EVAL with 2 inner calls + GET = 2 round trips)")

  const agent = new Agent({ keepAlive: true, maxSockets: config.concurrency })
  cleanups.push(() => agent.destroy())
  const measured: Array<Measured> = []
  const skipped: Array<{ name: string; reason: string }> = []
  for (const peer of peers) {
    try {
      const server = await startServer(peer, `redis://127.0.0.1:${redis.port}/${peer.db}`)
      cleanups.push(server.stop)
      const sessionSize = peer.sessions ? await measureSessionSize(server, agent, probe) : undefined
      const workloads = await Workloads.create(server, agent, config.concurrency)
      if (peer.sessions && (await probe.dbSize(peer.db)) === 0) {
        throw new Error(`no key in its Redis database ${peer.db}: is the database of REDIS_URL ignored?`)
      }
      measured.push({
        target: { server, agent, probe, workloads },
        sessionSize,
        samples: new Map(),
        commands: new Map()
      })
      log(`${peer.name} ready (pid ${server.pid}, port ${server.port})`)
    } catch (error) {
      skipped.push({ name: peer.name, reason: error instanceof Error ? error.message : String(error) })
      log(`${peer.name} SKIPPED: ${skipped.at(-1)!.reason}`)
    }
  }

  log("warm-up pass (not measured)")
  for (const { target } of measured) {
    for (const route of routes) await warmUp(target, route, config, 3 * config.warmup, config.maxMs)
  }

  let roundsRun = 0
  let lastRoundS = 0
  for (let round = 0; round < config.rounds; round++) {
    if (elapsedS() + lastRoundS > config.budgetS) {
      log(`time budget of ${config.budgetS} s reached: stopping after ${roundsRun} rounds`)
      break
    }
    const roundStartS = elapsedS()
    const order = measured.map((_, i) => measured[(i + round) % measured.length]!)
    const lines = new Map(order.map(({ target }) => [target, [] as Array<string>]))
    // route by route, so that a server and the floor it is held to are measured close together in time
    for (const route of routes) {
      for (const { samples, target } of order) {
        const sample = await measureBurst(target, route, config)
        samples.set(route, [...(samples.get(route) ?? []), sample])
        lines.get(target)!.push(
          `/${route} ${sample.requestsPerSecond.toFixed(0)}/s ${sample.cpuUsPerRequest.toFixed(0)}µs`
        )
        if (sample.failed > 0) {
          log(`  ${target.server.peer.name} /${route}: ${sample.failed} failed: ${sample.firstError}`)
        }
      }
    }
    for (const [target, line] of lines) {
      log(`round ${round + 1}/${config.rounds} ${target.server.peer.name}: ${line.join(", ")}`)
    }
    roundsRun++
    lastRoundS = elapsedS() - roundStartS
  }

  // After the rounds, so one-time costs (script loading) are not counted.
  for (const { commands, target } of measured) {
    for (const route of routes) commands.set(route, await countRouteCommands(target, route, config.countedRequests))
    const counts = routes.map((route) => `/${route} ${commands.get(route)!.topLevel}`).join(", ")
    log(`Redis commands per request, ${target.server.peer.name}: ${counts}`)
  }

  const heap: Array<HeapSample> = []
  const mine = measured.find(({ target }) => target.server.peer.name === ours)
  for (const route of routes) {
    if (mine === undefined) break
    const sample = await measureHeap(mine.target, route, config)
    heap.push(sample)
    log(
      `heap of ${ours} around ${sample.completed} /${route} requests (${sample.failed} failed): ${
        (sample.beforeBytes / 1e6).toFixed(2)
      } MB -> ${(sample.afterBytes / 1e6).toFixed(2)} MB`
    )
  }

  const records: Array<PeerRecord> = []
  for (const { commands, samples, sessionSize, target } of measured) {
    const { peer } = target.server
    const lostUpdates = peer.sessions ? await measureLostUpdates(target.server) : undefined
    if (lostUpdates !== undefined) log(`lost updates, ${peer.name}: ${JSON.stringify(lostUpdates)}`)
    records.push({ peer, samples, commands, sessionSize, lostUpdates })
  }

  const results: BenchResults = {
    startedAt,
    durationS: elapsedS(),
    config,
    roundsRun,
    machine,
    calibration,
    peers: summarize(records, config.requests),
    heap,
    skipped
  }
  const profiling = readFileSync(new URL("./profiling.md", import.meta.url), "utf8")
  writeFileSync(new URL("../docs/benchmarks.md", import.meta.url), `${renderReport(results)}\n${profiling}`)
  writeFileSync(new URL("../docs/benchmarks.svg", import.meta.url), renderBarChart(layerCpuChart(results)))
  log("wrote docs/benchmarks.md and docs/benchmarks.svg")

  console.table(results.peers.flatMap((summary) =>
    routes.map((route) => {
      const s = summary.routes.get(route)!
      return {
        server: summary.peer.name,
        route: `/${route}`,
        "req/s": Math.round(s.requestsPerSecond),
        "p50 ms": Number(s.p50Ms.toFixed(2)),
        "p99 ms": Number(s.p99Ms.toFixed(2)),
        "cpu µs": Number(s.cpuUsPerRequest.toFixed(1)),
        "layer µs": summary.peer.sessions ? Number(s.layerCpuUsPerRequest.toFixed(1)) : "",
        "redis cmds": s.commands.topLevel,
        "keys/req": s.keysPerRequest
      }
    })
  ))
  console.log(`${ours} above its floor (for /none and /anon: above effect-none), medians of this run:`)
  console.table(
    floorRows(results).map((row) => ({
      route: `/${row.route}`,
      floor: row.reference.name,
      "cpu µs": Number(row.cpuUsPerRequest.toFixed(1)),
      "floor cpu µs": Number(row.referenceCpuUsPerRequest.toFixed(1)),
      "above µs": Number(row.cpuUsAbove.toFixed(1)),
      "req/s ratio": Number(row.throughputRatio.toFixed(2)),
      target: targetText(row.target),
      "met?": metText(row)
    }))
  )
  const versus = versusLeanest(results)
  console.log(
    `session layer CPU below @fastify/session's on every route: ${
      versus === undefined ? "not measured" : `${versus.below ? "yes" : "no"} (${versus.figures})`
    }`
  )
  if (skipped.length > 0) console.log(`not measured: ${skipped.map((s) => `${s.name} (${s.reason})`).join("; ")}`)
}

main().then(cleanUp, (error: unknown) => {
  console.error(error)
  cleanUp()
  process.exitCode = 1
})
