import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import type { Peer } from "./peers.js"

/** A benchmark server running in its own child process. */
export interface ServerProcess {
  readonly peer: Peer
  readonly port: number
  readonly pid: number
  readonly stop: () => void
}

const startupTimeoutMs = 30_000

/**
 * Runs `bench/servers/<peer.name>.ts` under tsx in a child Node process (so its CPU is its own), with
 * `PORT=0` and `REDIS_URL` pointing at the peer's database, and resolves when it prints `ready <port>`.
 * `nodeFlags` go to Node (e.g. `--cpu-prof`). Every server runs with `--expose-gc`, so the Effect servers' `/__heap` can force a collection before it reads.
 * tsx reads `tsconfig.build.json`, which maps no paths, so `effect-redis-sessions` resolves to the built
 * package (`dist/`) as it does for users, not to the sources.
 */
export const startServer = (
  peer: Peer,
  redisUrl: string,
  nodeFlags: ReadonlyArray<string> = []
): Promise<ServerProcess> => {
  const file = fileURLToPath(new URL(`./servers/${peer.name}.ts`, import.meta.url))
  const child = spawn(process.execPath, ["--expose-gc", ...nodeFlags, "--import", "tsx", file], {
    env: {
      ...process.env,
      NODE_ENV: "production",
      PORT: "0",
      REDIS_URL: redisUrl,
      TSX_TSCONFIG_PATH: fileURLToPath(new URL("../tsconfig.build.json", import.meta.url))
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  child.stderr.on("data", (chunk: Buffer) => process.stderr.write(`[${peer.name}] ${chunk.toString()}`))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${peer.name} did not print "ready" in 30 s`)), startupTimeoutMs)
    const fail = (error: Error) => {
      clearTimeout(timer)
      stopChild(child)
      reject(error)
    }
    child.once("exit", (code) => fail(new Error(`${peer.name} exited with code ${code} before it was ready`)))
    const lines = createInterface({ input: child.stdout })
    lines.on("line", (line) => {
      const match = /^ready (\d+)$/.exec(line.trim())
      if (match === null) return
      clearTimeout(timer)
      child.removeAllListeners("exit")
      lines.close()
      child.stdout.resume()
      resolve({ peer, port: Number(match[1]), pid: child.pid!, stop: () => stopChild(child) })
    })
  })
}

const stopChild = (child: ChildProcess) => {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    process.kill(child.pid, "SIGTERM")
  }
}
