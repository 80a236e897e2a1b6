import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fc from "fast-check"
import { createHash, createHmac } from "node:crypto"
import { sessionKey } from "../src/internal/keys.js"
import * as SessionId from "../src/SessionId.js"

const NEW = Redacted.make("the-newest-secret-of-at-least-32-characters")
const OLD = Redacted.make("an-older-secret-also-at-least-32-characters")
const OTHER = Redacted.make("a-secret-nobody-configured-32-characters-long")

const ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/** The HMAC the spec prescribes, computed independently of the module under test. */
const expectedMac = (id: string, secret: Redacted.Redacted<string>) =>
  createHmac("sha256", Redacted.value(secret)).update(id).digest("base64url")

const macOf = (cookie: string) => cookie.slice(cookie.lastIndexOf(".") + 1)

/** Replaces the character at `index` with a different character of the base64url alphabet. */
const flipAt = (value: string, index: number) => {
  const c = value[index]!
  const replacement = c === "A" ? "B" : "A"
  return value.slice(0, index) + replacement + value.slice(index + 1)
}

const assertRejected = (value: string, secrets: ReadonlyArray<Redacted.Redacted<string>> = [NEW, OLD]) =>
  assert.isTrue(
    Option.isNone(SessionId.verify(value, secrets)),
    `expected ${JSON.stringify(value.slice(0, 200))} to be rejected`
  )

describe("SessionId", () => {
  describe("Generator (default)", () => {
    it.effect("gives 64 lowercase hex characters for hex", () =>
      Effect.gen(function*() {
        const generate = yield* SessionId.Generator
        for (let i = 0; i < 50; i++) {
          const id = yield* generate("hex")
          assert.match(id, /^[0-9a-f]{64}$/)
          assert.isTrue(SessionId.isValid(id))
        }
      }))

    it.effect("gives 43 base64url characters for base64url", () =>
      Effect.gen(function*() {
        const generate = yield* SessionId.Generator
        for (let i = 0; i < 50; i++) {
          const id = yield* generate("base64url")
          assert.match(id, /^[A-Za-z0-9_-]{43}$/)
          assert.strictEqual(Buffer.from(id, "base64url").length, 32)
          assert.isTrue(SessionId.isValid(id))
        }
      }))

    it.effect("never repeats over 1000 draws (hex and base64url)", () =>
      Effect.gen(function*() {
        const generate = yield* SessionId.Generator
        const hex = new Set<string>()
        const b64 = new Set<string>()
        for (let i = 0; i < 1000; i++) {
          hex.add(yield* generate("hex"))
          b64.add(yield* generate("base64url"))
        }
        assert.strictEqual(hex.size, 1000)
        assert.strictEqual(b64.size, 1000)
      }))

    it.effect("hex draws use the whole alphabet (not a constant or low-entropy source)", () =>
      Effect.gen(function*() {
        const generate = yield* SessionId.Generator
        const seen = new Set<string>()
        for (let i = 0; i < 50; i++) for (const c of yield* generate("hex")) seen.add(c)
        assert.strictEqual(seen.size, 16)
      }))

    it.effect("can be replaced through a Layer", () =>
      Effect.gen(function*() {
        const generate = yield* SessionId.Generator
        assert.strictEqual(yield* generate("hex"), "pinned-session-id-0001")
      }).pipe(Effect.provide(Layer.succeed(SessionId.Generator, () => Effect.succeed("pinned-session-id-0001")))))
  })

  describe("sign", () => {
    it("is <id>.<base64url HMAC-SHA256(secret, id)>", () => {
      const cookie = SessionId.sign(ID, NEW)
      assert.strictEqual(cookie, `${ID}.${expectedMac(ID, NEW)}`)
      assert.match(macOf(cookie), /^[A-Za-z0-9_-]{43}$/)
      assert.notInclude(cookie, "=")
      assert.notInclude(cookie, Redacted.value(NEW))
    })

    it("is the HMAC of any id under any secret, short or longer than the hash's 64-byte block", () =>
      fc.assert(
        fc.property(
          fc.string({ unit: "grapheme", maxLength: 300 }),
          fc.oneof(fc.string({ minLength: 1, maxLength: 64 }), fc.string({ minLength: 65, maxLength: 150 })),
          (id, secret) => {
            const redacted = Redacted.make(secret)
            assert.strictEqual(SessionId.sign(id, redacted), `${id}.${expectedMac(id, redacted)}`)
          }
        )
      ))

    it("depends on the secret and on the id", () => {
      assert.notStrictEqual(SessionId.sign(ID, NEW), SessionId.sign(ID, OLD))
      assert.notStrictEqual(macOf(SessionId.sign(ID, NEW)), macOf(SessionId.sign(ID.replace("0", "1"), NEW)))
    })
  })

  describe("verify", () => {
    it("round-trips a signed id", () => {
      const verified = SessionId.verify(SessionId.sign(ID, NEW), [NEW])
      assert.deepStrictEqual(verified, Option.some({ id: ID, stale: false }))
    })

    it("round-trips generated hex and base64url ids and the length bounds", () =>
      Effect.runSync(Effect.gen(function*() {
        const generate = yield* SessionId.Generator
        const ids = [yield* generate("hex"), yield* generate("base64url"), "a".repeat(16), "Z_-9".repeat(32)]
        for (const id of ids) {
          assert.deepStrictEqual(SessionId.verify(SessionId.sign(id, NEW), [NEW]), Option.some({ id, stale: false }))
        }
      })))

    it("rejects a tampered id", () => {
      const cookie = SessionId.sign(ID, NEW)
      assertRejected(flipAt(cookie, 0))
      assertRejected(flipAt(cookie, ID.length - 1))
      // an id that is a valid id, signed by nobody: the MAC of another id
      assertRejected(`${"f".repeat(64)}.${macOf(cookie)}`)
    })

    it("rejects a tampered MAC", () => {
      const cookie = SessionId.sign(ID, NEW)
      const dot = cookie.indexOf(".")
      assertRejected(flipAt(cookie, dot + 1))
      assertRejected(flipAt(cookie, dot + 20))
      assertRejected(flipAt(cookie, cookie.length - 2))
    })

    it("rejects a non-canonical last MAC character that decodes to the same bytes", () => {
      // 43 base64url characters carry 258 bits; the last character's 2 low bits are unused
      const cookie = SessionId.sign(ID, NEW)
      const last = cookie[cookie.length - 1]!
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
      const index = alphabet.indexOf(last)
      const sibling = alphabet[(index & ~3) + ((index + 1) & 3)]!
      const forged = cookie.slice(0, -1) + sibling
      assert.notStrictEqual(forged, cookie)
      assert.deepStrictEqual(
        Buffer.from(macOf(forged), "base64url"),
        Buffer.from(macOf(cookie), "base64url")
      )
      assertRejected(forged)
    })

    it("rejects a truncated MAC", () => {
      const cookie = SessionId.sign(ID, NEW)
      assertRejected(cookie.slice(0, -1))
      assertRejected(cookie.slice(0, -10))
      assertRejected(cookie.slice(0, cookie.indexOf(".") + 1))
      assertRejected(`${ID}.`)
    })

    it("rejects extra characters", () => {
      const cookie = SessionId.sign(ID, NEW)
      assertRejected(cookie + "A")
      assertRejected(cookie + "=")
      assertRejected(cookie + " ")
      assertRejected(" " + cookie)
      assertRejected("x" + cookie)
      assertRejected(cookie + "." + macOf(cookie))
    })

    it("rejects a value without the dot", () => {
      const cookie = SessionId.sign(ID, NEW)
      assertRejected(cookie.replace(".", ""))
      assertRejected(cookie.replace(".", "A"))
      assertRejected(cookie.replace(".", "_"))
      assertRejected(ID)
    })

    it("rejects empty and degenerate values", () => {
      assertRejected("")
      assertRejected(".")
      assertRejected("." + macOf(SessionId.sign(ID, NEW)))
      assertRejected(" ".repeat(44))
    })

    it("rejects an oversized value (10 KB) without trying a secret", () => {
      const huge = "a".repeat(10 * 1024)
      assertRejected(SessionId.sign(huge, NEW))
      assertRejected(huge)
      // an id one character over the limit, correctly signed
      assertRejected(SessionId.sign("a".repeat(129), NEW))
    })

    it("rejects a MAC outside the base64url alphabet", () => {
      const cookie = SessionId.sign(ID, NEW)
      const mac = macOf(cookie)
      const standard = Buffer.from(mac, "base64url").toString("base64").replace(/=+$/, "")
      // the same bytes in standard base64: Node decodes it, but it is not canonical base64url
      if (standard !== mac) assertRejected(`${ID}.${standard}`)
      assertRejected(`${ID}.${"+" + mac.slice(1)}`)
      assertRejected(`${ID}.${"/" + mac.slice(1)}`)
      assertRejected(`${ID}.${"!" + mac.slice(1)}`)
      assertRejected(`${ID}.${mac.slice(0, 20)}%${mac.slice(21)}`)
      assertRejected(`${ID}.${mac.slice(0, 20)} ${mac.slice(21)}`)
    })

    it("rejects a '=' padded MAC", () => {
      const cookie = SessionId.sign(ID, NEW)
      const mac = macOf(cookie)
      assertRejected(`${cookie}=`)
      assertRejected(`${ID}.${mac.slice(0, -1)}=`)
      assertRejected(`${ID}.${Buffer.from(mac, "base64url").toString("base64")}`)
    })

    it("rejects an id with forbidden characters even when correctly signed", () => {
      for (
        const id of [
          "abcdefghijklmnop;q",
          "abcdefghijklmnop q",
          "abcdefghijklmnop.q",
          "abcdefghijklmnop=q",
          "abcdefghijklmnop+q",
          "abcdefghijklmnop/q",
          "abcdefghijklmnop\"q",
          "abcdefghijklmnopé",
          "abcdefghijklmnop\nq",
          "short-id"
        ]
      ) {
        assertRejected(SessionId.sign(id, NEW))
      }
    })

    it("rejects a value signed with a secret not in the list", () => {
      assertRejected(SessionId.sign(ID, OTHER))
      assertRejected(SessionId.sign(ID, OLD), [NEW])
      assertRejected(SessionId.sign(ID, NEW), [])
      // a secret that differs only by a trailing character
      assertRejected(SessionId.sign(ID, Redacted.make(Redacted.value(NEW) + "!")), [NEW])
    })

    it("with secrets [new, old]: old-signed is stale, new-signed is not", () => {
      const secrets = [NEW, OLD]
      assert.deepStrictEqual(SessionId.verify(SessionId.sign(ID, NEW), secrets), Option.some({ id: ID, stale: false }))
      assert.deepStrictEqual(SessionId.verify(SessionId.sign(ID, OLD), secrets), Option.some({ id: ID, stale: true }))
    })

    it("with three secrets, any but the first is stale", () => {
      const secrets = [NEW, OLD, OTHER]
      assert.deepStrictEqual(SessionId.verify(SessionId.sign(ID, OTHER), secrets), Option.some({ id: ID, stale: true }))
      assert.deepStrictEqual(SessionId.verify(SessionId.sign(ID, NEW), secrets), Option.some({ id: ID, stale: false }))
    })

    it("removing the old secret from the list rejects cookies signed with it", () => {
      const oldCookie = SessionId.sign(ID, OLD)
      assert.isTrue(Option.isSome(SessionId.verify(oldCookie, [NEW, OLD])))
      assertRejected(oldCookie, [NEW])
      assert.isTrue(Option.isSome(SessionId.verify(SessionId.sign(ID, NEW), [NEW])))
    })
  })

  describe("Redis session keys (internal/keys)", () => {
    it("is the prefix followed by the lowercase hex SHA-256 of the id", () => {
      const key = sessionKey("session:", ID)
      assert.match(key, /^session:[0-9a-f]{64}$/)
      assert.strictEqual(key, "session:" + createHash("sha256").update(ID).digest("hex"))
      // known vector: SHA-256("abc")
      assert.strictEqual(
        sessionKey("", "abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
      )
    })

    it("does not contain the id", () => {
      const id = "Bearer-Token-ABCDEFGHIJKLMNOP"
      const key = sessionKey("p:", id)
      assert.notInclude(key, id)
      assert.notInclude(key, ID.slice(0, 16))
      assert.notInclude(sessionKey("", ID), ID)
      assert.strictEqual(sessionKey("prefix", ID).length, 70)
    })

    it("is deterministic and distinct per id", () => {
      assert.strictEqual(sessionKey("p:", ID), sessionKey("p:", ID))
      assert.notStrictEqual(sessionKey("p:", ID), sessionKey("p:", ID.replace("0", "1")))
      assert.notStrictEqual(sessionKey("a:", ID), sessionKey("b:", ID))
    })
  })

  describe("isValid", () => {
    it("accepts 16 to 128 characters of [A-Za-z0-9_-]", () => {
      assert.isFalse(SessionId.isValid("a".repeat(15)))
      assert.isTrue(SessionId.isValid("a".repeat(16)))
      assert.isTrue(SessionId.isValid("a".repeat(128)))
      assert.isFalse(SessionId.isValid("a".repeat(129)))
      assert.isFalse(SessionId.isValid(""))
      assert.isTrue(SessionId.isValid("AZaz09_-AZaz09_-"))
    })

    it("rejects forbidden characters", () => {
      for (const c of [".", "=", "+", "/", " ", ";", ",", "\"", "\n", "é", "\u0000"]) {
        assert.isFalse(SessionId.isValid("a".repeat(20) + c), JSON.stringify(c))
        assert.isFalse(SessionId.isValid(c + "a".repeat(20)), JSON.stringify(c))
      }
    })
  })
})
