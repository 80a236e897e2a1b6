import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { cpus, release, type } from "node:os"

/** Where the benchmark ran. */
export interface Machine {
  readonly cpuModel: string
  readonly cores: number
  readonly os: string
  readonly node: string
  readonly redis: string
  /** Installed versions of the packages under test, read from `node_modules/<name>/package.json`. */
  readonly packages: ReadonlyArray<readonly [name: string, version: string]>
}

const measuredPackages = [
  "effect",
  "@effect/platform",
  "@effect/platform-node",
  "ioredis",
  "express",
  "express-session",
  "connect-redis",
  "redis",
  "fastify",
  "@fastify/session",
  "@fastify/cookie"
]

const cpuModel = (): string => {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))
    if (match !== null) return match[1]!.trim()
  } catch {
    // not Linux: fall back to what Node reports
  }
  return cpus()[0]?.model ?? "unknown"
}

const packageVersion = (name: string): string => {
  const url = new URL(`../node_modules/${name}/package.json`, import.meta.url)
  return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version
}

/** Describes the CPU, OS, Node, `redis-server` and package versions of this run. */
export const describeMachine = (): Machine => ({
  cpuModel: cpuModel(),
  cores: cpus().length,
  os: `${type()} ${release()}`,
  node: process.version,
  redis: /v=(\S+)/.exec(execFileSync("redis-server", ["--version"], { encoding: "utf8" }))?.[1] ?? "unknown",
  packages: measuredPackages.map((name) => [name, packageVersion(name)] as const)
})
