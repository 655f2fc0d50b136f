import { DECISION_LATENCY_BUCKETS } from '@at-orchestrator/contracts';

/** A worker's totals as its heartbeat reports them (see WorkerHeartbeat.stats). */
export interface WorkerTotals {
  readonly decided: number;
  readonly forwarded: number;
  readonly deadLetters: Readonly<Record<string, number>>;
  /** Cumulative counts per DECISION_LATENCY_BUCKETS bound, +Inf last. */
  readonly latency: readonly number[];
}

/**
 * The q-quantile (0 < q < 1) of cumulative bucket counts, in ms, interpolated linearly inside the
 * bucket the way Prometheus's histogram_quantile does (so the console and a dashboard agree); null
 * when the counts are empty. A quantile in the +Inf bucket is given as the highest finite bound.
 */
export function latencyQuantileMs(cumulative: readonly number[], q: number, bounds: readonly number[] = DECISION_LATENCY_BUCKETS): number | null {
  const total = cumulative[bounds.length] ?? cumulative[cumulative.length - 1] ?? 0;
  if (!(total > 0)) return null;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    const count = cumulative[i] ?? 0;
    if (count < rank) continue;
    const below = i === 0 ? 0 : (cumulative[i - 1] ?? 0);
    const lower = i === 0 ? 0 : bounds[i - 1]!;
    const upper = bounds[i]!;
    const inBucket = count - below;
    const seconds = inBucket <= 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
    return Math.round(seconds * 1000 * 1000) / 1000;
  }
  return bounds[bounds.length - 1]! * 1000;
}
