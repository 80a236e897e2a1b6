import { Agent } from "node:http"
import type { CookieJar } from "./cookie-jar.js"
import { get, getOk } from "./http.js"
import type { ServerProcess } from "./server-process.js"
import { median } from "./stats.js"
import { newSession } from "./workloads.js"

/**
 * Outcome of the two lost-update tests on one server (medians over {@link repetitions} runs, since the
 * interleaving differs every time). A lost update is a write answered 2xx but not stored.
 */
export interface LostUpdates {
  /** (a) 200 concurrent `/write` on one session: acknowledged increments minus the final `count`. */
  readonly lostIncrements: number
  /** (b) two concurrent streams of 100 `/set/<key>` on one session: acknowledged keys missing from `/get`. */
  readonly missingKeys: number
  /** Writes of either test answered with an error status, over all runs (not counted as lost). */
  readonly rejected: number
}

const increments = 200
const streamLength = 100
/** Runs of both tests per server. */
export const repetitions = 3

/** Runs both lost-update tests against `server` {@link repetitions} times, each on fresh sessions. */
export const measureLostUpdates = async (server: ServerProcess): Promise<LostUpdates> => {
  const runs: Array<LostUpdates> = []
  for (let i = 0; i < repetitions; i++) runs.push(await measureOnce(server))
  return {
    lostIncrements: median(runs.map((run) => run.lostIncrements)),
    missingKeys: median(runs.map((run) => run.missingKeys)),
    rejected: runs.reduce((sum, run) => sum + run.rejected, 0)
  }
}

const measureOnce = async (server: ServerProcess): Promise<LostUpdates> => {
  const agent = new Agent({ keepAlive: true })
  let rejected = 0
  const write = async (path: string, jar: CookieJar): Promise<boolean> => {
    const reply = await get(agent, server.port, path, jar)
    const ok = reply.status >= 200 && reply.status < 300
    if (!ok) rejected++
    return ok
  }
  try {
    const counter = await newSession(server, agent, "/set/init")
    const acknowledged = await Promise.all(Array.from({ length: increments }, () => write("/write", counter)))
    const counted = sessionData(await getOk(agent, server.port, "/get", counter))
    const finalCount = typeof counted.count === "number" ? counted.count : 0
    const lostIncrements = acknowledged.filter(Boolean).length - finalCount

    const shared = await newSession(server, agent, "/set/init")
    const written: Array<string> = []
    const stream = async (prefix: string) => {
      for (let i = 0; i < streamLength; i++) {
        if (await write(`/set/${prefix}${i}`, shared)) written.push(`${prefix}${i}`)
      }
    }
    await Promise.all([stream("a"), stream("b")])
    const stored = sessionData(await getOk(agent, server.port, "/get", shared))
    const missingKeys = written.filter((key) => !(key in stored)).length
    return { lostIncrements, missingKeys, rejected }
  } finally {
    agent.destroy()
  }
}

const sessionData = (body: string): Record<string, unknown> => {
  const parsed: unknown = JSON.parse(body)
  if (typeof parsed !== "object" || parsed === null) throw new Error(`/get did not return an object: ${body}`)
  return parsed as Record<string, unknown>
}
