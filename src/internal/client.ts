import { isIPv4, isIPv6 } from "node:net"

/** What a session keeps of the client that created it (with `record_client`). */
export interface ClientInfo {
  /** The `User-Agent` header without control characters, at most 256 bytes of UTF-8. */
  readonly userAgent: string | undefined
  /** The client's network, never its address: the /24 of an IPv4 address, the /48 of an IPv6 one. */
  readonly network: string | undefined
}

const MAX_USER_AGENT_BYTES = 256

/** A `User-Agent` header as stored: control characters removed, cut at 256 bytes on a character boundary. */
export const userAgentOf = (header: string | undefined): string | undefined => {
  if (header === undefined) return undefined

  const printable = header.slice(0, 4 * MAX_USER_AGENT_BYTES).replace(/[\u0000-\u001f\u007f-\u009f]/g, "").trim()
  let bytes = 0
  let end = 0
  for (const char of printable) {
    bytes += Buffer.byteLength(char)
    if (bytes > MAX_USER_AGENT_BYTES) break
    end += char.length
  }
  const kept = printable.slice(0, end).trimEnd()
  return kept === "" ? undefined : kept
}

/** The eight 16-bit groups of an IPv6 address (an embedded IPv4 tail counts as two). */
const groupsOf = (address: string): Array<number> => {
  const parse = (part: string) =>
    part === "" ? [] : part.split(":").flatMap((group) => {
      if (!isIPv4(group)) return [parseInt(group, 16)]
      const [a, b, c, d] = group.split(".").map(Number) as [number, number, number, number]
      return [(a << 8) | b, (c << 8) | d]
    })
  const [head = "", tail] = address.split("::")
  const first = parse(head)
  const last = tail === undefined ? [] : parse(tail)
  return [...first, ...new Array<number>(8 - first.length - last.length).fill(0), ...last]
}

/** The network of a remote address (`/24` or `/48`), or `undefined` when it is not an IP address. */
export const networkOf = (address: string | undefined): string | undefined => {
  if (address === undefined) return undefined
  const bare = address.split("%")[0]!
  const ipv4 = bare.toLowerCase().startsWith("::ffff:") && isIPv4(bare.slice(7)) ? bare.slice(7) : bare
  if (isIPv4(ipv4)) return `${ipv4.split(".").slice(0, 3).join(".")}.0/24`
  if (!isIPv6(bare)) return undefined
  return `${groupsOf(bare).slice(0, 3).map((group) => group.toString(16)).join(":")}::/48`
}

/** What `record_client` stores for a request with these headers and address. */
export const clientOf = (userAgent: string | undefined, address: string | undefined): ClientInfo => ({
  userAgent: userAgentOf(userAgent),
  network: networkOf(address)
})
