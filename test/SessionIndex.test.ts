/**
 * `SessionIndex` outside requests (an admin task) on the memory store, and what `record_client` keeps of a
 * client: its user agent, cleaned and cut, and its network, never its address.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { networkOf, userAgentOf } from "../src/internal/client.js"
import * as SessionIndex from "../src/SessionIndex.js"
import * as SessionStore from "../src/SessionStore.js"

const session = (principal: string, userAgent?: string): SessionStore.NewSession => ({
  fields: new Map(),
  created: 1_000,
  timeout: 600,
  absoluteDeadline: undefined,
  principal,
  client: { userAgent, network: "192.0.2.0/24" }
})

describe("SessionIndex outside requests", () => {
  it.effect("lists without a current session, refuses any handle it did not list, revokeOthers is a defect", () =>
    Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      yield* store.create("id-of-the-phone-0001", session("rae", "Phone/1.0"), SessionStore.noLimits)
      yield* store.create("id-of-the-laptop-001", session("rae"), SessionStore.noLimits)
      const index = yield* SessionIndex.make
      const listed = yield* index.list("rae")
      assert.deepStrictEqual(
        listed.map((s) => [Option.getOrNull(s.userAgent), Option.getOrNull(s.network), s.current]),
        [["Phone/1.0", "192.0.2.0/24", false], [null, "192.0.2.0/24", false]]
      )
      for (const forged of ["", "x".repeat(100_000), "id-of-the-phone-0001", listed[0]!.handle + " "]) {
        assert.isFalse(yield* index.revoke("rae", forged))
      }
      assert.isFalse(yield* index.revoke("someone-else", listed[0]!.handle))
      assert.strictEqual((yield* index.list("rae")).length, 2)
      const exit = yield* Effect.exit(index.revokeOthers("rae"))
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      if (Exit.isFailure(exit)) assert.include(String(Cause.squash(exit.cause)), "SessionIndex.revokeOthers")
      assert.isTrue(yield* index.revoke("rae", listed[0]!.handle))
      assert.strictEqual(yield* index.revokeAll("rae"), 1)
    }).pipe(Effect.provide(SessionStore.layerMemory)))
})

describe("record_client", () => {
  it("keeps the user agent without control characters, cut at 256 bytes on a character boundary", () => {
    assert.strictEqual(userAgentOf("Mozilla/5.0\r\nX-Injected: 1\u0000\u007f"), "Mozilla/5.0X-Injected: 1")
    assert.strictEqual(userAgentOf("a".repeat(100_000)), "a".repeat(256))
    const latin1 = "é".repeat(200) // 2 bytes each in UTF-8
    assert.strictEqual(userAgentOf(latin1), "é".repeat(128))
    assert.isUndefined(userAgentOf("\u0001\u0002  "))
    assert.isUndefined(userAgentOf(undefined))
  })

  it("keeps the network of an address, never the address", () => {
    assert.strictEqual(networkOf("203.0.113.77"), "203.0.113.0/24")
    assert.strictEqual(networkOf("::ffff:203.0.113.77"), "203.0.113.0/24")
    assert.strictEqual(networkOf("2001:db8:85a3:8d3:1319:8a2e:370:7348"), "2001:db8:85a3::/48")
    assert.strictEqual(networkOf("2001:db8::1"), "2001:db8:0::/48")
    assert.strictEqual(networkOf("fe80::1%eth0"), "fe80:0:0::/48")
    assert.strictEqual(networkOf("::1"), "0:0:0::/48")
    assert.strictEqual(networkOf("64:ff9b::192.0.2.33"), "64:ff9b:0::/48")
    for (const garbage of ["", "localhost", "1.2.3", "999.1.1.1", "::g", "x".repeat(10_000)]) {
      assert.isUndefined(networkOf(garbage), garbage.slice(0, 20))
    }
    assert.isUndefined(networkOf(undefined))
  })
})
