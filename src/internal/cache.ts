/**
 * A bounded memo of recent values: two generations of at most `size / 2` entries each; when the young one is
 * full it becomes the old one and the old one is dropped. A hit leaves the entry where it is: moving old hits
 * to the young generation filled it with them and dropped, at the next turn, entries not yet asked for (a
 * burst of logouts presents each cookie once), and an entry in use is computed again at most once per two
 * generations. O(1) per call: evicting the oldest entry of one `Map` (`map.keys().next()`) costs about 10 µs
 * per insert once the map has churned, because V8 skips every deleted slot before it. `remember` stores a value
 * known without computing it.
 */
export const memo = <A>(
  size: number,
  compute: (key: string) => A,
  keep: (value: A) => boolean = () => true,
  onHit: () => void = () => {}
) => {
  const half = Math.max(1, Math.floor(size / 2))
  let young = new Map<string, A>()
  let old = new Map<string, A>()
  const remember = (key: string, value: A) => {
    if (young.size >= half) {
      old = young
      young = new Map()
    }
    young.set(key, value)
  }
  const lookup = (key: string): A => {
    const known = young.get(key)
    if (known !== undefined) {
      onHit()
      return known
    }
    const aged = old.get(key)
    if (aged !== undefined) {
      onHit()
      return aged
    }
    const value = compute(key)
    if (keep(value)) remember(key, value)
    return value
  }
  return Object.assign(lookup, { remember })
}
