import { assert, it as effectIt } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { Cluster, Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type RedisCluster,
  type RedisSentinelSetup,
  type RedisServer,
  startCluster,
  startRedisServer,
  startSentinel,
  TestRedis
} from "./utils/RedisServer.js"

const TIMEOUT = 60_000

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const client = (server: RedisServer): Redis =>
  new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 1, retryStrategy: () => null })

describe("startRedisServer", () => {
  it("starts, kills and restarts on the same port without keeping data", { timeout: TIMEOUT }, async () => {
    const server = await startRedisServer()
    try {
      expect(server.port).not.toBe(6379)
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)
      expect(await server.admin().ping()).toBe("PONG")
      await server.admin().set("kept?", "1")

      const firstPid = server.pid
      await server.kill()
      expect(isAlive(firstPid)).toBe(false)

      await server.restart()
      expect(server.pid).not.toBe(firstPid)
      expect(isAlive(server.pid)).toBe(true)
      const fresh = client(server)
      try {
        expect(await fresh.ping()).toBe("PONG")
        expect(await fresh.get("kept?")).toBeNull()
      } finally {
        fresh.disconnect()
      }
    } finally {
      await server.stop()
    }
    expect(isAlive(server.pid)).toBe(false)
  })

  it("pause() holds commands until resume()", { timeout: TIMEOUT }, async () => {
    const server = await startRedisServer()
    const redis = client(server)
    try {
      await redis.set("k", "v")
      server.pause()
      let settled = false
      const pending = redis.get("k").finally(() => {
        settled = true
      })
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(settled).toBe(false)
      server.resume()
      expect(await pending).toBe("v")
    } finally {
      redis.disconnect()
      await server.stop()
    }
  })

  it("records exactly the top-level commands of other clients", { timeout: TIMEOUT }, async () => {
    const server = await startRedisServer()
    const recorder = await server.recordCommands()
    const redis = client(server)
    try {
      await redis.ping()
      await recorder.settle()
      expect(recorder.commands().map((command) => command.name)).toContain("PING")
      recorder.reset()
      expect(recorder.count()).toBe(0)

      const script = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])"
      const tricky = "quote \" backslash \\ newline \n tab \t unicode é ✓"
      await server.admin().set("by-admin", "1")
      await redis.get("a")
      await redis.eval(script, 1, "b", tricky)
      await redis.pipeline().set("c", "1").incr("n").exec()
      expect(await server.admin().get("b")).toBe(tricky)
      void redis.pexpire("c", 60_000)
      await recorder.settle()

      expect(recorder.commands()).toEqual([
        { name: "GET", args: ["a"] },
        { name: "EVAL", args: [script, "1", "b", tricky] },
        { name: "SET", args: ["c", "1"] },
        { name: "INCR", args: ["n"] },
        { name: "PEXPIRE", args: ["c", "60000"] }
      ])
      expect(recorder.count()).toBe(5)
    } finally {
      redis.disconnect()
      await recorder.close()
      await server.stop()
    }
  })

  it("with REDIS_URL, wraps the existing server and refuses process control", { timeout: TIMEOUT }, async () => {
    const owner = await startRedisServer()
    const previous = process.env["REDIS_URL"]
    process.env["REDIS_URL"] = owner.url
    try {
      const external = await startRedisServer()
      expect(external.port).toBe(owner.port)
      expect(await external.admin().ping()).toBe("PONG")
      await expect(external.kill()).rejects.toThrow(/not available with REDIS_URL/)
      await expect(external.restart()).rejects.toThrow(/not available with REDIS_URL/)
      expect(() => external.pause()).toThrow(/not available with REDIS_URL/)
      expect(() => external.resume()).toThrow(/not available with REDIS_URL/)
      await external.stop()
      expect(isAlive(owner.pid)).toBe(true)
      expect(await owner.admin().ping()).toBe("PONG")
    } finally {
      if (previous === undefined) delete process.env["REDIS_URL"]
      else process.env["REDIS_URL"] = previous
      await owner.stop()
    }
  })

  effectIt.effect("TestRedis.layer stops its server when the scope closes", () =>
    Effect.gen(function*() {
      const pid = yield* Effect.gen(function*() {
        const server = yield* TestRedis
        assert.strictEqual(yield* Effect.promise(() => server.admin().ping()), "PONG")
        return server.pid
      }).pipe(Effect.provide(TestRedis.layer))
      assert.isFalse(isAlive(pid))
    }), { timeout: TIMEOUT })
})

describe("startCluster", () => {
  let cluster: RedisCluster
  let clusterClient: Cluster
  const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`)

  beforeAll(async () => {
    cluster = await startCluster()
    clusterClient = new Cluster([...cluster.seeds])
  }, TIMEOUT)

  afterAll(async () => {
    clusterClient?.disconnect()
    await cluster?.stop()
  })

  it("runs 3 masters, each with its own linked replica", { timeout: TIMEOUT }, async () => {
    expect(cluster.nodes).toHaveLength(6)
    const masters = await cluster.masters()
    expect(masters).toHaveLength(3)
    const replicas = await Promise.all(masters.map((master) => cluster.replicaOf(master)))
    expect(new Set(replicas.map((replica) => replica?.port)).size).toBe(3)
    for (const replica of replicas) {
      expect(await replica?.admin().info("replication")).toContain("master_link_status:up")
    }
    expect(await masters[0]?.admin().config("GET", "cluster-replica-validity-factor")).toEqual([
      "cluster-replica-validity-factor",
      "0"
    ])
  })

  it("serves SET/GET across nodes through an ioredis Cluster client", { timeout: TIMEOUT }, async () => {
    for (const key of keys) await clusterClient.set(key, `value of ${key}`)
    const sizes = await Promise.all((await cluster.masters()).map((master) => master.admin().dbsize()))
    expect(sizes.filter((size) => size > 0).length).toBeGreaterThanOrEqual(2)
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(keys.length)
    for (const key of keys) expect(await clusterClient.get(key)).toBe(`value of ${key}`)
  })

  it("reshards slots with their keys", { timeout: TIMEOUT }, async () => {
    const slotsOf = async (port: number) => {
      const ranges = await cluster.nodes[0]!.admin().cluster("SLOTS")
      return ranges.filter(([, , master]) => master?.[1] === port).reduce((sum, [from, to]) => sum + to - from + 1, 0)
    }
    const [from, to] = await cluster.masters()
    const before = await slotsOf(to!.port)
    await cluster.reshard({ from: from!, to: to!, slots: 100 })
    expect(await slotsOf(to!.port)).toBe(before + 100)
    for (const key of keys) expect(await clusterClient.get(key)).toBe(`value of ${key}`)
  })
})

describe("startSentinel", () => {
  let setup: RedisSentinelSetup

  beforeAll(async () => {
    setup = await startSentinel()
  }, TIMEOUT)

  afterAll(async () => {
    await setup?.stop()
  })

  it("monitors the master with a linked replica and three Sentinels", { timeout: TIMEOUT }, async () => {
    expect(setup.sentinelAddresses).toHaveLength(3)
    expect(await setup.currentMaster()).toEqual({ host: "127.0.0.1", port: setup.master.port })
    expect(await setup.replica.admin().info("replication")).toContain("master_link_status:up")
    const others = await setup.sentinels[0]!.admin().call("SENTINEL", "SENTINELS", setup.masterName)
    expect(others).toHaveLength(2)
  })

  it("fails over to the replica, and Sentinel clients follow", { timeout: TIMEOUT }, async () => {
    await setup.failover()
    expect(await setup.currentMaster()).toEqual({ host: "127.0.0.1", port: setup.replica.port })
    const role = (await setup.replica.admin().call("ROLE")) as Array<unknown>
    expect(role[0]).toBe("master")

    const viaSentinel = new Redis({ sentinels: [...setup.sentinelAddresses], name: setup.masterName })
    try {
      await viaSentinel.set("after-failover", "1")
      expect(await setup.replica.admin().get("after-failover")).toBe("1")
    } finally {
      viaSentinel.disconnect()
    }
  })
})
