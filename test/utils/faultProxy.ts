/**
 * A TCP proxy on 127.0.0.1 that sits between the application and one Redis server and injects
 * connection faults on command: it forwards bytes both ways until told otherwise.
 *
 * - `dropAfterNext(pattern)`: the next client write whose bytes match `pattern` is forwarded to Redis,
 *   then the client's connection is cut before any reply can reach it (the upstream side is half-closed
 *   with FIN, so Redis still reads and runs the whole command): the client sees "connection closed while
 *   a command was pending", while the command did run once. The pattern must fall in the first chunk of
 *   the command, and the command must fit in that chunk (true for the small scripts of these tests).
 * - `blackhole()`: from now on, replies on the connections open now are swallowed (a half-open
 *   connection: the client keeps writing and Redis keeps answering, but nothing comes back). Connections
 *   opened later work normally.
 *
 * Every socket it opens is closed by `close()`. Loopback only.
 */
import * as net from "node:net"

const LOCALHOST = "127.0.0.1"

export interface FaultProxy {
  readonly port: number
  /** `redis://127.0.0.1:<proxy port>` */
  readonly url: string
  /** Client connections accepted since the start. */
  readonly accepted: number
  /** Client connections open now. */
  readonly open: number
  /** Arms a one-shot cut; resolves when it fired. */
  dropAfterNext(pattern: RegExp): Promise<void>
  /** Swallows every further reply on the connections open now. */
  blackhole(): void
  close(): Promise<void>
}

interface Pair {
  readonly client: net.Socket
  readonly upstream: net.Socket
  swallow: boolean
}

export const startFaultProxy = (target: { readonly host: string; readonly port: number }): Promise<FaultProxy> =>
  new Promise((resolve, reject) => {
    const pairs = new Set<Pair>()
    let accepted = 0
    let armed: { readonly pattern: RegExp; readonly fired: () => void } | undefined

    const server = net.createServer((client) => {
      accepted++
      client.setNoDelay(true)
      const upstream = net.createConnection({ host: target.host, port: target.port })
      upstream.setNoDelay(true)
      const pair: Pair = { client, upstream, swallow: false }
      pairs.add(pair)
      const end = () => {
        pairs.delete(pair)
        client.destroy()
        upstream.destroy()
      }
      client.on("error", end)
      upstream.on("error", end)
      client.on("close", end)
      // the upstream may be half-closed on purpose (dropAfterNext): let Redis finish, then close
      upstream.on("close", end)
      upstream.on("data", (chunk: Buffer) => {
        if (!pair.swallow && !client.destroyed) client.write(chunk)
      })
      client.on("data", (chunk: Buffer) => {
        const trigger = armed
        if (trigger !== undefined && trigger.pattern.test(chunk.toString("latin1"))) {
          armed = undefined
          pair.swallow = true
          pairs.delete(pair)
          // write the command, then FIN: Redis reads and runs it, and its reply goes nowhere
          upstream.end(chunk)
          client.destroy()
          trigger.fired()
          return
        }
        // net.Socket buffers writes made before the upstream connection is established
        upstream.write(chunk)
      })
    })
    server.on("error", reject)
    server.listen(0, LOCALHOST, () => {
      const { port } = server.address() as net.AddressInfo
      resolve({
        port,
        url: `redis://${LOCALHOST}:${port}`,
        get accepted() {
          return accepted
        },
        get open() {
          return pairs.size
        },
        dropAfterNext: (pattern) =>
          new Promise<void>((fired) => {
            armed = { pattern, fired }
          }),
        blackhole: () => {
          for (const pair of pairs) pair.swallow = true
        },
        close: () =>
          new Promise<void>((closed) => {
            armed = undefined
            for (const pair of pairs) {
              pair.client.destroy()
              pair.upstream.destroy()
            }
            pairs.clear()
            server.close(() => closed())
          })
      })
    })
  })
