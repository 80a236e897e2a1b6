import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"

/**
 * A counter whose tag is part of its key. `Metric.tagged` builds, hashes and looks up a new key on every
 * update (about 2.5 µs each on the request path); this one finds its state once and keeps it.
 */
export const taggedCounter = (name: string, description: string, tag: string, value: string) =>
  Metric.fromMetricKey(MetricKey.tagged(MetricKey.counter(name, { description, incremental: true }), tag, value))

/** A histogram whose tag is part of its key (see {@link taggedCounter}). */
export const taggedHistogram = (
  name: string,
  boundaries: MetricBoundaries.MetricBoundaries,
  description: string,
  tag: string,
  value: string
) => Metric.fromMetricKey(MetricKey.tagged(MetricKey.histogram(name, boundaries, description), tag, value))

/** The Redis latency histogram (`SessionMetrics.redisLatency`). */
export const latency = {
  name: "sessions_redis_call_duration_ms",
  boundaries: MetricBoundaries.exponential({ start: 0.25, factor: 2, count: 14 }),
  description: "Redis round trip of one store call, milliseconds"
}

const latencies = new Map<string, Metric.Metric.Histogram<number>>()

/** The latency histogram of one store operation, made once per operation name. */
export const latencyOf = (operation: string): Metric.Metric.Histogram<number> => {
  let histogram = latencies.get(operation)
  if (histogram === undefined) {
    histogram = taggedHistogram(latency.name, latency.boundaries, latency.description, "operation", operation)
    latencies.set(operation, histogram)
  }
  return histogram
}
