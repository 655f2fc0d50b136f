import { DECISION_LATENCY_BUCKETS, type WorkerHeartbeat } from '@at-orchestrator/contracts';
import type { MetricObjectWithValues, MetricValue, MetricValueWithName } from 'prom-client';
import type { Correlations } from '../fanin/correlations.js';
import type { WorkerMetrics } from '../metrics.js';

export type HeartbeatStats = NonNullable<WorkerHeartbeat['stats']>;

/**
 * The figures a worker's heartbeat carries for the console and `workers` / `partitions`: totals read
 * from the worker's own metrics (so the page and /metrics never disagree) and, per partition, the
 * open correlations and the age of the oldest. One pass over the open correlations per heartbeat.
 */
export async function heartbeatStats(metrics: WorkerMetrics, correlations: Correlations, now = Date.now()): Promise<HeartbeatStats> {
  const [decided, forwarded, fenced, deadLetters, latency] = await Promise.all([
    metrics.decisionsMade.get(),
    metrics.signalsForwarded.get(),
    metrics.fencedWrites.get(),
    metrics.deadLetters.get(),
    metrics.decisionLatency.get(),
  ]);
  const dead: Record<string, number> = {};
  for (const v of deadLetters.values) {
    const reason = String(v.labels.reason ?? 'unknown');
    dead[reason] = (dead[reason] ?? 0) + v.value;
  }
  return {
    decided: sum(decided),
    forwarded: sum(forwarded),
    fenced: sum(fenced),
    dead_letters: dead,
    latency: cumulativeBuckets(latency),
    partitions: partitionFigures(correlations, now),
  };
}

function sum(metric: MetricObjectWithValues<MetricValue<string>>): number {
  let total = 0;
  for (const v of metric.values) total += v.value;
  return total;
}

/** The histogram's cumulative counts in DECISION_LATENCY_BUCKETS order, +Inf last. */
function cumulativeBuckets(metric: MetricObjectWithValues<MetricValueWithName<string>>): number[] {
  const byBound = new Map<string, number>();
  for (const v of metric.values) {
    if (v.metricName?.endsWith('_bucket') !== true) continue;
    const le = String(v.labels.le);
    byBound.set(le, (byBound.get(le) ?? 0) + v.value);
  }
  return [...DECISION_LATENCY_BUCKETS.map((bound) => byBound.get(String(bound)) ?? 0), byBound.get('+Inf') ?? 0];
}

function partitionFigures(correlations: Correlations, now: number): Array<[number, number, number]> {
  const figures = new Map<number, [number, number, number]>();
  for (const corr of correlations.open.values()) {
    const age = Math.max(0, now - corr.firstSeenMs);
    const entry = figures.get(corr.partition);
    if (entry === undefined) figures.set(corr.partition, [corr.partition, 1, age]);
    else {
      entry[1] += 1;
      if (age > entry[2]) entry[2] = age;
    }
  }
  return [...figures.values()].sort((a, b) => a[0] - b[0]);
}
