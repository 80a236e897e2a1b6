/** A parsed `Set-Cookie` header. */
export interface SetCookie {
  readonly name: string
  readonly value: string
  readonly attributes: ReadonlyMap<string, string>
}

export const parseSetCookie = (header: string): SetCookie => {
  const [pair = "", ...rest] = header.split(";")
  const eq = pair.indexOf("=")
  const attributes = new Map<string, string>()
  for (const attribute of rest) {
    const [k = "", v = ""] = attribute.trim().split("=")
    attributes.set(k.toLowerCase(), v)
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attributes }
}

export interface Reply {
  readonly status: number
  /** Response headers, names in lower case (`set-cookie` joined; see `cookies`). */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly cookies: ReadonlyArray<SetCookie>
}

/**
 * A minimal cookie-keeping HTTP client for one cookie name: it stores what `Set-Cookie` says and sends
 * it back, like a browser, and deletes it on `Max-Age=0`. Every request is aborted after 10 s so a
 * hang fails the test instead of blocking it.
 */
export class Browser {
  cookie: string | undefined

  constructor(readonly baseUrl: string, readonly cookieName = "session") {}

  async get(path: string, headers: Record<string, string> = {}): Promise<Reply> {
    const response = await fetch(this.baseUrl + path, {
      headers: this.cookie === undefined ? headers : { cookie: `${this.cookieName}=${this.cookie}`, ...headers },
      signal: AbortSignal.timeout(10_000)
    })
    const cookies = response.headers.getSetCookie().map(parseSetCookie)
    for (const cookie of cookies) {
      if (cookie.name !== this.cookieName) continue
      this.cookie = cookie.attributes.get("max-age") === "0" ? undefined : cookie.value
    }
    return {
      status: response.status,
      headers: Object.fromEntries(response.headers),
      body: await response.text(),
      cookies
    }
  }
}
