import type { BarChart } from "./chart.js"
import { repetitions } from "./lost-updates.js"
import { heapBurst, heapReadings } from "./measure.js"
import { baselineOf, floorOf, ours, type Route, routes } from "./peers.js"
import type { CommandCount } from "./redis-probe.js"
import {
  aboveFloor,
  type BenchResults,
  type FloorRow,
  type FloorTarget,
  type PeerSummary,
  type RouteSummary
} from "./results.js"
import { median } from "./stats.js"

/** The session peer our session layer's CPU is compared with on every route (the leanest of the last runs). */
const leanest = "fastify-session"

const number = (value: number, digits = 0): string =>
  Number.isFinite(value)
    ? value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "—"

/** Up to 2 decimals, without trailing zeros: `2`, `1.05`. */
const short = (value: number): string => (Number.isFinite(value) ? String(Number(value.toFixed(2))) : "—")

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [header, header.map((_, i) => (i === 0 ? "---" : "---:")), ...rows].map((row) => `| ${row.join(" | ")} |`).join("\n")

const route = (peer: PeerSummary, name: Route): RouteSummary => peer.routes.get(name)!

/** `2 (get + expire)`, `1 (evalsha) + 3 in script`, `0`. */
const commands = (count: CommandCount): string => {
  if (!Number.isFinite(count.topLevel)) return "—"
  const names = Array.from(count.byName)
    .sort((a, b) => b[1] - a[1])
    .map(([name, calls]) => (short(calls) === "1" ? name : `${short(calls)}×${name}`))
  let text = short(count.topLevel)
  if (names.length > 0) text += ` (${names.join(" + ")})`
  if (count.inScript > 0) text += ` + ${short(count.inScript)} in script`
  return text
}

/** `≤ 20 µs / ≥ 0.85×`. */
export const targetText = (target: FloorTarget): string => `≤ ${target.cpuUsAbove} µs / ≥ ${target.throughputRatio}×`

/** `yes`, or `no` and which part of the target was missed. */
export const metText = (row: FloorRow): string => {
  const missed = [...(row.cpuMet ? [] : ["CPU"]), ...(row.throughputMet ? [] : ["throughput"])]
  return missed.length === 0 ? "yes" : `no (${missed.join(", ")})`
}

/** Our rows of the floor table (empty when ours or its references were not measured). */
export const floorRows = (results: BenchResults): Array<FloorRow> => {
  const summary = results.peers.find((p) => p.peer.name === ours)
  return summary === undefined ? [] : aboveFloor(results.peers, summary)
}

/**
 * Whether our session layer costs less CPU per request than {@link leanest}'s on every route (each above its own
 * framework's sessionless server), and the figures; undefined when either was not measured.
 */
export const versusLeanest = (
  results: BenchResults
): { readonly below: boolean; readonly figures: string } | undefined => {
  const mine = results.peers.find((p) => p.peer.name === ours)
  const other = results.peers.find((p) => p.peer.name === leanest)
  if (mine === undefined || other === undefined) return undefined
  const layer = (peer: PeerSummary, name: Route) => route(peer, name).layerCpuUsPerRequest
  // what the Redis round trips alone cost this framework: no session layer on it can cost less
  const floor = results.peers.find((p) => p.peer === floorOf(mine.peer))
  const baseline = results.peers.find((p) => p.peer === baselineOf(mine.peer))
  const floorAlone = (name: Route) =>
    floor === undefined || baseline === undefined
      ? ""
      : ` (the floor alone ${number(route(floor, name).cpuUsPerRequest - route(baseline, name).cpuUsPerRequest, 1)})`
  const figures = routes.map((name) =>
    `/${name} ${number(layer(mine, name), 1)} vs ${number(layer(other, name), 1)} µs${floorAlone(name)}`
  )
  return {
    below: routes.every((name) => layer(mine, name) < layer(other, name)),
    figures: `${ours} vs ${leanest}: ${figures.join(", ")}`
  }
}

/** Session peers, ours first, then in the order they were run. */
const sessionPeers = (results: BenchResults): Array<PeerSummary> =>
  results.peers.filter((p) => p.peer.sessions).sort((a, b) =>
    Number(b.peer.name === ours) - Number(a.peer.name === ours)
  )

/** Peers ranked by `metric`, best first (`lowerIsBetter`), NaN values dropped. */
const ranking = (
  peers: ReadonlyArray<PeerSummary>,
  metric: (peer: PeerSummary) => number,
  format: (value: number) => string,
  lowerIsBetter = true
): string => {
  const ranked = peers
    .map((peer) => ({ name: peer.peer.name, value: metric(peer) }))
    .filter((entry) => Number.isFinite(entry.value))
    .sort((a, b) => (lowerIsBetter ? a.value - b.value : b.value - a.value))
  if (ranked.length === 0) return "not measured"
  const best = ranked.filter((entry) => entry.value === ranked[0]!.value)
  const rest = ranked.slice(best.length)
  if (rest.length === 0 && best.length > 1) return `all equal (${format(ranked[0]!.value)})`
  const head = best.map((entry) => `**${entry.name}**`).join(" and ") + ` (${format(ranked[0]!.value)})`
  return rest.length === 0 ? head : `${head}, then ${rest.map((e) => `${e.name} (${format(e.value)})`).join(", ")}`
}

/** The chart of the session layers' own CPU cost, rendered next to the report. */
export const layerCpuChart = (results: BenchResults): BarChart => ({
  title: "Session layer CPU per request (minus the framework's no-session server)",
  yLabel: "µs per request",
  groups: routes.map((name) => `/${name}`),
  series: sessionPeers(results).map((peer) => ({
    label: peer.peer.name,
    values: routes.map((name) => route(peer, name).layerCpuUsPerRequest)
  }))
})

/** Renders `docs/benchmarks.md` (which embeds `benchmarks.svg`, written alongside). */
export const renderReport = (results: BenchResults): string => {
  const { config, machine } = results
  const sessions = sessionPeers(results)
  const all = results.peers
  const perRoute = (cell: (summary: RouteSummary) => string, peers: ReadonlyArray<PeerSummary>) =>
    table(
      ["server", ...routes.map((name) => `/${name}`)],
      peers.map((p) => [p.peer.name, ...routes.map((name) => cell(route(p, name)))])
    )
  const medianSpread = (pick: (summary: RouteSummary) => number) =>
    number(100 * median(all.flatMap((p) => routes.map((name) => pick(route(p, name)))).filter(Number.isFinite)))
  const noise = `round-to-round spread ((max - min) / median, median over all servers and routes): throughput ${
    medianSpread((s) => s.rpsSpread)
  }%, CPU per request ${medianSpread((s) => s.cpuSpread)}%`
  const failed = all.flatMap((p) =>
    routes.filter((name) => route(p, name).failed > 0).map((name) =>
      `${p.peer.name} /${name} (${route(p, name).failed})`
    )
  )
  const capped = all.flatMap((p) => routes.map((name) => route(p, name).cappedBursts)).reduce((a, b) => a + b, 0)
  const lost = (p: PeerSummary) => p.lostUpdates
  const { calibration } = results
  const out: Array<string> = []
  out.push(
    "# Benchmarks",
    "",
    "Generated by `npm run bench` (`bench/run.ts`); do not edit by hand, re-run the command instead.",
    "",
    `- Date: ${results.startedAt.toISOString().replace("T", " ").slice(0, 16)} UTC, run time ${
      number(results.durationS / 60, 1)
    } min`,
    `- Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.os}`,
    `- Noise: ${noise}`,
    `- Node ${machine.node}, Redis ${machine.redis} (private \`redis-server\`, no persistence, loopback)`,
    `- Packages: ${machine.packages.map(([name, version]) => `${name} ${version}`).join(", ")}`,
    ""
  )
  if (results.skipped.length > 0) {
    out.push("**Not measured:**", "", ...results.skipped.map((s) => `- ${s.name}: ${s.reason}`), "")
  }
  const floor = floorRows(results)
  const versus = versusLeanest(results)
  const megabytes = (bytes: number) => number(bytes / 1e6, 2)
  out.push(
    "## Cost above the floor",
    "",
    "The floor, `effect-floor`, is the `effect-none` server plus the Redis round trips a session layer cannot avoid,"
      + " sent raw through ioredis (one `Effect.tryPromise` per call, no cookie handling): `/read` 1 (HGETALL),"
      + " `/write` 2 (HGETALL, then HSET), `/login` 2 (HGETALL, then HSET + PEXPIRE + DEL in one pipeline),"
      + " `/logout` 1 (DEL). On `/none` and `/anon` it sends nothing, so these two are held to `effect-none`."
      + " Every round measures each route on every server before the next route, so a server and its floor run"
      + ` seconds apart: *above floor* is the median over the rounds of ${ours}' CPU per request minus the floor's in`
      + ` the same round, and the throughput ratio the median of ${ours}' requests per second divided by the floor's`
      + " in the same round (the two CPU columns are each server's own median, so they need not differ by exactly"
      + " that much).",
    "",
    floor.length === 0 ? "Not measured." : table(
      [
        "route",
        "floor",
        `${ours} CPU µs`,
        "floor CPU µs",
        "above floor µs",
        "throughput ratio",
        "target (µs / ratio)",
        "met?"
      ],
      floor.map((row) => [
        `/${row.route}`,
        row.reference.name,
        number(row.cpuUsPerRequest, 1),
        number(row.referenceCpuUsPerRequest, 1),
        number(row.cpuUsAbove, 1),
        number(row.throughputRatio, 2),
        targetText(row.target),
        metText(row)
      ])
    ),
    "",
    `- Session layer CPU per request below @fastify/session's on every route (each above its framework's sessionless`
      + ` server, see *Session layer cost*): ${
        versus === undefined ? "not measured" : `**${versus.below ? "yes" : "no"}** (${versus.figures})`
      }.`,
    "",
    "## Memory",
    "",
    `Heap used by ${ours} after a forced full garbage collection, before and after`
      + ` ${number(config.heapRequests)} requests of each route (a route stops after ${config.heapMaxS} s if it has not`
      + " sent them all), routes one after the other in the same process, after the measured rounds.",
    "",
    results.heap.length === 0 ? "Not measured." : table(
      ["route", "requests", "heap before (MB)", "heap after (MB)", "growth (MB)"],
      results.heap.map((sample) => {
        const growth = sample.afterBytes - sample.beforeBytes
        return [
          `/${sample.route}`,
          number(sample.completed)
          + (sample.capped ? ` (${config.heapMaxS} s cap)` : "")
          + (sample.failed > 0 ? `, ${number(sample.failed)} failed` : ""),
          megabytes(sample.beforeBytes),
          megabytes(sample.afterBytes),
          `${growth > 0 ? "+" : ""}${megabytes(growth)}`
        ]
      })
    ),
    "",
    "## Targets",
    "",
    "Redis commands are round trips per request (an EVAL/EVALSHA counts once; commands run inside its script are shown separately).",
    "",
    table(["metric", ...sessions.map((p) => p.peer.name)], [
      ["Redis commands, session untouched (`/none`)", ...sessions.map((p) => commands(route(p, "none").commands))],
      ["Redis commands, read (`/read`)", ...sessions.map((p) => commands(route(p, "read").commands))],
      ["Redis commands, read + write (`/write`)", ...sessions.map((p) => commands(route(p, "write").commands))],
      ["Redis commands, anonymous read (`/anon`)", ...sessions.map((p) => commands(route(p, "anon").commands))],
      [
        "Session layer CPU per `/read` request (µs)",
        ...sessions.map((p) => number(route(p, "read").layerCpuUsPerRequest, 1))
      ],
      ["Lost updates, 200 concurrent increments", ...sessions.map((p) => number(lost(p)?.lostIncrements ?? NaN))],
      ["Lost updates, 2 × 100 concurrent key writes", ...sessions.map((p) => number(lost(p)?.missingKeys ?? NaN))],
      ["Keys created per anonymous request", ...sessions.map((p) => short(route(p, "anon").keysPerRequest))],
      ["Bytes per stored session", ...sessions.map((p) => number(p.sessionSize?.bytes ?? NaN))]
    ]),
    "",
    "## Reading",
    "",
    `- Least session-layer CPU per \`/read\`: ${
      ranking(sessions, (p) => route(p, "read").layerCpuUsPerRequest, (v) => `${number(v, 1)} µs`)
    }.`,
    `- Least session-layer CPU per \`/write\`: ${
      ranking(sessions, (p) => route(p, "write").layerCpuUsPerRequest, (v) => `${number(v, 1)} µs`)
    }.`,
    `- Most \`/read\` requests per second: ${
      ranking(sessions, (p) => route(p, "read").requestsPerSecond, (v) => `${number(v)}/s`, false)
    }.`,
    `- Lowest \`/read\` p99 latency: ${ranking(sessions, (p) => route(p, "read").p99Ms, (v) => `${number(v, 2)} ms`)}.`,
    `- Fewest Redis commands on \`/none\`: ${
      ranking(sessions, (p) => route(p, "none").commands.topLevel, short)
    }; on \`/read\`: ${ranking(sessions, (p) => route(p, "read").commands.topLevel, short)}; on \`/write\`: ${
      ranking(sessions, (p) => route(p, "write").commands.topLevel, short)
    }.`,
    `- Fewest keys per anonymous request: ${ranking(sessions, (p) => route(p, "anon").keysPerRequest, short)}.`,
    `- Smallest stored session: ${ranking(sessions, (p) => p.sessionSize?.bytes ?? NaN, (v) => `${number(v)} B`)}.`,
    `- Fewest lost increments of one key: ${
      ranking(sessions, (p) => lost(p)?.lostIncrements ?? NaN, (v) => number(v))
    }.`,
    `- Fewest lost writes of distinct keys: ${
      ranking(sessions, (p) => lost(p)?.missingKeys ?? NaN, (v) => number(v))
    }.`,
    "",
    "## Session layer cost",
    "",
    "Server CPU per request minus the same framework's sessionless server on the same route (medians over rounds).",
    "",
    "![Session layer CPU per request](benchmarks.svg)",
    "",
    perRoute((s) => number(s.layerCpuUsPerRequest, 1), sessions),
    "",
    "## Server CPU per request (µs)",
    "",
    perRoute((s) => number(s.cpuUsPerRequest, 1), all),
    "",
    "## Throughput (requests/s)",
    "",
    perRoute((s) => number(s.requestsPerSecond), all),
    "",
    "## Latency p50 / p99 (ms)",
    "",
    perRoute((s) => `${number(s.p50Ms, 2)} / ${number(s.p99Ms, 2)}`, all),
    "",
    "## Redis commands per request",
    "",
    perRoute((s) => commands(s.commands), all),
    "",
    "## Storage and concurrent writes",
    "",
    table(
      [
        "server",
        "keys per /anon request",
        "bytes per session (keys)",
        "lost of 200 increments",
        "missing of 2 × 100 keys",
        "writes rejected"
      ],
      sessions.map((p) => [
        p.peer.name,
        short(route(p, "anon").keysPerRequest),
        p.sessionSize === undefined ? "—" : `${number(p.sessionSize.bytes)} (${p.sessionSize.keys})`,
        number(lost(p)?.lostIncrements ?? NaN),
        number(lost(p)?.missingKeys ?? NaN),
        number(lost(p)?.rejected ?? NaN)
      ])
    ),
    "",
    "## Method",
    "",
    "- Servers: each in its own Node child process (`bench/servers/<name>.ts`, run with `node --import tsx`, `NODE_ENV=production`),"
      + " same routes, short text bodies. `express-session`: express-session + connect-redis on node-redis,"
      + " `resave: false, saveUninitialized: false`. `fastify-session`: @fastify/cookie + @fastify/session,"
      + " `saveUninitialized: false, rolling: false`, connect-redis RedisStore on node-redis as store."
      + " `effect-redis-sessions`: this library on an @effect/platform-node server; `effect-none` the same server without it;"
      + " `effect-floor` the same server sending raw through ioredis the commands listed under *Cost above the floor*."
      + " Express servers have `etag` and `x-powered-by` disabled (fastify and Effect send neither by default).",
    "- Routes: `/none` carries a session cookie and ignores it; `/read` reads `count`; `/write` reads `count` and writes"
      + " `count + 1`; `/anon` reads `count` without cookie; `/login` regenerates the id then writes `user`;"
      + " `/logout` destroys the session. Sessionless servers get a cookie of the same size.",
    `- Cookies: \`/none\`, \`/read\`, \`/write\` use one session per client worker; \`/login\` chains each worker's cookie`
      + " (every login regenerates a live session); `/logout` consumes a fresh session per request, created before the burst.",
    `- Load: generated in the harness process with \`http.Agent({ keepAlive: true })\`, ${config.concurrency} requests in flight,`
      + ` on loopback. First an unmeasured warm-up of ${3 * config.warmup} requests per route and server, then`
      + ` ${results.roundsRun} rounds${
        results.roundsRun < config.rounds ? ` (of ${config.rounds}: the ${config.budgetS} s time budget ran out)` : ""
      }; each round runs every server (rotating the order) and every route:`
      + ` a warm-up of ${config.warmup} requests, then a measured burst of ${config.requests} requests (capped at ${config.maxMs} ms).`
      + ` Tables show medians over rounds. The load generator shares the ${machine.cores} cores with the servers and Redis, so`
      + " throughput and latency move with machine noise more than CPU per request does."
      + ` ${capped} of ${all.length * routes.length * results.roundsRun} measured bursts hit the time cap`
      + " (their figures are per completed request like the others).",
    "- CPU: each server reports `process.cpuUsage()` (user + system) on a private `/__cpu` route, read right before and"
      + " after the measured burst; divided by the completed requests. The session layer cost subtracts the same framework's"
      + " `-none` server on the same route; the cost above the floor subtracts `effect-floor` (`effect-none` on `/none`"
      + " and `/anon`).",
    `- Memory: ${ours}' heap is \`process.memoryUsage().heapUsed\` right after \`gc()\` (servers run with`
      + ` \`--expose-gc\`), read on a private \`/__heap\` route (lowest of ${heapReadings} readings, as the first`
      + " collection after a burst leaves a few hundred KB behind) before and after each route's requests, sent in bursts of"
      + ` ${number(heapBurst)} with the cookies of the measured bursts (\`/logout\` creates the fresh sessions of each`
      + " burst through `/set/pool` first, so these requests are in the figures too).",
    `- Redis commands: each server uses its own Redis database; after the rounds (steady state, scripts`
      + ` already cached), ${config.countedRequests} sequential requests per route are watched with \`MONITOR\``
      + ", between two `ECHO` markers on that database. Commands with source `lua` ran inside a script and are"
      + " not round trips; pipelined commands (the floor's `/login` write) are counted one by one although they share"
      + " one round trip. Checked first on a known case (one `EVAL` running SET and GET, then one GET):"
      + ` MONITOR saw ${calibration.monitor.topLevel} commands + ${calibration.monitor.inScript} in script,`
      + ` while \`INFO commandstats\` summed ${calibration.commandstatsCalls} calls (it counts script-internal commands too, hence not used).`,
    "- Keys per anonymous request: `DBSIZE` of the server's database before and after the measured `/anon` burst.",
    "- Bytes per session: one session holding `user: \"alice\", count: 42, roles: [\"admin\"]` (route `/seed`); sum of"
      + " `MEMORY USAGE <key> SAMPLES 0` over the keys it added.",
    `- Lost updates (median of ${repetitions} runs, fresh sessions each): (a) 200 concurrent \`/write\` on one session`
      + ", then `/get`: acknowledged increments minus the final"
      + " count; (b) two concurrent streams of 100 `/set/a<i>` and `/set/b<i>` on one session, then `/get`: acknowledged keys"
      + " missing. Requests answered with an error status are reported as rejected, not lost.",
    failed.length > 0
      ? `- Failed requests during the bursts: ${failed.join(", ")}.`
      : "- No request failed during the bursts.",
    ""
  )
  return out.join("\n")
}
