import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { setTimeout } from "node:timers/promises"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisSessionStore from "../src/RedisSessionStore.js"
import * as SessionStore from "../src/SessionStore.js"
import { storeContract } from "./contract/storeContract.js"
import { TestRedis } from "./utils/RedisServer.js"

storeContract("SessionStore.layerMemory", SessionStore.layerMemory, {
  live: false,
  advance: (millis) => TestClock.adjust(millis)
})

const RedisStore = RedisSessionStore.layer().pipe(
  Layer.provide(
    Layer.unwrapEffect(Effect.map(TestRedis, (server) => RedisClient.layer({ url: Redacted.make(server.url) })))
  ),
  Layer.provide(TestRedis.layer)
)

storeContract("RedisSessionStore", RedisStore, {
  live: true,
  advance: (millis) => Effect.promise(() => setTimeout(millis))
})
