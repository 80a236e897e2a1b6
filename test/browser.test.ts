/**
 * The example server (`examples/server.ts`, on a private Redis) in a real browser: headless Chromium, Debian's
 * `chromium` package driven by `playwright-core` (`.ci/run` installs it). Two browser contexts are two devices
 * of one user: both sign in, one lists both on "Your devices" and signs the other out, and the other is
 * logged out on its next request. Without Chromium the suite fails, saying how to install it.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { setTimeout as delay } from "node:timers/promises"
import { type Browser, type BrowserContext, chromium } from "playwright-core"
import { freePort, type RedisServer, startRedisServer } from "./utils/RedisServer.js"

const CHROMIUM = "/usr/bin/chromium"

/** Starts the example on `port` and waits until it answers (each probe bounded: a connection can hang). */
const startExample = async (port: number, redisUrl: string): Promise<ChildProcess> => {
  const child = spawn(process.execPath, ["--import", "tsx", "examples/server.ts"], {
    env: { ...process.env, PORT: String(port), REDIS_URL: redisUrl, NODE_ENV: "development" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const output: Array<string> = []
  child.stdout!.on("data", (chunk) => output.push(String(chunk)))
  child.stderr!.on("data", (chunk) => output.push(String(chunk)))
  const deadline = Date.now() + 40_000
  while (Date.now() < deadline && child.exitCode === null) {
    const up = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.ok,
      () => false
    )
    if (up) return child
    await delay(100)
  }
  child.kill()
  throw new Error(`the example did not start: ${output.join("")}`)
}

describe("the example in Chromium", () => {
  let redis: RedisServer
  let example: ChildProcess
  let browser: Browser
  let base: string

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does)`)
    redis = await startRedisServer()
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    example = await startExample(port, redis.url)
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] })
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    example?.kill()
    await redis?.stop()
  })

  /** A device: a browser context of its own, signed in as `user`. */
  const signIn = async (userAgent: string, user: string, remember: boolean): Promise<BrowserContext> => {
    const context = await browser.newContext({ userAgent })
    const page = await context.newPage()
    await page.goto(`${base}/login`)
    await page.fill("input[name=name]", user)
    if (remember) await page.check("input[name=remember]")
    await Promise.all([page.waitForURL(`${base}/`), page.click("button:has-text('Log in')")])
    assert.include(await page.textContent("nav"), `Logged in as ${user}`)
    await page.close()
    return context
  }

  const sessionCookie = async (context: BrowserContext) =>
    (await context.cookies(base)).find((cookie) => cookie.name === "session")

  it("two devices sign in; one lists both and signs the other out, who is logged out on the next request", async () => {
    const laptop = await signIn("Laptop/1.0 (browser test)", "alice", true)
    const phone = await signIn("Phone/2.0 (browser test)", "alice", false)
    const remembered = await sessionCookie(laptop)
    assert.isAbove(remembered!.expires, Date.now() / 1000 + 29 * 24 * 3600, "remember me: a 30-day cookie")
    assert.strictEqual((await sessionCookie(phone))!.expires, -1, "without it: a browser-session cookie")

    const page = await laptop.newPage()
    await page.goto(`${base}/devices`)
    const rows = await page.locator("tr.device").allTextContents()
    assert.strictEqual(rows.length, 2)
    assert.isTrue(rows.some((row) => row.includes("Laptop/1.0") && row.includes("this device")))
    assert.isTrue(rows.some((row) => row.includes("Phone/2.0") && !row.includes("this device")))
    assert.isTrue(rows.every((row) => /127\.0\.0\.0\/24/.test(row)), "the network, never the address")
    assert.include(await page.textContent("nav"), " · Your devices · ", "the page is read as UTF-8")

    await Promise.all([page.waitForURL(`${base}/devices`), page.click("button:has-text('Sign out other devices')")])
    assert.include(await page.textContent("body"), "1 other device(s) signed out.")
    assert.strictEqual(await page.locator("tr.device").count(), 1)

    const phonePage = await phone.newPage()
    await phonePage.goto(`${base}/`)
    assert.include(await phonePage.textContent("nav"), "Log in")
    assert.notInclude(await phonePage.textContent("nav"), "Logged in as")
    assert.isUndefined(await sessionCookie(phone), "its cookie was deleted")

    await page.goto(`${base}/profile`)
    await Promise.all([page.waitForURL(`${base}/profile`), page.click("button:has-text('Change name')")])
    assert.include(await page.textContent("body"), "Name changed.", "a fresh login may do the sensitive action")
    await laptop.close()
    await phone.close()
  }, 60_000)
})
