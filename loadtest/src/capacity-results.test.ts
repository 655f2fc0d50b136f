import { describe, expect, it } from 'vitest';
import { capacityRows, capacityTable, type CapacityRun } from '../scripts/capacity-results.js';

const run = (scenario: string, workers: number, decided: number, cpu?: CapacityRun['cpu_ms_per_decision'], others = 20, lost = 0): CapacityRun => ({
  scenario,
  ok: lost === 0,
  options: { workers },
  machine_cpu: { busy_avg_pct: 150, others_avg_pct: others, cores: 2 },
  ...(cpu === undefined ? {} : { cpu_ms_per_decision: cpu }),
  result: { throughput: { offered_per_sec: scenario === 'steady' ? 1000 : 0, decided_per_sec: decided }, totals: { lost, duplicates: 0 } },
});

describe('capacity-results', () => {
  it('predicts the max from the fixed-rate costs and the free CPU, and pairs it with the max run of the same worker count', () => {
    const rows = capacityRows([
      run('max', 2, 2500, { target: 0.2, 'nats-server': 0.15, 'redis-server': 0.05, total: 0.4 }),
      run('steady', 2, 1000, { target: 0.35, 'nats-server': 0.25, 'redis-server': 0.08, total: 0.68, driver: 0.12 }),
      run('steady', 1, 1000, { target: 0.3, 'nats-server': 0.28, 'redis-server': 0.09, total: 0.67, driver: 0.13 }, 30, 1),
    ]);
    expect(rows.map((r) => r.workers)).toEqual([1, 2]);
    // (2 cores × 100 % − 20 %) × 10 ms = 1800 ms of CPU a second, ÷ (0.68 + 0.12) ms a decision.
    expect(rows[1]).toMatchObject({ predictedMax: 2250, measuredMax: 2500, totalMs: 0.68, clean: true });
    expect(rows[0]).toMatchObject({ predictedMax: 2125, measuredMax: undefined, clean: false });
    const table = capacityTable(rows);
    expect(table).toContain('| 2 | 1000 | 0.350 | 0.250 | 0.080 | 0.680 | 0.120 | 20 % | 2250 | 2500 (20 %) | 0.200 + 0.150 + 0.050 = 0.400 | yes |');
    expect(table).toContain('| 1 | 1000 | 0.300 | 0.280 | 0.090 | 0.670 | 0.130 | 30 % | 2125 | – | – | NO |');
  });
});
