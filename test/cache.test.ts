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

  it("remembers at most `size` keys, and a key used again outlives the ones that were not", () => {
    const { computed, get } = counting(4)
    for (const key of ["a", "b", "c", "d"]) get(key)
    get("a") // from the old generation into the young one
    for (const key of ["e", "f"]) get(key)
    computed.length = 0
    get("a")
    get("f")
    assert.deepStrictEqual(computed, [])
    get("b")
    get("c")
    assert.deepStrictEqual(computed, ["b", "c"])
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
