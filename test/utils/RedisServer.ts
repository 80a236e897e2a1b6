/**
 * Test harness that runs real `redis-server` processes (standalone, Cluster, Sentinel) as children of
 * the test process, so integration tests can kill, pause and restart them.
 *
 * - Every spawned process is SIGKILLed, and its temp directory removed, when the Node process exits (or
 *   receives SIGINT/SIGTERM/SIGHUP), so no server outlives a test run. Nothing here ever touches a
 *   process it did not start.
 * - `REDIS_URL`: when set, `startRedisServer()` does not spawn anything and returns a handle for that
 *   existing server instead. Its `pid`, `kill()`, `pause()`, `resume()` and `restart()` throw a
 *   "not available with REDIS_URL" error, `stop()` only closes the harness's connections, and a
 *   `CommandRecorder` sees every client of that server (other test files included). Cluster and Sentinel
 *   setups always spawn their own processes.
 * - `CommandRecorder` tells the harness's own connections apart by their local `address:port`, which
 *   MONITOR prints; this requires that the server sees the real client address (no NAT in between).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Redis } from "ioredis"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { constants as fsConstants, rmSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { isMainThread } from "node:worker_threads"

const LOCALHOST = "127.0.0.1"
const START_TIMEOUT_MS = 5_000
const PROBE_TIMEOUT_MS = 1_000
const SETTLE_QUIET_MS = 100
const SETTLE_LIMIT_MS = 2_000
const SOCKET_RELEASE_GRACE_MS = 5_000
const CLUSTER_SLOTS = 16_384
const CLUSTER_BUS_OFFSET = 10_000
const LOG_FILE = "redis.log"
/** Receives stdout and stderr, where Redis reports errors found before it opened its log file. */
const OUTPUT_FILE = "redis.out"

/** A host/port pair, as ioredis `Cluster` seeds and Sentinel addresses expect. */
export interface Address {
  readonly host: string
  readonly port: number
}

/** One command a client sent, as MONITOR reported it. */
export interface RecordedCommand {
  /** Upper-cased command name, e.g. `"EVALSHA"`. */
  readonly name: string
  /** Arguments decoded as UTF-8 (binary values come out lossy). */
  readonly args: ReadonlyArray<string>
}

/**
 * Records the top-level commands that clients other than the harness send to one server, via MONITOR.
 * Commands run inside Lua scripts and functions are left out, and so are admin-flagged commands
 * (CONFIG, DEBUG, ...), which Redis never shows to MONITOR. Connection handshakes (HELLO, CLIENT SETINFO,
 * INFO) are recorded: let a client become ready, then `settle()` and `reset()` before the measured part.
 */
export interface CommandRecorder {
  /** The commands recorded since the start or the last `reset()`, in the order the server ran them. */
  commands(): ReadonlyArray<RecordedCommand>
  count(): number
  reset(): void
  /**
   * Resolves once no command arrived for ~100 ms and MONITOR has caught up with the server; call it
   * before asserting, as a fire-and-forget command may still be in flight. Rejects after 2 s.
   */
  settle(): Promise<void>
  close(): Promise<void>
}

/** A `redis-server` process started by the harness (or the server named by `REDIS_URL`). */
export interface RedisServer {
  readonly host: string
  readonly port: number
  /** `redis://127.0.0.1:<port>` (or `REDIS_URL` verbatim). */
  readonly url: string
  /** Pid of the current process; changes on `restart()`. */
  readonly pid: number
  /** SIGKILLs the process and waits for it to exit. */
  kill(): Promise<void>
  /** SIGSTOPs the process: connections stay open, commands hang until `resume()`. */
  pause(): void
  /** SIGCONTs a paused process. */
  resume(): void
  /** Kills the process if it still runs, then starts it again on the same port and directory. */
  restart(): Promise<void>
  /** Closes the harness's connections, kills the process and removes its directory. Idempotent. */
  stop(): Promise<void>
  /**
   * A shared ioredis connection for set-up and inspection (connectTimeout 1000, commandTimeout 2000,
   * maxRetriesPerRequest 1), created on first use and closed by `stop()`. Never seen by recorders.
   */
  admin(): Redis
  /** Starts recording commands; the recorder ends when the process dies or `stop()` runs. */
  recordCommands(): Promise<CommandRecorder>
}

/** A Redis Cluster of harness-owned processes on 127.0.0.1. */
export interface RedisCluster {
  readonly nodes: ReadonlyArray<RedisServer>
  readonly seeds: ReadonlyArray<Address>
  /** The running nodes whose ROLE is master. */
  masters(): Promise<ReadonlyArray<RedisServer>>
  /** A running node whose ROLE says it replicates `master`. */
  replicaOf(master: RedisServer): Promise<RedisServer | undefined>
  /** Moves `slots` slots (with their keys) with `redis-cli --cluster reshard`, then waits until healthy. */
  reshard(options: { readonly from: RedisServer; readonly to: RedisServer; readonly slots: number }): Promise<void>
  /**
   * Waits until every running node reports `cluster_state:ok`, knows every node and all slots, no slot
   * is migrating, every running replica's link is up, and all running nodes agree on the topology.
   */
  waitForHealthy(timeoutMs?: number): Promise<void>
  stop(): Promise<void>
}

/** One master, one replica and three Sentinels, all harness-owned. */
export interface RedisSentinelSetup {
  readonly masterName: string
  /** The process started as master; after `failover()` use `currentMaster()`. */
  readonly master: RedisServer
  /** The process started as replica. */
  readonly replica: RedisServer
  readonly sentinels: ReadonlyArray<RedisServer>
  readonly sentinelAddresses: ReadonlyArray<Address>
  /** `SENTINEL get-master-addr-by-name`, asked of the first running Sentinel that answers. */
  currentMaster(): Promise<Address>
  /**
   * `SENTINEL FAILOVER`, then waits until every Sentinel reports a new master address and that node
   * reports role master. The old master is demoted by the Sentinels some seconds later.
   */
  failover(): Promise<void>
  stop(): Promise<void>
}

// ---------------------------------------------------------------------------------------------------
// Process-wide state, shared by every copy of this module that a test runner loads into one process.

interface HarnessGlobals {
  readonly children: Set<ChildProcess>
  /** Directories of servers not stopped yet. */
  readonly dirs: Set<string>
  /** Local `address:port` of harness connections, mapped to a token that identifies the registration. */
  readonly sockets: Map<string, symbol>
}

const globals: HarnessGlobals = (() => {
  const key = Symbol.for("effect-redis-sessions/test/RedisServer")
  const holder = globalThis as unknown as Record<symbol, HarnessGlobals | undefined>
  const existing = holder[key]
  if (existing !== undefined) return existing
  const created: HarnessGlobals = { children: new Set(), dirs: new Set(), sockets: new Map() }
  holder[key] = created
  const cleanUp = () => {
    for (const child of created.children) {
      child.kill("SIGCONT")
      child.kill("SIGKILL")
    }
    for (const dir of created.dirs) rmSync(dir, { recursive: true, force: true })
  }
  process.on("exit", cleanUp)
  if (isMainThread) {
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      process.once(signal, () => {
        cleanUp()
        // Our listener disabled the default action; re-raise unless someone else handles the signal.
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
      })
    }
  }
  return created
})()

const trackSocket = (socket: net.Socket): void => {
  const address = `${socket.localAddress}:${socket.localPort}`
  const token = Symbol(address)
  globals.sockets.set(address, token)
  // MONITOR lines can arrive after the socket closed, so forget the address only a while later.
  socket.once("close", () => {
    setTimeout(() => {
      if (globals.sockets.get(address) === token) globals.sockets.delete(address)
    }, SOCKET_RELEASE_GRACE_MS).unref()
  })
}

// ---------------------------------------------------------------------------------------------------
// Small utilities

/** Thrown inside a `waitFor` probe to stop waiting at once. */
class GiveUp extends Error {}

/** The server could not bind its port; a fresh port may work. */
class PortInUse extends GiveUp {}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(ms, 0)))

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * Polls `probe` until it returns `undefined` (ready) or `timeoutMs` passed. A string result or a thrown
 * error is the reason it is not ready yet, quoted in the timeout error; a thrown `GiveUp` ends the wait.
 */
const waitFor = async (what: string, timeoutMs: number, probe: () => Promise<string | undefined>) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let reason: string
    try {
      const result = await probe()
      if (result === undefined) return
      reason = result
    } catch (error) {
      if (error instanceof GiveUp) throw error
      reason = errorMessage(error)
    }
    if (Date.now() >= deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what} (last: ${reason})`)
    await sleep(50)
  }
}

const withTimeout = <A>(promise: Promise<A>, ms: number, message: string): Promise<A> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), Math.max(ms, 0))
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      }
    )
  })

const runTool = (file: string, args: ReadonlyArray<string>, timeoutMs: number): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: "SIGKILL" }, (error, stdout, stderr) => {
      if (error === null) return resolve(stdout)
      const why = error.killed ? `killed after ${timeoutMs} ms` : error.message
      reject(new Error(`${path.basename(file)} ${args.join(" ")} failed (${why}):\n${stdout}${stderr}`))
    })
  })

const listenOnce = (port: number): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(port, LOCALHOST, () => {
      const { port: bound } = server.address() as net.AddressInfo
      server.close(() => resolve(bound))
    })
  })

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export const freePort = (): Promise<number> => listenOnce(0)

/** A free port P whose cluster bus port P + 10000 is free as well. */
const freeClusterPort = async (): Promise<number> => {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await freePort()
    const bus = port + CLUSTER_BUS_OFFSET
    if (bus <= 65_535 && (await listenOnce(bus).then(() => true, () => false))) return port
  }
  throw new Error("Could not find a free port P with a free cluster bus port P+10000 in 100 attempts")
}

const binaries = new Map<string, Promise<string | undefined>>()

const locateBinary = async (name: string): Promise<string | undefined> => {
  const dirs = [...(process.env["PATH"] ?? "").split(path.delimiter), "/usr/local/bin", "/usr/bin", "/usr/sbin"]
  for (const dir of dirs.filter((dir) => dir !== "")) {
    const candidate = path.join(dir, name)
    try {
      await fs.access(candidate, fsConstants.X_OK)
      return candidate
    } catch {
      continue
    }
  }
  return undefined
}

const requireBinary = async (name: string): Promise<string> => {
  let lookup = binaries.get(name)
  if (lookup === undefined) {
    lookup = locateBinary(name)
    binaries.set(name, lookup)
  }
  const file = await lookup
  if (file === undefined) {
    throw new Error(
      `\`${name}\` was not found on PATH. Install Redis (Debian: \`apt-get install redis-server\`) ` +
        "or set REDIS_URL to run the standalone-server tests against an existing server."
    )
  }
  return file
}

// ---------------------------------------------------------------------------------------------------
// A minimal RESP2 client for probes and MONITOR, independent of ioredis' reconnect and queueing logic.

interface Endpoint extends Address {
  readonly username?: string | undefined
  readonly password?: string | undefined
  readonly db?: number | undefined
}

type Reply = string | number | null | Error | ReadonlyArray<Reply>

const encode = (commands: ReadonlyArray<ReadonlyArray<string>>): string =>
  commands
    .map((args) => `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join("")}`)
    .join("")

const parseReply = (buffer: Buffer, offset: number): readonly [Reply, number] | undefined => {
  const lineEnd = buffer.indexOf("\r\n", offset)
  if (lineEnd === -1) return undefined
  const line = buffer.toString("utf8", offset + 1, lineEnd)
  const next = lineEnd + 2
  switch (String.fromCharCode(buffer[offset] ?? 0)) {
    case "+":
      return [line, next]
    case "-":
      return [new Error(line), next]
    case ":":
      return [Number(line), next]
    case "$": {
      const length = Number(line)
      if (length < 0) return [null, next]
      if (buffer.length < next + length + 2) return undefined
      return [buffer.toString("utf8", next, next + length), next + length + 2]
    }
    case "*": {
      const length = Number(line)
      if (length < 0) return [null, next]
      const items: Array<Reply> = []
      let at = next
      for (let i = 0; i < length; i++) {
        const item = parseReply(buffer, at)
        if (item === undefined) return undefined
        items.push(item[0])
        at = item[1]
      }
      return [items, at]
    }
    default:
      throw new Error(`Unexpected RESP reply: ${JSON.stringify(buffer.toString("utf8", offset, lineEnd))}`)
  }
}

class ReplyReader {
  private buffer: Buffer = Buffer.alloc(0)
  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
  }
  *drain(): Generator<Reply> {
    for (;;) {
      const parsed = parseReply(this.buffer, 0)
      if (parsed === undefined) return
      this.buffer = this.buffer.subarray(parsed[1])
      yield parsed[0]
    }
  }
}

const authCommands = (endpoint: Endpoint): ReadonlyArray<ReadonlyArray<string>> => {
  if (endpoint.password === undefined) return []
  return [
    endpoint.username === undefined ? ["AUTH", endpoint.password] : ["AUTH", endpoint.username, endpoint.password]
  ]
}

const describeEndpoint = (endpoint: Address) => `${endpoint.host}:${endpoint.port}`

/** Opens a connection that recorders treat as the harness's own. */
const openSocket = (endpoint: Endpoint, timeoutMs: number): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: endpoint.host, port: endpoint.port })
    const fail = (error: Error) => {
      clearTimeout(timer)
      socket.destroy()
      reject(error)
    }
    const timer = setTimeout(
      () => fail(new Error(`Timed out after ${timeoutMs} ms connecting to ${describeEndpoint(endpoint)}`)),
      timeoutMs
    )
    socket.once("error", fail)
    socket.once("connect", () => {
      clearTimeout(timer)
      socket.off("error", fail)
      trackSocket(socket)
      resolve(socket)
    })
  })

/** Sends one command on a fresh connection and returns its reply; an error reply rejects. */
const command = async (endpoint: Endpoint, args: ReadonlyArray<string>, timeoutMs = PROBE_TIMEOUT_MS) => {
  const socket = await openSocket(endpoint, timeoutMs)
  const what = `${args.slice(0, 2).join(" ")} on ${describeEndpoint(endpoint)}`
  try {
    return await new Promise<Reply>((resolve, reject) => {
      const commands = [...authCommands(endpoint), args]
      const reader = new ReplyReader()
      let received = 0
      const timer = setTimeout(
        () => reject(new Error(`Timed out after ${timeoutMs} ms waiting for the reply to ${what}`)),
        timeoutMs
      )
      socket.on("data", (chunk: Buffer) => {
        reader.push(chunk)
        for (const reply of reader.drain()) {
          received++
          if (reply instanceof Error) {
            clearTimeout(timer)
            return reject(new Error(`${what} failed: ${reply.message}`))
          }
          if (received === commands.length) {
            clearTimeout(timer)
            return resolve(reply)
          }
        }
      })
      socket.once("error", (error) => {
        clearTimeout(timer)
        reject(error)
      })
      socket.once("close", () => {
        clearTimeout(timer)
        reject(new Error(`Connection closed before the reply to ${what}`))
      })
      socket.write(encode(commands))
    })
  } finally {
    socket.destroy()
  }
}

const asText = (reply: Reply, what: string): string => {
  if (typeof reply !== "string") throw new Error(`Expected a string reply to ${what}, got ${JSON.stringify(reply)}`)
  return reply
}

const asList = (reply: Reply, what: string): ReadonlyArray<Reply> => {
  if (!Array.isArray(reply)) throw new Error(`Expected an array reply to ${what}, got ${JSON.stringify(reply)}`)
  return reply as ReadonlyArray<Reply>
}

const textCommand = async (endpoint: Endpoint, args: ReadonlyArray<string>) =>
  asText(await command(endpoint, args), args.join(" "))

/** A field of an INFO-style `key:value` text. */
const infoField = (text: string, key: string): string | undefined =>
  new RegExp(`^${key}:(.*?)\\r?$`, "m").exec(text)?.[1]

/** A flat `[key, value, key, value, ...]` reply as a record. */
const pairs = (reply: Reply, what: string): Readonly<Record<string, string>> => {
  const items = asList(reply, what)
  const record: Record<string, string> = {}
  for (let i = 0; i + 1 < items.length; i += 2) record[String(items[i])] = String(items[i + 1])
  return record
}

// ---------------------------------------------------------------------------------------------------
// MONITOR-based command recorder

const MONITOR_ESCAPES: Readonly<Record<string, number>> = { n: 10, r: 13, t: 9, a: 7, b: 8, "\"": 34, "\\": 92 }

/** Parses `1700000000.123456 [0 127.0.0.1:5000] "SET" "k" "v\x00"` (args escaped like sdscatrepr). */
const parseMonitorLine = (
  line: string
): { readonly source: string; readonly args: ReadonlyArray<string> } | undefined => {
  const open = line.indexOf(" [")
  const close = line.indexOf("] ", open)
  if (open === -1 || close === -1) return undefined
  const header = line.slice(open + 2, close)
  const args: Array<string> = []
  let bytes: Array<number> | undefined
  for (let i = close + 2; i < line.length; i++) {
    const char = line.charAt(i)
    if (bytes === undefined) {
      if (char === "\"") bytes = []
    } else if (char === "\"") {
      args.push(Buffer.from(bytes).toString("utf8"))
      bytes = undefined
    } else if (char === "\\") {
      const escaped = line.charAt(++i)
      if (escaped === "x") {
        bytes.push(Number.parseInt(line.slice(i + 1, i + 3), 16))
        i += 2
      } else {
        bytes.push(MONITOR_ESCAPES[escaped] ?? escaped.charCodeAt(0))
      }
    } else {
      bytes.push(char.charCodeAt(0))
    }
  }
  return { source: header.slice(header.indexOf(" ") + 1), args }
}

class Recorder implements CommandRecorder {
  private recorded: Array<RecordedCommand> = []
  private lastArrival = 0
  private failure: Error | undefined
  private readonly markers = new Map<string, (failure: Error | undefined) => void>()

  private constructor(
    private readonly socket: net.Socket,
    private readonly endpoint: Endpoint,
    private readonly label: string
  ) {}

  static async start(endpoint: Endpoint, label: string): Promise<Recorder> {
    const socket = await openSocket(endpoint, PROBE_TIMEOUT_MS)
    const recorder = new Recorder(socket, endpoint, label)
    try {
      await recorder.subscribe()
    } catch (error) {
      socket.destroy()
      throw error
    }
    return recorder
  }

  commands(): ReadonlyArray<RecordedCommand> {
    return [...this.recorded]
  }

  count(): number {
    return this.recorded.length
  }

  reset(): void {
    this.recorded = []
  }

  async settle(): Promise<void> {
    const started = Date.now()
    const deadline = started + SETTLE_LIMIT_MS
    for (;;) {
      const quietUntil = Math.max(started, this.lastArrival) + SETTLE_QUIET_MS
      if (quietUntil > deadline) {
        const last = this.recorded.at(-1)
        throw new Error(
          `CommandRecorder on ${this.label} did not settle within ${SETTLE_LIMIT_MS} ms: commands kept arriving` +
            (last === undefined ? "" : ` (last: ${last.name})`)
        )
      }
      if (Date.now() < quietUntil) {
        await sleep(quietUntil - Date.now())
        continue
      }
      const before = this.lastArrival
      try {
        await this.flush(deadline)
      } catch (error) {
        throw new Error(`CommandRecorder on ${this.label} could not settle: ${errorMessage(error)}`)
      }
      if (this.lastArrival === before) return
    }
  }

  async close(): Promise<void> {
    if (this.socket.destroyed) return
    const closed = new Promise((resolve) => this.socket.once("close", resolve))
    this.socket.destroy()
    await closed
  }

  private subscribe(): Promise<void> {
    const commands = [...authCommands(this.endpoint), ["MONITOR"]]
    return new Promise((resolve, reject) => {
      const reader = new ReplyReader()
      let pendingAcks = commands.length
      const timer = setTimeout(
        () => reject(new Error(`Timed out after ${PROBE_TIMEOUT_MS} ms waiting for MONITOR to start on ${this.label}`)),
        PROBE_TIMEOUT_MS
      )
      this.socket.on("data", (chunk: Buffer) => {
        reader.push(chunk)
        for (const reply of reader.drain()) {
          if (reply instanceof Error) {
            clearTimeout(timer)
            this.failure = new Error(`MONITOR on ${this.label} failed: ${reply.message}`)
            reject(this.failure)
            this.socket.destroy()
            return
          }
          if (pendingAcks > 0) {
            if (--pendingAcks === 0) {
              clearTimeout(timer)
              resolve()
            }
          } else if (typeof reply === "string") {
            this.onMonitorLine(reply)
          }
        }
      })
      this.socket.on("error", (error) => {
        this.failure ??= new Error(`The MONITOR connection to ${this.label} failed: ${error.message}`)
      })
      this.socket.once("close", () => {
        clearTimeout(timer)
        this.failure ??= new Error(`The MONITOR connection to ${this.label} is closed`)
        reject(this.failure)
        for (const notify of this.markers.values()) notify(this.failure)
      })
      this.socket.write(encode(commands))
    })
  }

  private onMonitorLine(line: string): void {
    const entry = parseMonitorLine(line)
    if (entry === undefined || entry.source === "lua") return
    const [name = "", ...args] = entry.args
    if (globals.sockets.has(entry.source)) {
      if (name.toUpperCase() === "ECHO" && args[0] !== undefined) this.markers.get(args[0])?.(undefined)
      return
    }
    this.recorded.push({ name: name.toUpperCase(), args })
    this.lastArrival = Date.now()
  }

  /** Sends a marker from a harness connection and waits until MONITOR shows it. */
  private async flush(deadline: number): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    const nonce = `redis-harness-marker-${randomUUID()}`
    const seen = new Promise<Error | undefined>((resolve) => this.markers.set(nonce, resolve))
    try {
      await command(this.endpoint, ["ECHO", nonce], Math.max(deadline - Date.now(), 1))
      const failure = await withTimeout(
        seen,
        deadline - Date.now(),
        `CommandRecorder on ${this.label}: MONITOR did not catch up within ${SETTLE_LIMIT_MS} ms`
      )
      if (failure !== undefined) throw failure
    } finally {
      this.markers.delete(nonce)
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Connections the harness keeps to one server

const createAdmin = (endpoint: Endpoint): Redis => {
  const client = new Redis({
    host: endpoint.host,
    port: endpoint.port,
    username: endpoint.username,
    password: endpoint.password,
    db: endpoint.db ?? 0,
    connectTimeout: 1_000,
    commandTimeout: 2_000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 100
  })
  // Failures surface on the commands; without a listener ioredis would also log each reconnect attempt.
  client.on("error", () => {})
  client.on("connect", () => trackSocket(client.stream))
  return client
}

class Connections {
  private client: Redis | undefined
  private readonly recorders: Array<Recorder> = []
  private closed = false

  constructor(
    private readonly endpoint: Endpoint,
    private readonly label: string
  ) {}

  admin(): Redis {
    this.assertOpen("admin()")
    this.client ??= createAdmin(this.endpoint)
    return this.client
  }

  async record(): Promise<CommandRecorder> {
    this.assertOpen("recordCommands()")
    const recorder = await Recorder.start(this.endpoint, this.label)
    this.recorders.push(recorder)
    return recorder
  }

  async close(): Promise<void> {
    this.closed = true
    this.client?.disconnect()
    await Promise.all(this.recorders.map((recorder) => recorder.close()))
  }

  private assertOpen(what: string): void {
    if (this.closed) throw new Error(`${what} called after ${this.label} was stopped`)
  }
}

// ---------------------------------------------------------------------------------------------------
// Harness-owned processes

interface Launch {
  readonly binary: string
  readonly label: string
  readonly endpoint: Endpoint
  readonly dir: string
  readonly argv: ReadonlyArray<string>
}

interface Spawned {
  readonly pid: number
  readonly child: ChildProcess
  /** Resolves with how the process ended. */
  readonly exited: Promise<string>
  isAlive(): boolean
}

const spawnTracked = async (launch: Launch): Promise<Spawned> => {
  const output = await fs.open(path.join(launch.dir, OUTPUT_FILE), "a")
  let child: ChildProcess
  try {
    child = spawn(launch.binary, launch.argv, { stdio: ["ignore", output.fd, output.fd] })
  } finally {
    await output.close()
  }
  globals.children.add(child)
  let alive = true
  const exited = new Promise<string>((resolve) => {
    const done = (how: string) => {
      alive = false
      globals.children.delete(child)
      resolve(how)
    }
    child.once("exit", (code, signal) => done(signal === null ? `exited with code ${code}` : `was killed by ${signal}`))
    child.once("error", (error) => done(`could not be started: ${error.message}`))
  })
  child.unref()
  if (child.pid === undefined) throw new GiveUp(`${launch.label} ${await exited}`)
  return { pid: child.pid, child, exited, isAlive: () => alive }
}

const terminate = async (spawned: Spawned): Promise<void> => {
  if (spawned.isAlive()) {
    // Children are unref'ed so they never hold the test process open, but waiting for this exit must.
    spawned.child.ref()
    spawned.child.kill("SIGCONT")
    spawned.child.kill("SIGKILL")
  }
  await spawned.exited
}

const logTail = async (dir: string): Promise<string> => {
  const tails = await Promise.all([OUTPUT_FILE, LOG_FILE].map(async (name) => {
    const file = path.join(dir, name)
    const text = (await fs.readFile(file, "utf8").catch(() => "")).trim()
    return text === "" ? "" : `\n--- last lines of ${file} ---\n${text.split("\n").slice(-15).join("\n")}`
  }))
  return tails.join("")
}

/** Spawns the process and waits until it answers, checking the answer comes from this very process. */
const boot = async (launch: Launch): Promise<Spawned> => {
  const spawned = await spawnTracked(launch)
  let exit: string | undefined
  void spawned.exited.then((how) => {
    exit = how
  })
  const endpoint = launch.endpoint
  try {
    await waitFor(`${launch.label} to accept commands`, START_TIMEOUT_MS, async () => {
      if (exit !== undefined) {
        const log = await logTail(launch.dir)
        const message = `${launch.label} ${exit} before accepting commands${log}`
        throw log.includes("Address already in use") ? new PortInUse(message) : new GiveUp(message)
      }
      const info = asText(await command(endpoint, ["INFO", "server"], 500), "INFO server")
      const pid = infoField(info, "process_id")
      return pid === String(spawned.pid) ? undefined : `the port is answered by another process (pid ${pid})`
    })
  } catch (error) {
    await terminate(spawned)
    if (error instanceof GiveUp) throw error
    throw new Error(`${errorMessage(error)}${await logTail(launch.dir)}`)
  }
  return spawned
}

const removeDir = async (dir: string): Promise<void> => {
  await fs.rm(dir, { recursive: true, force: true })
  globals.dirs.delete(dir)
}

const serverArgv = (port: number, dir: string, extra: ReadonlyArray<string>): ReadonlyArray<string> => [
  "--port",
  String(port),
  "--bind",
  LOCALHOST,
  "--save",
  "",
  "--appendonly",
  "no",
  "--dir",
  dir,
  "--logfile",
  path.join(dir, LOG_FILE),
  "--enable-debug-command",
  "local",
  "--repl-diskless-sync-delay",
  "0",
  ...extra
]

interface ServerSpec {
  readonly kind: string
  readonly port?: number | undefined
  /** The `requirepass` the server is started with, for the harness's own connections. */
  readonly password?: string | undefined
  readonly pickPort: () => Promise<number>
  readonly argv: (port: number, dir: string) => Promise<ReadonlyArray<string>>
}

class LocalServer implements RedisServer {
  readonly host = LOCALHOST
  readonly port: number
  readonly url: string
  readonly label: string
  readonly endpoint: Endpoint
  private paused = false
  private stopped = false
  private readonly connections: Connections

  constructor(
    private readonly launch: Launch,
    private current: Spawned
  ) {
    this.endpoint = launch.endpoint
    this.port = launch.endpoint.port
    const password = launch.endpoint.password
    this.url = `redis://${password === undefined ? "" : `:${encodeURIComponent(password)}@`}${LOCALHOST}:${this.port}`
    this.label = launch.label
    this.connections = new Connections(this.endpoint, launch.label)
  }

  get pid(): number {
    return this.current.pid
  }

  /** Alive and not paused. */
  get running(): boolean {
    return this.current.isAlive() && !this.paused
  }

  async kill(): Promise<void> {
    await terminate(this.current)
    this.paused = false
  }

  pause(): void {
    this.signal("SIGSTOP")
    this.paused = true
  }

  resume(): void {
    this.signal("SIGCONT")
    this.paused = false
  }

  async restart(): Promise<void> {
    if (this.stopped) throw new Error(`restart() called after ${this.label} was stopped`)
    await this.kill()
    this.current = await boot(this.launch)
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await this.connections.close()
    await this.kill()
    await removeDir(this.launch.dir)
  }

  admin(): Redis {
    return this.connections.admin()
  }

  recordCommands(): Promise<CommandRecorder> {
    return this.connections.record()
  }

  private signal(signal: NodeJS.Signals): void {
    if (!this.current.isAlive()) throw new Error(`Cannot send ${signal}: ${this.label} is not running`)
    process.kill(this.current.pid, signal)
  }
}

const launchServer = async (spec: ServerSpec): Promise<LocalServer> => {
  const binary = await requireBinary("redis-server")
  for (let attempt = 1;; attempt++) {
    const port = spec.port ?? (await spec.pickPort())
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "redis-harness-"))
    globals.dirs.add(dir)
    try {
      const argv = await spec.argv(port, dir)
      const endpoint = { host: LOCALHOST, port, password: spec.password }
      const launch: Launch = { binary, label: `${spec.kind} ${LOCALHOST}:${port}`, endpoint, dir, argv }
      return new LocalServer(launch, await boot(launch))
    } catch (error) {
      await removeDir(dir)
      if (!(error instanceof PortInUse) || spec.port !== undefined || attempt >= 3) throw error
    }
  }
}

/** Starts all, or stops the ones that started and rethrows the first failure. */
const launchAll = async (specs: ReadonlyArray<ServerSpec>): Promise<ReadonlyArray<LocalServer>> => {
  const results = await Promise.allSettled(specs.map(launchServer))
  const started = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []))
  const failure = results.find((result) => result.status === "rejected")
  if (failure === undefined) return started
  await Promise.all(started.map((server) => server.stop()))
  throw failure.reason
}

// ---------------------------------------------------------------------------------------------------
// REDIS_URL

const unavailable = (what: string) =>
  new Error(`RedisServer.${what} is not available with REDIS_URL: the harness does not own that server's process`)

class ExternalServer implements RedisServer {
  readonly host: string
  readonly port: number
  private readonly connections: Connections

  constructor(
    readonly url: string,
    endpoint: Endpoint
  ) {
    this.host = endpoint.host
    this.port = endpoint.port
    this.connections = new Connections(endpoint, `REDIS_URL server ${describeEndpoint(endpoint)}`)
  }

  get pid(): number {
    throw unavailable("pid")
  }

  async kill(): Promise<void> {
    throw unavailable("kill()")
  }

  pause(): void {
    throw unavailable("pause()")
  }

  resume(): void {
    throw unavailable("resume()")
  }

  async restart(): Promise<void> {
    throw unavailable("restart()")
  }

  stop(): Promise<void> {
    return this.connections.close()
  }

  admin(): Redis {
    return this.connections.admin()
  }

  recordCommands(): Promise<CommandRecorder> {
    return this.connections.record()
  }
}

const parseRedisUrl = (raw: string): Endpoint => {
  const url = new URL(raw)
  if (url.protocol !== "redis:") throw new Error(`REDIS_URL must be a redis:// URL, got ${JSON.stringify(raw)}`)
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : undefined
  if (db !== undefined && !Number.isInteger(db)) {
    throw new Error(`REDIS_URL has an invalid database: ${JSON.stringify(raw)}`)
  }
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1") || "localhost",
    port: url.port === "" ? 6379 : Number(url.port),
    username: url.username === "" ? undefined : decodeURIComponent(url.username),
    password: url.password === "" ? undefined : decodeURIComponent(url.password),
    db
  }
}

const connectExternal = async (raw: string): Promise<RedisServer> => {
  const endpoint = parseRedisUrl(raw)
  await waitFor(`the REDIS_URL server ${describeEndpoint(endpoint)} to answer PING`, START_TIMEOUT_MS, async () => {
    const reply = await command(endpoint, ["PING"])
    return reply === "PONG" ? undefined : `PING answered ${JSON.stringify(reply)}`
  })
  return new ExternalServer(raw, endpoint)
}

// ---------------------------------------------------------------------------------------------------
// Standalone

/**
 * Starts a standalone `redis-server` on 127.0.0.1 (a free port unless `port` is given) without
 * persistence, with `args` appended to its command line, and waits until it answers. With `REDIS_URL`
 * set, returns a handle for that server instead (see the top of this file).
 */
export const startRedisServer = async (
  options: { readonly args?: ReadonlyArray<string> | undefined; readonly port?: number | undefined } = {}
): Promise<RedisServer> => {
  const redisUrl = process.env["REDIS_URL"]
  if (redisUrl !== undefined && redisUrl !== "") {
    if (options.args !== undefined || options.port !== undefined) {
      throw new Error("startRedisServer({ args, port }) cannot be honoured with REDIS_URL: unset it to run this test")
    }
    return connectExternal(redisUrl)
  }
  const args = options.args ?? []
  const passwordAt = args.lastIndexOf("--requirepass")
  return launchServer({
    kind: "redis-server",
    port: options.port,
    password: passwordAt === -1 ? undefined : args[passwordAt + 1],
    pickPort: freePort,
    argv: async (port, dir) => serverArgv(port, dir, args)
  })
}

// ---------------------------------------------------------------------------------------------------
// Cluster

/** Node ids with their role and slots, one line per node, sorted: equal across nodes that agree. */
const clusterTopology = (clusterNodes: string): string =>
  clusterNodes
    .trim()
    .split("\n")
    .map((line) => {
      const [id = "", , flags = "", master = "", , , , , ...slots] = line.trim().split(" ")
      const role = flags.split(",").includes("master") ? "master" : `replica-of ${master}`
      return [id, role, ...slots].join(" ")
    })
    .sort()
    .join("\n")

class LocalCluster implements RedisCluster {
  readonly seeds: ReadonlyArray<Address>

  constructor(
    readonly nodes: ReadonlyArray<LocalServer>,
    private readonly cli: string
  ) {
    this.seeds = nodes.map((node) => ({ host: node.host, port: node.port }))
  }

  async masters(): Promise<ReadonlyArray<RedisServer>> {
    const roles = await Promise.all(this.running().map(async (node) => ({ node, role: await nodeRole(node) })))
    return roles.filter(({ role }) => role[0] === "master").map(({ node }) => node)
  }

  async replicaOf(master: RedisServer): Promise<RedisServer | undefined> {
    for (const node of this.running()) {
      const role = await nodeRole(node)
      if (role[0] === "slave" && Number(role[2]) === master.port) return node
    }
    return undefined
  }

  async reshard(options: { readonly from: RedisServer; readonly to: RedisServer; readonly slots: number }) {
    const [fromId, toId] = await Promise.all(
      [options.from, options.to].map((node) => textCommand({ host: LOCALHOST, port: node.port }, ["CLUSTER", "MYID"]))
    )
    await runTool(
      this.cli,
      [
        "--cluster",
        "reshard",
        `${LOCALHOST}:${options.from.port}`,
        "--cluster-from",
        fromId,
        "--cluster-to",
        toId,
        "--cluster-slots",
        String(options.slots),
        "--cluster-yes"
      ],
      60_000
    )
    await this.waitForHealthy()
  }

  waitForHealthy(timeoutMs = 30_000): Promise<void> {
    const ports = this.nodes.map((node) => node.port).join(",")
    return waitFor(`the cluster on ports ${ports} to be healthy`, timeoutMs, () => this.unhealthyReason())
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()))
  }

  private running(): ReadonlyArray<LocalServer> {
    return this.nodes.filter((node) => node.running)
  }

  private async unhealthyReason(): Promise<string | undefined> {
    const views = await Promise.all(
      this.running().map(async (node) => {
        const [info, nodes, replication] = await Promise.all([
          textCommand(node.endpoint, ["CLUSTER", "INFO"]),
          textCommand(node.endpoint, ["CLUSTER", "NODES"]),
          textCommand(node.endpoint, ["INFO", "replication"])
        ])
        return { node, info, nodes, replication }
      })
    )
    for (const { info, node, nodes, replication } of views) {
      const state = infoField(info, "cluster_state")
      if (state !== "ok") return `${node.label} reports cluster_state:${state}`
      const slotsOk = infoField(info, "cluster_slots_ok")
      if (slotsOk !== String(CLUSTER_SLOTS)) return `${node.label} reports cluster_slots_ok:${slotsOk}`
      const known = infoField(info, "cluster_known_nodes")
      if (known !== String(this.nodes.length)) return `${node.label} knows ${known} of ${this.nodes.length} nodes`
      if (nodes.includes("->-") || nodes.includes("-<-")) return `${node.label} has a slot migration in progress`
      const link = infoField(replication, "master_link_status")
      if (infoField(replication, "role") === "slave" && link !== "up") {
        return `${node.label} has master_link_status:${link}`
      }
    }
    if (new Set(views.map(({ nodes }) => clusterTopology(nodes))).size > 1) {
      return "the nodes disagree about slot ownership or replication"
    }
    return undefined
  }
}

const nodeRole = async (node: LocalServer): Promise<ReadonlyArray<Reply>> =>
  asList(await command(node.endpoint, ["ROLE"]), `ROLE on ${node.label}`)

/**
 * Starts `masters * (1 + replicasPerMaster)` cluster-enabled servers (node timeout 2000 ms, replica
 * validity factor 0 so any replica can fail over), joins them with `redis-cli --cluster create` and waits
 * until the cluster is healthy.
 */
export const startCluster = async (
  options: {
    readonly masters?: number | undefined
    readonly replicasPerMaster?: number | undefined
    readonly args?: ReadonlyArray<string> | undefined
  } = {}
): Promise<RedisCluster> => {
  const masters = options.masters ?? 3
  const replicas = options.replicasPerMaster ?? 1
  if (!Number.isInteger(masters) || masters < 3) {
    throw new Error(`startCluster needs at least 3 masters (redis-cli --cluster create refuses fewer), got ${masters}`)
  }
  if (!Number.isInteger(replicas) || replicas < 0) throw new Error(`Invalid replicasPerMaster: ${replicas}`)
  const cli = await requireBinary("redis-cli")
  const nodes = await launchAll(
    Array.from({ length: masters * (1 + replicas) }, () => ({
      kind: "cluster node",
      pickPort: freeClusterPort,
      argv: async (port: number, dir: string) =>
        serverArgv(port, dir, [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          path.join(dir, "nodes.conf"),
          "--cluster-node-timeout",
          "2000",
          "--cluster-replica-validity-factor",
          "0",
          ...(options.args ?? [])
        ])
    }))
  )
  const cluster = new LocalCluster(nodes, cli)
  try {
    await runTool(
      cli,
      [
        "--cluster",
        "create",
        ...nodes.map((node) => `${LOCALHOST}:${node.port}`),
        "--cluster-replicas",
        String(replicas),
        "--cluster-yes"
      ],
      60_000
    )
    await cluster.waitForHealthy()
  } catch (error) {
    await cluster.stop()
    throw error
  }
  return cluster
}

// ---------------------------------------------------------------------------------------------------
// Sentinel

const linkProblem = async (replica: LocalServer): Promise<string | undefined> => {
  const link = infoField(await textCommand(replica.endpoint, ["INFO", "replication"]), "master_link_status")
  return link === "up" ? undefined : `master_link_status:${link}`
}

class LocalSentinelSetup implements RedisSentinelSetup {
  readonly sentinelAddresses: ReadonlyArray<Address>

  constructor(
    readonly masterName: string,
    readonly master: LocalServer,
    readonly replica: LocalServer,
    readonly sentinels: ReadonlyArray<LocalServer>
  ) {
    this.sentinelAddresses = sentinels.map((sentinel) => ({ host: sentinel.host, port: sentinel.port }))
  }

  async currentMaster(): Promise<Address> {
    let lastError: unknown = "no Sentinel is running"
    for (const sentinel of this.sentinels.filter((sentinel) => sentinel.running)) {
      try {
        return await this.masterSeenBy(sentinel)
      } catch (error) {
        lastError = error
      }
    }
    throw new Error(`No Sentinel told the address of ${this.masterName}: ${errorMessage(lastError)}`)
  }

  async failover(): Promise<void> {
    const before = await this.currentMaster()
    const [sentinel] = this.sentinels.filter((sentinel) => sentinel.running)
    if (sentinel === undefined) throw new Error("failover() needs a running Sentinel")
    await waitFor(`${sentinel.label} to accept SENTINEL FAILOVER ${this.masterName}`, 20_000, async () => {
      try {
        await command(sentinel.endpoint, ["SENTINEL", "FAILOVER", this.masterName])
        return undefined
      } catch (error) {
        if (errorMessage(error).includes("NOGOODSLAVE")) return errorMessage(error)
        throw new GiveUp(errorMessage(error))
      }
    })
    await waitFor(
      `every Sentinel to report a new master for ${this.masterName}, with role master`,
      20_000,
      async () => {
        const seen = await Promise.all(this.sentinels.filter((s) => s.running).map((s) => this.masterSeenBy(s)))
        const reported = [...new Set(seen.map(describeEndpoint))]
        const [candidate] = seen
        if (candidate === undefined || reported.length > 1 || candidate.port === before.port) {
          return `Sentinels report ${reported.join(", ")} (was ${describeEndpoint(before)})`
        }
        const [role] = asList(await command(candidate, ["ROLE"]), `ROLE on ${describeEndpoint(candidate)}`)
        return role === "master" ? undefined : `${describeEndpoint(candidate)} reports role ${String(role)}`
      }
    )
  }

  async stop(): Promise<void> {
    await Promise.all([...this.sentinels, this.replica, this.master].map((server) => server.stop()))
  }

  /** Waits until every Sentinel sees the master, a healthy replica and the two other Sentinels. */
  async waitUntilDiscovered(): Promise<void> {
    await waitFor(`the Sentinels to discover ${this.masterName}, its replica and each other`, 20_000, async () => {
      for (const sentinel of this.sentinels) {
        const master = pairs(
          await command(sentinel.endpoint, ["SENTINEL", "MASTER", this.masterName]),
          "SENTINEL MASTER"
        )
        if (master["flags"] !== "master") return `${sentinel.label} sees the master with flags ${master["flags"]}`
        if (master["num-other-sentinels"] !== "2") {
          return `${sentinel.label} knows ${master["num-other-sentinels"]} of 2 other Sentinels`
        }
        const replicas = asList(
          await command(sentinel.endpoint, ["SENTINEL", "REPLICAS", this.masterName]),
          "SENTINEL REPLICAS"
        ).map((reply) => pairs(reply, "SENTINEL REPLICAS"))
        const healthy = replicas.some((replica) =>
          replica["port"] === String(this.replica.port) && replica["flags"] === "slave" &&
          replica["master-link-status"] === "ok"
        )
        if (!healthy) return `${sentinel.label} does not see ${this.replica.label} as a healthy replica yet`
      }
      return undefined
    })
  }

  private async masterSeenBy(sentinel: LocalServer): Promise<Address> {
    const what = `SENTINEL get-master-addr-by-name ${this.masterName} on ${sentinel.label}`
    const reply = await command(sentinel.endpoint, ["SENTINEL", "get-master-addr-by-name", this.masterName])
    const [host, port] = asList(reply, what)
    if (typeof host !== "string" || typeof port !== "string") {
      throw new Error(`${what} answered ${JSON.stringify(reply)}`)
    }
    return { host, port: Number(port) }
  }
}

const sentinelConf = (options: { port: number; dir: string; masterName: string; masterPort: number }): string =>
  [
    `port ${options.port}`,
    `bind ${LOCALHOST}`,
    `dir ${options.dir}`,
    `logfile ${path.join(options.dir, LOG_FILE)}`,
    `sentinel monitor ${options.masterName} ${LOCALHOST} ${options.masterPort} 2`,
    `sentinel down-after-milliseconds ${options.masterName} 1000`,
    `sentinel failover-timeout ${options.masterName} 3000`,
    ""
  ].join("\n")

/**
 * Starts a master, a replica of it and three Sentinels (quorum 2, down-after 1000 ms, failover-timeout
 * 3000 ms) monitoring it as `masterName`, and waits until the replica is linked and every Sentinel knows
 * the master, the replica and the other Sentinels.
 */
export const startSentinel = async (
  options: { readonly masterName?: string | undefined } = {}
): Promise<RedisSentinelSetup> => {
  const masterName = options.masterName ?? "mymaster"
  const started: Array<LocalServer> = []
  try {
    const master = await launchServer({
      kind: "master",
      pickPort: freePort,
      argv: async (port, dir) => serverArgv(port, dir, [])
    })
    started.push(master)
    const replica = await launchServer({
      kind: "replica",
      pickPort: freePort,
      argv: async (port, dir) => serverArgv(port, dir, ["--replicaof", LOCALHOST, String(master.port)])
    })
    started.push(replica)
    await waitFor(`${replica.label} to link to ${master.label}`, 10_000, () => linkProblem(replica))
    const sentinels = await launchAll(
      Array.from({ length: 3 }, () => ({
        kind: "sentinel",
        pickPort: freePort,
        argv: async (port: number, dir: string) => {
          const conf = path.join(dir, "sentinel.conf")
          await fs.writeFile(conf, sentinelConf({ port, dir, masterName, masterPort: master.port }))
          return [conf, "--sentinel"]
        }
      }))
    )
    started.push(...sentinels)
    const setup = new LocalSentinelSetup(masterName, master, replica, sentinels)
    await setup.waitUntilDiscovered()
    return setup
  } catch (error) {
    await Promise.all(started.map((server) => server.stop()))
    throw error
  }
}

/** Runs `f` and returns the commands the server received from the applications meanwhile. */
export const commandsDuring = async (
  server: RedisServer,
  f: () => Promise<unknown>
): Promise<ReadonlyArray<RecordedCommand>> => {
  const recorder = await server.recordCommands()
  try {
    await recorder.settle()
    recorder.reset()
    await f()
    await recorder.settle()
    return recorder.commands()
  } finally {
    await recorder.close()
  }
}

// ---------------------------------------------------------------------------------------------------
// Effect wrappers for @effect/vitest

/** A standalone server (or `REDIS_URL`); `TestRedis.layer` starts it for the layer's scope. */
export class TestRedis extends Context.Tag("test/TestRedis")<TestRedis, RedisServer>() {
  static readonly layer: Layer.Layer<TestRedis> = Layer.scoped(
    this,
    Effect.acquireRelease(
      Effect.promise(() => startRedisServer()),
      (server) => Effect.promise(() => server.stop())
    )
  )
}

/** A 3-master, 3-replica cluster; `TestRedisCluster.layer` starts it for the layer's scope. */
export class TestRedisCluster extends Context.Tag("test/TestRedisCluster")<TestRedisCluster, RedisCluster>() {
  static readonly layer: Layer.Layer<TestRedisCluster> = Layer.scoped(
    this,
    Effect.acquireRelease(
      Effect.promise(() => startCluster()),
      (cluster) => Effect.promise(() => cluster.stop())
    )
  )
}

/** A Sentinel setup monitoring `mymaster`; `TestRedisSentinel.layer` starts it for the layer's scope. */
export class TestRedisSentinel extends Context.Tag("test/TestRedisSentinel")<TestRedisSentinel, RedisSentinelSetup>() {
  static readonly layer: Layer.Layer<TestRedisSentinel> = Layer.scoped(
    this,
    Effect.acquireRelease(
      Effect.promise(() => startSentinel()),
      (setup) => Effect.promise(() => setup.stop())
    )
  )
}

/** Runs `effect`; its result, and the names of the commands the server received from the applications meanwhile. */
export const commandNamesDuring = <A, E>(server: RedisServer, effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    let result: A | undefined
    const commands = yield* Effect.promise(() =>
      commandsDuring(server, () => Effect.runPromise(Effect.map(effect, (a) => (result = a))))
    )
    return [result as A, commands.map((c) => c.name)] as const
  })

/** Runs `f` with the server's admin connection, as an effect. */
export const withAdmin = <A>(server: RedisServer, f: (admin: Redis) => Promise<A>) =>
  Effect.promise(() => f(server.admin()))
