import type { Agent } from "node:http"
import { CookieJar } from "./cookie-jar.js"
import { getOk } from "./http.js"
import { type JarFor, runBurst } from "./load.js"
import type { Route } from "./peers.js"
import type { ServerProcess } from "./server-process.js"

/**
 * Which cookies the requests of each route carry, for one server:
 * - `none`, `read`, `write`: one long-lived session per worker (so concurrent requests never share a session);
 * - `anon`: no cookie at all;
 * - `login`: per-worker jars that follow `Set-Cookie`, so every login regenerates the live session of the previous one;
 * - `logout`: a fresh session per request, created before the burst.
 * Sessionless servers get a cookie of realistic size everywhere a session server gets a real one.
 */
export class Workloads {
  private constructor(
    private readonly server: ServerProcess,
    private readonly agent: Agent,
    private readonly sessionJars: ReadonlyArray<CookieJar>,
    private readonly loginJars: ReadonlyArray<CookieJar>
  ) {}

  /** Creates the per-worker sessions of `server` (a `/write`, and a `/login` for the login jars, without cookie). */
  static async create(server: ServerProcess, agent: Agent, workers: number): Promise<Workloads> {
    const sessionJars = await Promise.all(Array.from({ length: workers }, () => newSession(server, agent, "/write")))
    const loginJars = await Promise.all(Array.from({ length: workers }, () => newSession(server, agent, "/login")))
    return new Workloads(server, agent, sessionJars, loginJars)
  }

  /** The cookie choice for `requests` requests on `route` (creating the sessions `logout` consumes). */
  async jarFor(route: Route, requests: number): Promise<JarFor> {
    switch (route) {
      case "none":
      case "read":
      case "write":
        return (worker) => this.sessionJars[worker]
      case "anon":
        return () => undefined
      case "login":
        return (worker) => this.loginJars[worker]
      case "logout": {
        const pool = await this.sessionPool(requests)
        return (_worker, index) => pool[index]
      }
    }
  }

  private async sessionPool(size: number): Promise<Array<CookieJar>> {
    if (!this.server.peer.sessions) return Array.from({ length: size }, dummyJar)
    const pool = Array.from({ length: size }, () => new CookieJar())
    const result = await runBurst({
      agent: this.agent,
      port: this.server.port,
      path: "/set/pool",
      requests: size,
      maxMs: 30_000,
      concurrency: this.sessionJars.length,
      jarFor: (_worker, index) => pool[index]
    })
    if (result.failed > 0) throw new Error(`${this.server.peer.name}: creating sessions failed: ${result.firstError}`)
    return pool
  }
}

/** A sessionless server's stand-in for a session cookie (same size as express-session's signed id). */
const dummyJar = (): CookieJar => CookieJar.of("sid", "s%3A" + "x".repeat(32) + "." + "y".repeat(43))

/** A jar holding a fresh session of `server`, created by requesting `path` without cookie. */
export const newSession = async (server: ServerProcess, agent: Agent, path: string): Promise<CookieJar> => {
  if (!server.peer.sessions) return dummyJar()
  const jar = new CookieJar()
  await getOk(agent, server.port, path, jar)
  if (jar.isEmpty) throw new Error(`${server.peer.name}: GET ${path} without cookie set no cookie`)
  return jar
}
