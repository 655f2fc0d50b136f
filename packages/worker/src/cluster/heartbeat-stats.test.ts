import { describe, expect, it } from 'vitest';
import { DECISION_LATENCY_BUCKETS } from '@at-orchestrator/contracts';
import { createRegistry } from '@at-orchestrator/runtime';
import type { Correlations } from '../fanin/correlations.js';
import { WorkerMetrics } from '../metrics.js';
import { heartbeatStats } from './heartbeat-stats.js';

function openCorrelations(list: Array<{ partition: number; firstSeenMs: number }>): Correlations {
  return { open: { values: () => list.values() } } as unknown as Correlations;
}

describe('heartbeatStats', () => {
  it("reports the worker's own metric totals, its latency histogram and per-partition open figures", async () => {
    const metrics = new WorkerMetrics(createRegistry({ service: 't', role: 'worker', instance: 'w' }));
    metrics.decisionsMade.inc({ type: 'trade' }, 3);
    metrics.decisionsMade.inc({ type: 'timeout' }, 2);
    metrics.signalsForwarded.inc(7);
    metrics.fencedWrites.inc();
    metrics.deadLetters.inc({ reason: 'schema' }, 2);
    metrics.deadLetters.inc({ reason: 'not_json' });
    metrics.decisionLatency.observe(0.0015);
    metrics.decisionLatency.observe(0.004);
    metrics.decisionLatency.observe(400);

    const now = 10_000;
    const stats = await heartbeatStats(
      metrics,
      openCorrelations([
        { partition: 3, firstSeenMs: 9_000 },
        { partition: 3, firstSeenMs: 7_500 },
        { partition: 1, firstSeenMs: 9_900 },
      ]),
      now,
    );

    expect(stats).toMatchObject({ decided: 5, forwarded: 7, fenced: 1, dead_letters: { schema: 2, not_json: 1 } });
    expect(stats.partitions).toEqual([
      [1, 1, 100],
      [3, 2, 2_500],
    ]);
    expect(stats.latency).toHaveLength(DECISION_LATENCY_BUCKETS.length + 1);
    const at = (bound: number): number => stats.latency[DECISION_LATENCY_BUCKETS.indexOf(bound)]!;
    expect([at(0.001), at(0.002), at(0.005), at(300), stats.latency.at(-1)]).toEqual([0, 1, 2, 2, 3]);
  });
});
