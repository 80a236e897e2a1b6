/**
 * Small load and raw-HTTP helpers for the fault and hostile-input tests. Every loop is bounded by a
 * request count and by time; every request has its own abort deadline.
 */
import * as net from "node:net"
import * as v8 from "node:v8"
import { runInNewContext } from "node:vm"

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(ms, 0)))

/** One request of a load run. `status` is 0 when the request threw (aborted, connection refused, ...). */
export interface Sample {
  readonly worker: number
  readonly route: string
  readonly started: number
  readonly ended: number
  readonly status: number
  readonly error?: string | undefined
}

export const latency = (sample: Sample) => sample.ended - sample.started

/**
 * Runs `workers` concurrent loops of `step` until `stop()` says so, `maxRequests` were started or
 * `maxMillis` passed, whichever comes first. A step that throws is recorded with status 0.
 */
export const runWorkers = async (options: {
  readonly workers: number
  readonly maxRequests: number
  readonly maxMillis: number
  readonly stop: () => boolean
  readonly step: (worker: number, iteration: number) => Promise<{ readonly route: string; readonly status: number }>
}): Promise<ReadonlyArray<Sample>> => {
  const samples: Array<Sample> = []
  const deadline = Date.now() + options.maxMillis
  let started = 0
  const worker = async (id: number) => {
    for (let i = 0; !options.stop() && started < options.maxRequests && Date.now() < deadline; i++) {
      started++
      const begin = Date.now()
      try {
        const { route, status } = await options.step(id, i)
        samples.push({ worker: id, route, started: begin, ended: Date.now(), status })
      } catch (error) {
        samples.push({
          worker: id,
          route: "?",
          started: begin,
          ended: Date.now(),
          status: 0,
          error: error instanceof Error ? error.message : String(error)
        })
      }
    }
  }
  await Promise.all(Array.from({ length: options.workers }, (_, id) => worker(id)))
  return samples
}

/** Runs `count` calls of `f` with at most `concurrency` at once. */
export const burst = async <A>(count: number, concurrency: number, f: (i: number) => Promise<A>) => {
  const results: Array<A> = []
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const i = next++
      results[i] = await f(i)
    }
  }))
  return results
}

/** Milliseconds at the given quantiles (0..1) of the latencies, for printing. */
export const quantiles = (millis: ReadonlyArray<number>, qs: ReadonlyArray<number> = [0.5, 0.99, 1]) => {
  const sorted = [...millis].sort((a, b) => a - b)
  return qs.map((q) => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!)
}

let gcFunction: (() => void) | undefined

/** A full garbage collection, so heap measurements compare live data, not garbage. */
export const collectGarbage = () => {
  if (gcFunction === undefined) {
    v8.setFlagsFromString("--expose-gc")
    gcFunction = runInNewContext("gc") as () => void
  }
  gcFunction()
}

export interface RawResponse {
  readonly status: number
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: string
}

const decodeChunked = (body: Buffer): Buffer => {
  const parts: Array<Buffer> = []
  let at = 0
  for (;;) {
    const lineEnd = body.indexOf("\r\n", at)
    if (lineEnd === -1) break
    const size = Number.parseInt(body.toString("latin1", at, lineEnd), 16)
    if (!Number.isFinite(size) || size === 0) break
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size))
    at = lineEnd + 2 + size + 2
  }
  return Buffer.concat(parts)
}

/**
 * Sends one HTTP/1.1 request over a raw socket, so header bytes that `fetch` would refuse (control
 * characters, latin1, ...) reach the server as given. `headers` are raw header lines without CRLF.
 * Rejects after `timeoutMs`.
 */
export const rawRequest = (options: {
  readonly port: number
  readonly method?: string | undefined
  readonly path: string
  readonly headers?: ReadonlyArray<Buffer | string> | undefined
  readonly timeoutMs?: number | undefined
}): Promise<RawResponse> =>
  new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: "127.0.0.1", port: options.port })
    const chunks: Array<Buffer> = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no complete response to ${options.path} within ${options.timeoutMs ?? 10_000} ms`))
    }, options.timeoutMs ?? 10_000)
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.on("close", () => {
      clearTimeout(timer)
      const raw = Buffer.concat(chunks)
      const headEnd = raw.indexOf("\r\n\r\n")
      if (headEnd === -1) return reject(new Error(`incomplete response: ${JSON.stringify(raw.toString("latin1"))}`))
      const [statusLine = "", ...lines] = raw.toString("latin1", 0, headEnd).split("\r\n")
      const headers = lines.map((line) => {
        const colon = line.indexOf(":")
        return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const
      })
      const chunked = headers.some(([k, v]) => k === "transfer-encoding" && v.toLowerCase().includes("chunked"))
      const rest = raw.subarray(headEnd + 4)
      resolve({
        status: Number(statusLine.split(" ")[1]),
        headers,
        body: (chunked ? decodeChunked(rest) : rest).toString("utf8")
      })
    })
    const head = Buffer.from(
      `${options.method ?? "GET"} ${options.path} HTTP/1.1\r\nHost: 127.0.0.1:${options.port}\r\nConnection: close\r\n`,
      "latin1"
    )
    const lines = (options.headers ?? []).map((line) =>
      Buffer.concat([typeof line === "string" ? Buffer.from(line, "latin1") : line, Buffer.from("\r\n")])
    )
    // no half-close: Node's HTTP server aborts a request whose client ended its side (httpAllowHalfOpen is
    // off), so the request goes out with `Connection: close` and the server closes after answering
    socket.write(Buffer.concat([head, ...lines, Buffer.from("\r\n")]))
  })
