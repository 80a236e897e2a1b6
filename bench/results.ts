import type { BenchConfig } from "./config.js"
import type { LostUpdates } from "./lost-updates.js"
import type { Machine } from "./machine.js"
import type { HeapSample, Sample, SessionSize } from "./measure.js"
import { baselineOf, floorOf, type Peer, type Route, routes } from "./peers.js"
import type { Calibration, CommandCount } from "./redis-probe.js"
import { median } from "./stats.js"

/** Medians over the rounds of one route on one server, plus its command count. */
export interface RouteSummary {
  readonly requestsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly cpuUsPerRequest: number
  /** `cpuUsPerRequest` minus the same framework's sessionless baseline: the session layer's own cost. */
  readonly layerCpuUsPerRequest: number
  readonly keysPerRequest: number
  /** (max - min) / median of requests per second over the rounds. */
  readonly rpsSpread: number
  /** (max - min) / median of CPU per request over the rounds. */
  readonly cpuSpread: number
  /** Failed requests summed over all rounds. */
  readonly failed: number
  /** Measured bursts that hit their time limit before sending all their requests. */
  readonly cappedBursts: number
  readonly commands: CommandCount
  /** The sample of every round, in round order. */
  readonly samples: ReadonlyArray<Sample>
}

/** Everything measured on one server. */
export interface PeerSummary {
  readonly peer: Peer
  readonly routes: ReadonlyMap<Route, RouteSummary>
  /** Session peers only. */
  readonly sessionSize: SessionSize | undefined
  /** Session peers only. */
  readonly lostUpdates: LostUpdates | undefined
}

/** The whole run, as the report renders it. */
export interface BenchResults {
  readonly startedAt: Date
  readonly durationS: number
  readonly config: BenchConfig
  /** Rounds actually run (fewer than `config.rounds` when the time budget ran out). */
  readonly roundsRun: number
  readonly machine: Machine
  readonly calibration: Calibration
  readonly peers: ReadonlyArray<PeerSummary>
  /** Heap of `effect-redis-sessions` around many requests of each route (empty when it was not measured). */
  readonly heap: ReadonlyArray<HeapSample>
  /** Servers that could not be measured, with the reason. */
  readonly skipped: ReadonlyArray<{ readonly name: string; readonly reason: string }>
}

/** What was recorded for one server before summarising. */
export interface PeerRecord {
  readonly peer: Peer
  readonly samples: ReadonlyMap<Route, ReadonlyArray<Sample>>
  readonly commands: ReadonlyMap<Route, CommandCount>
  readonly sessionSize: SessionSize | undefined
  readonly lostUpdates: LostUpdates | undefined
}

/**
 * Reduces the per-round samples of every server to medians and subtracts each framework's baseline CPU;
 * `requests` is the size of a measured burst, to tell which bursts the time limit cut short.
 */
export const summarize = (records: ReadonlyArray<PeerRecord>, requests: number): Array<PeerSummary> => {
  const medianCpu = (record: PeerRecord, route: Route) =>
    median((record.samples.get(route) ?? []).map((sample) => sample.cpuUsPerRequest))
  return records.map((record) => {
    const baseline = records.find((other) => other.peer === baselineOf(record.peer))
    const summaries = new Map<Route, RouteSummary>()
    for (const route of routes) {
      const samples = record.samples.get(route) ?? []
      const of = (pick: (sample: Sample) => number) => median(samples.map(pick))
      const spread = (pick: (sample: Sample) => number) => {
        const values = samples.map(pick)
        return (Math.max(...values) - Math.min(...values)) / median(values)
      }
      const cpu = medianCpu(record, route)
      summaries.set(route, {
        requestsPerSecond: of((sample) => sample.requestsPerSecond),
        p50Ms: of((sample) => sample.p50Ms),
        p99Ms: of((sample) => sample.p99Ms),
        cpuUsPerRequest: cpu,
        layerCpuUsPerRequest: baseline === undefined ? NaN : cpu - medianCpu(baseline, route),
        keysPerRequest: of((sample) => sample.keysPerRequest),
        rpsSpread: spread((sample) => sample.requestsPerSecond),
        cpuSpread: spread((sample) => sample.cpuUsPerRequest),
        failed: samples.reduce((sum, sample) => sum + sample.failed, 0),
        cappedBursts: samples.filter((sample) => sample.completed + sample.failed < requests).length,
        commands: record.commands.get(route) ?? { topLevel: NaN, inScript: NaN, byName: new Map() },
        samples
      })
    }
    return {
      peer: record.peer,
      routes: summaries,
      sessionSize: record.sessionSize,
      lostUpdates: record.lostUpdates
    }
  })
}

/**
 * What a route of a session server is held to, against its floor or, on the routes where the floor sends no Redis
 * command, against the framework's sessionless server.
 */
export interface FloorTarget {
  readonly against: "floor" | "baseline"
  /** At least this fraction of the reference's requests per second... */
  readonly throughputRatio: number
  /** ...and at most this many µs of CPU per request above the reference's. */
  readonly cpuUsAbove: number
}

/** The targets of the request path, per route. */
export const floorTargets: { readonly [route in Route]: FloorTarget } = {
  none: { against: "baseline", throughputRatio: 0.9, cpuUsAbove: 10 },
  read: { against: "floor", throughputRatio: 0.85, cpuUsAbove: 20 },
  write: { against: "floor", throughputRatio: 0.7, cpuUsAbove: 45 },
  anon: { against: "baseline", throughputRatio: 0.9, cpuUsAbove: 10 },
  login: { against: "floor", throughputRatio: 0.6, cpuUsAbove: 80 },
  logout: { against: "floor", throughputRatio: 0.85, cpuUsAbove: 20 }
}

/** One route of a session server next to the server its target refers to, medians of the same run. */
export interface FloorRow {
  readonly route: Route
  readonly reference: Peer
  readonly target: FloorTarget
  readonly cpuUsPerRequest: number
  readonly referenceCpuUsPerRequest: number
  /** The median over the rounds of the round's CPU per request minus the reference's in the same round. */
  readonly cpuUsAbove: number
  /** The median over the rounds of the round's requests per second divided by the reference's. */
  readonly throughputRatio: number
  readonly cpuMet: boolean
  readonly throughputMet: boolean
}

/** `summary` route by route against its floor (routes whose reference was not measured are left out). */
export const aboveFloor = (summaries: ReadonlyArray<PeerSummary>, summary: PeerSummary): Array<FloorRow> => {
  const floor = floorOf(summary.peer)
  if (floor === undefined) return []
  return routes.flatMap((route) => {
    const target = floorTargets[route]
    const reference = target.against === "floor" ? floor : baselineOf(summary.peer)
    const measured = summaries.find((other) => other.peer === reference)?.routes.get(route)
    if (measured === undefined) return []
    const own = summary.routes.get(route)!
    const rounds = own.samples.map((sample, i) => [sample, measured.samples[i]] as const)
      .filter((pair): pair is readonly [Sample, Sample] => pair[1] !== undefined)
    const cpuUsAbove = median(rounds.map(([mine, theirs]) => mine.cpuUsPerRequest - theirs.cpuUsPerRequest))
    const throughputRatio = median(rounds.map(([mine, theirs]) => mine.requestsPerSecond / theirs.requestsPerSecond))
    return [{
      route,
      reference,
      target,
      cpuUsPerRequest: own.cpuUsPerRequest,
      referenceCpuUsPerRequest: measured.cpuUsPerRequest,
      cpuUsAbove,
      throughputRatio,
      cpuMet: cpuUsAbove <= target.cpuUsAbove,
      throughputMet: throughputRatio >= target.throughputRatio
    }]
  })
}
