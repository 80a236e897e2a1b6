import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { promisify } from "node:util"
import * as HttpSession from "../src/HttpSession.js"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisSession from "../src/RedisSession.js"
import * as RedisSessionStore from "../src/RedisSessionStore.js"
import * as SessionConfig from "../src/SessionConfig.js"
import { freePort, startRedisServer } from "./utils/RedisServer.js"
import { serveClient } from "./utils/testApp.js"
import { TestBrowser } from "./utils/TestBrowser.js"

const SECRET = "a-secret-of-at-least-32-characters-for-tls-tests"
const run = promisify(execFile)

/** A CA, a server certificate for localhost / 127.0.0.1 and a client certificate it signed, and a CA nobody used. */
const makeCertificates = async (dir: string) => {
  const file = (name: string) => path.join(dir, name)
  const openssl = (...args: ReadonlyArray<string>) => run("openssl", args, { timeout: 30_000 })
  const selfSigned = (name: string) =>
    openssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      file(`${name}.key`),
      "-out",
      file(`${name}.crt`)
    )
  const signed = async (name: string, extensions: string) => {
    await openssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      file(`${name}.key`),
      "-out",
      file(`${name}.csr`)
    )
    writeFileSync(file(`${name}.ext`), extensions)
    await openssl(
      "x509",
      "-req",
      "-in",
      file(`${name}.csr`),
      "-CA",
      file("ca.crt"),
      "-CAkey",
      file("ca.key"),
      "-CAcreateserial",
      "-days",
      "2",
      "-out",
      file(`${name}.crt`),
      "-extfile",
      file(`${name}.ext`)
    )
  }
  await selfSigned("ca")
  await selfSigned("other-ca")
  await signed("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
  await signed("client", "extendedKeyUsage=clientAuth\n")
  return file
}

/** A redis-server with a TLS port that requires client certificates (its plain port is for the harness only). */
const tlsRedis = Effect.gen(function*() {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(path.join(tmpdir(), "sessions-tls-"))),
    (created) => Effect.sync(() => rmSync(created, { recursive: true, force: true }))
  )
  const file = yield* Effect.promise(() => makeCertificates(dir))
  const tlsPort = yield* Effect.promise(() => freePort())
  const server = yield* Effect.acquireRelease(
    Effect.promise(() =>
      startRedisServer({
        args: [
          "--tls-port",
          String(tlsPort),
          "--tls-cert-file",
          file("server.crt"),
          "--tls-key-file",
          file("server.key"),
          "--tls-ca-cert-file",
          file("ca.crt"),
          "--tls-auth-clients",
          "yes"
        ]
      })
    ),
    (started) => Effect.promise(() => started.stop())
  )
  const pem = (name: string) => readFileSync(file(name), "utf8")
  const trusted: RedisClient.TlsOptions = {
    ca: pem("ca.crt"),
    cert: pem("client.crt"),
    key: Redacted.make(pem("client.key"))
  }
  return { server, tlsPort, file, pem, trusted }
})

const FAST = { connectTimeout: "2 seconds", commandTimeout: "1 second" } as const

const sessionsOver = (client: Layer.Layer<RedisClient.RedisClient, unknown>) =>
  HttpSession.layerRouter.pipe(
    Layer.provide(RedisSessionStore.layer({ prefix: "tls:" })),
    Layer.provide(client),
    Layer.provide(SessionConfig.layer({ secret: SECRET }))
  )

/** Building a client with these options fails: its error. */
const refused = (options: RedisClient.Options) =>
  Effect.flip(Effect.scoped(Layer.build(RedisClient.layer(options)))).pipe(
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the layer build hung") })
  )

describe("TLS to Redis", () => {
  it.scoped(
    "with the CA and a client certificate, sessions are stored over TLS (code options)",
    () =>
      Effect.gen(function*() {
        const { server, tlsPort, trusted } = yield* tlsRedis
        const client = RedisClient.layer({ host: "127.0.0.1", port: tlsPort, tls: trusted, ...FAST })
        const browser = new TestBrowser(yield* serveClient(sessionsOver(client)))
        assert.strictEqual((yield* browser.get("/incr")).body, "1")
        assert.strictEqual((yield* browser.get("/incr")).body, "2")
        const keys = yield* Effect.promise(() => server.admin().keys("tls:*"))
        assert.lengthOf(keys, 1)
      }),
    { timeout: 60_000 }
  )

  it.scoped(
    "the redis.sessions.tls_* settings: rediss:// URL, CA and client certificate files",
    () =>
      Effect.gen(function*() {
        const { file, tlsPort } = yield* tlsRedis
        const browser = new TestBrowser(
          yield* serveClient(RedisSession.layerFromSettings({
            "redis.sessions.secret": SECRET,
            "redis.sessions.url": `rediss://localhost:${tlsPort}`,
            "redis.sessions.tls_ca_file": file("ca.crt"),
            "redis.sessions.tls_cert_file": file("client.crt"),
            "redis.sessions.tls_key_file": file("client.key")
          }))
        )
        assert.strictEqual((yield* browser.get("/incr")).body, "1")
        assert.strictEqual((yield* browser.get("/read")).body, "1")
      }),
    { timeout: 60_000 }
  )

  it.scoped(
    "a server certificate from another CA fails the layer build with a RedisError naming TLS",
    () =>
      Effect.gen(function*() {
        const { pem, tlsPort, trusted } = yield* tlsRedis
        const error = yield* refused({
          host: "127.0.0.1",
          port: tlsPort,
          tls: { ...trusted, ca: pem("other-ca.crt") },
          ...FAST
        })
        assert.strictEqual(error._tag, "RedisError")
        assert.match(error.message, /TLS: .*certificate/)
      }).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.None))),
    { timeout: 60_000 }
  )

  it.scoped("a server name the certificate does not carry fails, naming TLS", () =>
    Effect.gen(function*() {
      const { tlsPort, trusted } = yield* tlsRedis
      const error = yield* refused({
        host: "127.0.0.1",
        port: tlsPort,
        tls: { ...trusted, servername: "redis.example" },
        ...FAST
      })
      assert.strictEqual(error._tag, "RedisError")
      assert.match(error.message, /TLS: /)
    }).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.None))), { timeout: 60_000 })

  it.scoped(
    "no client certificate where the server requires one, or plaintext to the TLS port: refused, typed",
    () =>
      Effect.gen(function*() {
        const { pem, tlsPort } = yield* tlsRedis
        const withoutCertificate = yield* refused({
          host: "127.0.0.1",
          port: tlsPort,
          tls: { ca: pem("ca.crt") },
          ...FAST
        })
        assert.strictEqual(withoutCertificate._tag, "RedisError")
        const plaintext = yield* refused({ url: Redacted.make(`redis://127.0.0.1:${tlsPort}`), ...FAST })
        assert.strictEqual(plaintext._tag, "RedisError")
      }).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.None))),
    { timeout: 60_000 }
  )

  it.effect("a certificate without its key, or a file that cannot be read, is a configuration error at its setting", () =>
    Effect.gen(function*() {
      const base = { "redis.sessions.secret": SECRET }
      const unpaired = yield* Effect.flip(
        SessionConfig.fromSettings({ ...base, "redis.sessions.tls_cert_file": "/etc/hostname" })
      )
      assert.include(unpaired.message, "redis.sessions.tls_key_file")
      const missing = yield* Effect.flip(
        SessionConfig.fromSettings({ ...base, "redis.sessions.tls_ca_file": "/nonexistent/ca.crt" })
      )
      assert.include(missing.message, "redis.sessions.tls_ca_file")
      assert.include(missing.message, "ENOENT")
    }))
})
