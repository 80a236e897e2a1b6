import { Redis } from "ioredis"

/** Redis commands observed while an action ran, for one database. */
export interface CommandCount {
  /** Commands sent by clients (an EVAL/EVALSHA counts once): the round trips a session layer costs. */
  readonly topLevel: number
  /** Commands run inside Lua scripts (reported by MONITOR with source `lua`). */
  readonly inScript: number
  /** Top-level command names with their counts, e.g. `get: 20, expire: 20`. */
  readonly byName: ReadonlyMap<string, number>
}

/** The known case the command counting is checked against before any server is measured. */
export interface Calibration {
  /** MONITOR count of `EVAL` (running SET and GET inside) + `GET`: must be 2 top-level and 2 in-script. */
  readonly monitor: CommandCount
  /** `INFO commandstats` sum of calls for the same case, which includes the in-script calls: 4. */
  readonly commandstatsCalls: number
}

interface Window {
  readonly db: string
  topLevel: number
  inScript: number
  readonly byName: Map<string, number>
}

const markerTimeoutMs = 5_000
/** Time given to a server's late (after-response) commands before the end marker is sent. */
const settleMs = 50
const calibrationDb = 15

/**
 * The harness' view into its private Redis: per-database admin connections and a MONITOR connection that
 * attributes every command to a database (each server owns one) and tells script-internal commands apart.
 */
export class RedisProbe {
  private readonly clients = new Map<number, Redis>()
  private window: Window | undefined
  private readonly waiting = new Map<string, () => void>()

  private constructor(private readonly port: number, private readonly monitor: Redis) {
    monitor.on("monitor", (_time: string, args: Array<string>, source: string, database: string) => {
      const [name = "", first] = args
      if (name.toLowerCase() === "echo" && first !== undefined && this.waiting.has(first)) {
        this.waiting.get(first)!()
        return
      }
      const window = this.window
      if (window === undefined || database !== window.db) return
      if (source === "lua") {
        window.inScript++
      } else {
        window.topLevel++
        const key = name.toLowerCase()
        window.byName.set(key, (window.byName.get(key) ?? 0) + 1)
      }
    })
  }

  /** Connects to the Redis on `port` and enters MONITOR mode on a dedicated connection. */
  static async open(port: number): Promise<RedisProbe> {
    const monitor = await new Redis({ host: "127.0.0.1", port, lazyConnect: true }).monitor()
    return new RedisProbe(port, monitor)
  }

  private client(db: number): Redis {
    let client = this.clients.get(db)
    if (client === undefined) {
      client = new Redis({ host: "127.0.0.1", port: this.port, db })
      this.clients.set(db, client)
    }
    return client
  }

  /** Number of keys in database `db`. */
  dbSize(db: number): Promise<number> {
    return this.client(db).dbsize()
  }

  /** All keys of database `db` (only used while it holds a handful). */
  keys(db: number): Promise<Array<string>> {
    return this.client(db).keys("*")
  }

  /** Sum of `MEMORY USAGE <key> SAMPLES 0` (exact) over `keys` of database `db`, in bytes. */
  async memoryUsage(db: number, keys: ReadonlyArray<string>): Promise<number> {
    let total = 0
    for (const key of keys) total += Number(await this.client(db).call("MEMORY", "USAGE", key, "SAMPLES", "0"))
    return total
  }

  /**
   * Counts the commands database `db` receives while `action` runs. An `ECHO` marker on that database before and
   * after delimits the window (Redis executes and monitors commands in one order, so nothing is missed or counted
   * twice); markers, other databases and the harness' own admin commands are left out.
   */
  async countCommands(db: number, action: () => Promise<void>): Promise<CommandCount> {
    await this.marker(db)
    const window: Window = { db: String(db), topLevel: 0, inScript: 0, byName: new Map() }
    this.window = window
    try {
      await action()
      await new Promise((resolve) => setTimeout(resolve, settleMs))
      await this.marker(db)
    } finally {
      this.window = undefined
    }
    return window
  }

  /** Sends a unique `ECHO` on database `db` and waits until MONITOR has reported it. */
  private async marker(db: number): Promise<void> {
    const token = `bench-marker-${Math.random().toString(36).slice(2)}`
    const seen = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("MONITOR did not report the marker in time")), markerTimeoutMs)
      this.waiting.set(token, () => {
        clearTimeout(timer)
        this.waiting.delete(token)
        resolve()
      })
    })
    await this.client(db).echo(token)
    await seen
  }

  /**
   * Runs the known case (one EVAL that calls SET and GET, then one GET) and returns what MONITOR and
   * `INFO commandstats` made of it, so the harness can refuse to run with a counting method that is off.
   */
  async calibrate(): Promise<Calibration> {
    const client = this.client(calibrationDb)
    await client.config("RESETSTAT")
    const monitor = await this.countCommands(calibrationDb, async () => {
      await client.eval("redis.call('SET', KEYS[1], '1') return redis.call('GET', KEYS[1])", 1, "calibration")
      await client.get("calibration")
    })
    const stats = await client.info("commandstats")
    const excluded = new Set(["info", "config|resetstat", "echo"])
    let commandstatsCalls = 0
    for (const match of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (!excluded.has(match[1]!)) commandstatsCalls += Number(match[2])
    }
    await client.del("calibration")
    return { monitor, commandstatsCalls }
  }

  /** Closes every connection. */
  close(): void {
    this.monitor.disconnect()
    for (const client of this.clients.values()) client.disconnect()
  }
}
