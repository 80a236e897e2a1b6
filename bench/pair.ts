/**
 * `npx tsx bench/pair.ts <route> [rounds]`: this library's cost above its floor on one route, from bursts of the
 * two servers taken back to back (the order alternating each round), as `npm run bench` measures them but without
 * the other servers between them. Prints every round's difference and the median of the differences; a change of
 * a few µs shows here in about a minute, where the whole benchmark needs ten and its drift hides it. Sized like
 * `npm run bench` (`BENCH_REQUESTS`, `BENCH_CONCURRENCY`, ...); `rounds` defaults to 12.
 */
import { Agent } from "node:http"
import { startRedisServer } from "../test/utils/RedisServer.js"
import { readConfig } from "./config.js"
import { measureBurst, type Sample, type Target, warmUp } from "./measure.js"
import { ours, peers, type Route, routes } from "./peers.js"
import { RedisProbe } from "./redis-probe.js"
import { startServer } from "./server-process.js"
import { median } from "./stats.js"
import { Workloads } from "./workloads.js"

const route = (process.argv[2] ?? "logout") as Route
const rounds = Number(process.argv[3] ?? 12)
if (!routes.includes(route)) throw new Error(`unknown route /${route}; one of ${routes.join(", ")}`)

const main = async () => {
  const config = readConfig()
  const redis = await startRedisServer()
  const probe = await RedisProbe.open(redis.port)
  const agent = new Agent({ keepAlive: true, maxSockets: config.concurrency })
  const floorName = route === "none" || route === "anon" ? "effect-none" : "effect-floor"
  const targets: Array<Target> = []
  const stops: Array<() => void> = [() => agent.destroy(), () => probe.close(), () => void redis.stop()]
  try {
    for (const name of [floorName, ours]) {
      const peer = peers.find((p) => p.name === name)!
      const server = await startServer(peer, `redis://127.0.0.1:${redis.port}/${peer.db}`)
      stops.push(server.stop)
      targets.push({ server, agent, probe, workloads: await Workloads.create(server, agent, config.concurrency) })
    }
    for (const target of targets) await warmUp(target, route, config, 3 * config.warmup, config.maxMs)
    const differences: Array<number> = []
    const ratios: Array<number> = []
    for (let round = 0; round < rounds; round++) {
      const samples = new Map<Target, Sample>()
      for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
        samples.set(target, await measureBurst(target, route, config))
      }
      const [floor, mine] = targets.map((target) => samples.get(target)!)
      differences.push(mine!.cpuUsPerRequest - floor!.cpuUsPerRequest)
      ratios.push(mine!.requestsPerSecond / floor!.requestsPerSecond)
      console.log(
        `round ${round + 1}: ${floorName} ${floor!.cpuUsPerRequest.toFixed(1)} µs, ${ours} ${
          mine!.cpuUsPerRequest.toFixed(1)
        } µs: ${differences.at(-1)!.toFixed(1)} µs above, throughput ×${ratios.at(-1)!.toFixed(2)}`
      )
    }
    console.log(
      `/${route}: median ${median(differences).toFixed(1)} µs above ${floorName}, throughput ×${
        median(ratios).toFixed(2)
      } (${rounds} rounds)`
    )
  } finally {
    for (const stop of stops.reverse()) stop()
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
