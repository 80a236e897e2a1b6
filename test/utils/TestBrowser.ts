import { HttpClient, type HttpClientError } from "@effect/platform"
import * as Effect from "effect/Effect"
import { parseSetCookie, type Reply } from "./Browser.js"

/** Splits a `Set-Cookie` header that joined several with ", " (commas inside `Expires` dates are not splits). */
const splitSetCookie = (header: string | undefined): Array<string> =>
  header === undefined || header === "" ? [] : header.split(/,\s*(?=[!#$%&'*+\-.^_`|~0-9A-Za-z]+=)/)

/**
 * `Browser` on Effect's `HttpClient` (for `NodeHttpServer.layerTest`): keeps one cookie as `Set-Cookie` says,
 * sends it back, deletes it on `Max-Age=0`, and reports every `Set-Cookie` of a response. A request that gets
 * no answer within 10 s (of the clock in context) fails the test, naming it, instead of blocking it.
 */
export class TestBrowser {
  cookie: string | undefined

  constructor(readonly client: HttpClient.HttpClient, readonly cookieName = "session") {}

  /** Another browser holding this one's cookie, like a second tab. */
  tab(): TestBrowser {
    const tab = new TestBrowser(this.client, this.cookieName)
    tab.cookie = this.cookie
    return tab
  }

  get(
    path: string,
    headers: Record<string, string> = {}
  ): Effect.Effect<Reply, HttpClientError.HttpClientError | Error> {
    const cookie = this.cookie === undefined ? {} : { cookie: `${this.cookieName}=${this.cookie}` }
    return Effect.gen(this, function*() {
      const response = yield* this.client.get(path, { headers: { ...cookie, ...headers } })
      const cookies = splitSetCookie(response.headers["set-cookie"]).map(parseSetCookie)
      for (const set of cookies) {
        if (set.name !== this.cookieName) continue
        this.cookie = set.attributes.get("max-age") === "0" ? undefined : set.value
      }
      return { status: response.status, headers: response.headers, body: yield* response.text, cookies }
    }).pipe(
      Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`GET ${path} got no response`) })
    )
  }
}

/** A new `TestBrowser` on the `HttpClient` in context. */
export const makeBrowser = (cookieName?: string) =>
  Effect.map(HttpClient.HttpClient, (client) => new TestBrowser(client, cookieName))
