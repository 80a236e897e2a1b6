import { assert, describe, it } from "@effect/vitest"
import { memo } from "../src/internal/cache.js"

describe("internal memo (verified cookies, id digests)", () => {
  const counting = (size: number, keep?: (value: string) => boolean) => {
    const computed: Array<string> = []
    const get = memo(size, (key) => {
      computed.push(key)
      return key.toUpperCase()
    }, keep)
    return { computed, get }
  }

  it("computes a key once while it is remembered", () => {
    const { computed, get } = counting(4)
    assert.strictEqual(get("a"), "A")
    assert.strictEqual(get("a"), "A")
    assert.deepStrictEqual(computed, ["a"])
  })

  it("remembers at most `size` keys, for two generations whatever their use", () => {
    const { computed, get } = counting(4)
    for (const key of ["a", "b", "c", "d"]) get(key)
    get("a") // a hit in the old generation leaves it there
    for (const key of ["e", "f"]) get(key)
    computed.length = 0
    get("f")
    get("a")
    assert.deepStrictEqual(computed, ["a"], "a went with its generation")
  })

  it("a burst of keys each asked for once keeps every key it has not reached yet", () => {
    // 6 keys made (signed) before the burst, in a memo of 8: asking for each in turn computes none
    const { computed, get } = counting(8)
    const made = ["k1", "k2", "k3", "k4", "k5", "k6"]
    for (const key of made) get(key)
    computed.length = 0
    for (const key of made) get(key)
    assert.deepStrictEqual(computed, [])
    // a working set that fits is computed once; one three times the size is computed on every use
    const { computed: small, get: fits } = counting(100)
    for (let round = 0; round < 5; round++) for (let i = 0; i < 40; i++) fits(`k${i}`)
    assert.strictEqual(small.length, 40)
    const { computed: many, get: busy } = counting(100)
    for (let round = 0; round < 5; round++) for (let i = 0; i < 300; i++) busy(`k${i}`)
    assert.strictEqual(many.length, 1_500)
  })

  it("never remembers what `keep` refuses", () => {
    const { computed, get } = counting(4, (value) => value !== "FORGED")
    get("forged")
    get("forged")
    assert.deepStrictEqual(computed, ["forged", "forged"])
  })
})
