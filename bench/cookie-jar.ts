/** A browser-like store of the cookies of one client: sends them back and follows `Set-Cookie`. */
export class CookieJar {
  private readonly cookies = new Map<string, string>()

  /** A jar already holding `name=value` (used to give sessionless servers a cookie of realistic size). */
  static of(name: string, value: string): CookieJar {
    const jar = new CookieJar()
    jar.cookies.set(name, value)
    return jar
  }

  /** The `Cookie` request header, or undefined when the jar is empty. */
  header(): string | undefined {
    if (this.cookies.size === 0) return undefined
    return Array.from(this.cookies, ([name, value]) => `${name}=${value}`).join("; ")
  }

  /** Applies the `Set-Cookie` response headers: stores new values, forgets cleared or expired cookies. */
  update(setCookie: ReadonlyArray<string>): void {
    for (const line of setCookie) {
      const [pair = "", ...attributes] = line.split(";")
      const eq = pair.indexOf("=")
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      if (value === "" || attributes.some(isExpiry)) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  /** True when the jar holds at least one cookie. */
  get isEmpty(): boolean {
    return this.cookies.size === 0
  }
}

const isExpiry = (attribute: string): boolean => {
  const [key = "", value = ""] = attribute.split("=").map((part) => part.trim())
  const name = key.toLowerCase()
  if (name === "max-age") return Number(value) <= 0
  if (name === "expires") return Date.parse(value) <= Date.now()
  return false
}
