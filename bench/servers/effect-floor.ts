/** The floor of `effect-redis-sessions`: the `effect-none` server plus the routes of `floor-routes.ts`. */
import { Redis } from "ioredis"
import { serve } from "./effect-serve.js"
import { redisUrl } from "./env.js"
import { floorRoutes } from "./floor-routes.js"

const redis = new Redis(redisUrl(), {
  lazyConnect: true,
  commandTimeout: 1000,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0
})
await redis.connect()

serve(await floorRoutes(redis))
