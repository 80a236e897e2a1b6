import { type Agent, request } from "node:http"
import type { CookieJar } from "./cookie-jar.js"

/** What the harness keeps of a response. */
export interface Reply {
  readonly status: number
  readonly body: string
}

/** Per-request deadline: a stuck server fails the run instead of hanging it. */
const requestTimeoutMs = 10_000

/**
 * Sends `GET path` to `127.0.0.1:port` through `agent`, with the cookies of `jar` (if any),
 * and applies the response's `Set-Cookie` headers to that jar.
 */
export const get = (agent: Agent, port: number, path: string, jar?: CookieJar): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const cookie = jar?.header()
    const req = request(
      { host: "127.0.0.1", port, path, agent, headers: cookie === undefined ? {} : { cookie } },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("error", reject)
        res.on("end", () => {
          const setCookie = res.headers["set-cookie"]
          if (jar !== undefined && setCookie !== undefined) jar.update(setCookie)
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() })
        })
      }
    )
    req.setTimeout(requestTimeoutMs, () => req.destroy(new Error(`GET ${path} on port ${port} timed out`)))
    req.on("error", reject)
    req.end()
  })

/** Like {@link get} but rejects unless the status is 2xx; resolves to the body. */
export const getOk = async (agent: Agent, port: number, path: string, jar?: CookieJar): Promise<string> => {
  const reply = await get(agent, port, path, jar)
  if (reply.status < 200 || reply.status > 299) {
    throw new Error(`GET ${path} on port ${port} answered ${reply.status}: ${reply.body.slice(0, 200)}`)
  }
  return reply.body
}
