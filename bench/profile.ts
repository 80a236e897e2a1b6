/**
 * `npx tsx bench/profile.ts <route> [requests]`: runs the effect-redis-sessions benchmark server under
 * `--cpu-prof` on a private redis-server, sends `requests` requests (default 30,000) of one route, then
 * prints the CPU per request and the hottest functions by self time during the burst, then the same time by where
 * the code lives (the Effect runtime, Node, native code, this library, ...). `PROFILE_GC=1` forces
 * a full garbage collection before the burst, `PROFILE_CPU=0` measures the CPU per request without the profiler; `PROFILE_PATH=/read` sends that path with the route's cookies, `PROFILE_SERVER=effect-floor` profiles another
 * server of `bench/peers.ts`. The profile itself is left in `bench/.profiles/`.
 */
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { Agent } from "node:http"
import { startRedisServer } from "../test/utils/RedisServer.js"
import { getOk } from "./http.js"
import { runBurst } from "./load.js"
import { peers, type Route, routes } from "./peers.js"
import { startServer } from "./server-process.js"
import { Workloads } from "./workloads.js"

const route = (process.argv[2] ?? "read") as Route
const requests = Number(process.argv[3] ?? 30_000)
if (!routes.includes(route)) throw new Error(`unknown route /${route}; one of ${routes.join(", ")}`)
/** Requests in flight (`PROFILE_CONCURRENCY`, default 50; `npm run bench` sends 16). */
const concurrency = Number(process.env.PROFILE_CONCURRENCY ?? 50)
const directory = new URL("./.profiles/", import.meta.url).pathname

interface Node {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}
interface Profile {
  readonly startTime: number
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** Microseconds on the monotonic clock V8 stamps its profiles with. */
const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n)

type CallFrame = Node["callFrame"]

/** A function and where it is: `name file:line`. */
const functionOf = ({ functionName, lineNumber, url }: CallFrame) =>
  `${functionName || "(anonymous)"} ${
    url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*\/(src|dist|bench)\//, "$1/")
  }:${lineNumber + 1}`

/** Where code lives: the Effect runtime, @effect/platform, ioredis, Node's own JavaScript, this library, ... */
const placeOf = ({ functionName, url }: CallFrame) => {
  if (functionName === "(garbage collector)") return "garbage collection"
  if (functionName === "(idle)" || functionName === "(program)") return "idle / V8 program"
  if (url === "") return "native code (socket writes, parsers)"
  if (url.includes("node_modules/effect/")) return "the Effect runtime"
  if (url.includes("node_modules/@effect/")) return "@effect/platform"
  if (url.includes("node_modules/ioredis/")) return "ioredis"
  if (url.startsWith("node:")) return "Node's own JavaScript"
  if (!url.includes("node_modules/")) return "this library (and the benchmark server)"
  return url.replace(/^.*node_modules\//, "").split("/")[0]!
}

/**
 * Self time per `key` (a function, or where its code lives), summed over the samples of a V8 CPU profile taken
 * between `from` and `to` (monotonic microseconds), largest first.
 */
const hottest = (profile: Profile, from: number, to: number, top: number, key: (frame: CallFrame) => string) => {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<string, number>()
  let time = profile.startTime
  profile.samples.forEach((id, i) => {
    time += profile.timeDeltas[i] ?? 0
    if (time < from || time > to) return
    const name = key(byId.get(id)!.callFrame)
    self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  const total = Array.from(self.values()).reduce((a, b) => a + b, 0)
  return Array.from(self, ([name, micros]) => ({ name, micros, share: micros / total }))
    .sort((a, b) => b.share - a.share)
    .slice(0, top)
}

const readCpu = async (agent: Agent, port: number) => {
  const { system, user } = JSON.parse(await getOk(agent, port, "/__cpu")) as { user: number; system: number }
  return user + system
}

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const run = async () => {
  rmSync(directory, { recursive: true, force: true })
  const window = { from: 0, to: 0, completed: 1 }
  const redis = await startRedisServer()
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  const name = process.env.PROFILE_SERVER ?? "effect-redis-sessions"
  const peer = peers.find((p) => p.name === name)
  if (peer === undefined) throw new Error(`unknown server ${name}; one of ${peers.map((p) => p.name).join(", ")}`)
  const profiling = process.env.PROFILE_CPU !== "0"
  const server = await startServer(
    peer,
    `redis://127.0.0.1:${redis.port}/0`,
    profiling ? ["--cpu-prof", `--cpu-prof-dir=${directory}`] : []
  )
  try {
    const workloads = await Workloads.create(server, agent, concurrency)
    const jarFor = await workloads.jarFor(route, requests)
    if (process.env.PROFILE_GC === "1") await getOk(agent, server.port, "/__heap")
    const cpuBefore = await readCpu(agent, server.port)
    window.from = monotonicMicros()
    const result = await runBurst({
      agent,
      port: server.port,
      path: process.env.PROFILE_PATH ?? `/${route}`,
      requests,
      maxMs: 60_000,
      concurrency,
      jarFor
    })
    window.to = monotonicMicros()
    window.completed = result.completed
    const cpuPerRequest = (await readCpu(agent, server.port) - cpuBefore) / result.completed
    console.log(
      `/${route}: ${result.completed} completed, ${result.failed} failed in ${result.elapsedMs.toFixed(0)} ms, ` +
        `${cpuPerRequest.toFixed(1)} µs CPU per request`
    )
  } finally {
    server.stop()
    agent.destroy()
    // the profile is written as the server exits
    while (isRunning(server.pid)) await new Promise((resolve) => setTimeout(resolve, 50))
    await redis.stop()
  }
  if (!profiling) return
  // one profile per thread: the main thread's is the largest (tsx's loader runs in a worker)
  const main = readdirSync(directory)
    .filter((f) => f.endsWith(".cpuprofile"))
    .sort((a, b) => statSync(directory + b).size - statSync(directory + a).size)[0]!
  const profile = JSON.parse(readFileSync(directory + main, "utf8")) as Profile
  for (const [column, key, top] of [["function", functionOf, 40], ["where", placeOf, 12]] as const) {
    console.table(
      hottest(profile, window.from, window.to, top, key).map(({ micros, name, share }) => ({
        [column]: name,
        "self %": (share * 100).toFixed(1),
        "µs per request": (micros / window.completed).toFixed(2)
      }))
    )
  }
}

run().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
