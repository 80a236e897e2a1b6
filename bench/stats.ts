/** Median of a list of numbers (NaN for an empty list). */
export const median = (values: ReadonlyArray<number>): number => percentile(Float64Array.from(values), 50)

/** Nearest-rank percentile `p` (0-100) of `values` (sorted in place; NaN when empty). */
export const percentile = (values: Float64Array, p: number): number => {
  if (values.length === 0) return NaN
  values.sort()
  const rank = Math.ceil((p / 100) * values.length)
  return values[Math.min(values.length, Math.max(1, rank)) - 1]!
}
