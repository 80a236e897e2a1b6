/** A server under test. */
export interface Peer {
  /** Also the file name under `bench/servers/`. */
  readonly name: string
  readonly framework: "express" | "fastify" | "effect"
  /** False for the servers without a session layer (the `-none` baselines and the floor). */
  readonly sessions: boolean
  /**
   * True for the floor of its framework's session server: the sessionless server plus, raw, the Redis round trips
   * a session layer cannot avoid.
   */
  readonly floor?: true
  /** Redis database index reserved for this peer, so keys and commands can be attributed to it. */
  readonly db: number
}

/** Every server, baselines first within each framework. */
export const peers: ReadonlyArray<Peer> = [
  { name: "express-none", framework: "express", sessions: false, db: 1 },
  { name: "express-session", framework: "express", sessions: true, db: 2 },
  { name: "fastify-none", framework: "fastify", sessions: false, db: 3 },
  { name: "fastify-session", framework: "fastify", sessions: true, db: 4 },
  { name: "effect-none", framework: "effect", sessions: false, db: 5 },
  { name: "effect-floor", framework: "effect", sessions: false, floor: true, db: 7 },
  { name: "effect-redis-sessions", framework: "effect", sessions: true, db: 6 }
]

/** The peer this project is about. */
export const ours = "effect-redis-sessions"

/** The sessionless server of the same framework, whose cost is subtracted to isolate a session layer's own cost. */
export const baselineOf = (peer: Peer): Peer =>
  peers.find((p) => p.framework === peer.framework && !p.sessions && p.floor !== true)!

/** The floor of a session server (only `effect-redis-sessions` has one), or undefined. */
export const floorOf = (peer: Peer): Peer | undefined =>
  peer.sessions ? peers.find((p) => p.framework === peer.framework && p.floor === true) : undefined

/** Routes measured under load, in report order. */
export const routes = ["none", "read", "write", "anon", "login", "logout"] as const

/** A measured route. */
export type Route = typeof routes[number]
