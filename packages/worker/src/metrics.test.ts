import { Registry } from '@at-orchestrator/runtime';
import { describe, expect, it } from 'vitest';
import { WorkerMetrics } from './metrics.js';

/** The samples of one metric in the registry's exposition text, as "labels value" lines. */
async function samples(registry: Registry, name: string): Promise<string[]> {
  const text = await registry.metrics();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .map((l) => l.slice(name.length));
}

describe('WorkerMetrics hot-path counters', () => {
  it('shows the counts made on the hot path when scraped, each counted once across scrapes', async () => {
    const registry = new Registry();
    const m = new WorkerMetrics(registry, {}, { known: ['momentum', 'risk'], maxOthers: 1 });
    m.countSignal('momentum');
    m.countSignal('momentum');
    m.countSignal('risk');
    m.countStateOps('store', 3);
    m.countStateOps('claim', 1);
    m.countDecision('trade');
    expect(await samples(registry, 'orchestrator_signals_received_total')).toEqual(['{agent="momentum"} 2', '{agent="risk"} 1']);
    expect(await samples(registry, 'orchestrator_state_operations_total')).toEqual(['{operation="store"} 3', '{operation="claim"} 1']);
    expect(await samples(registry, 'orchestrator_decisions_made_total')).toEqual(['{type="trade"} 1']);

    m.countSignal('risk');
    m.countStateOps('store', 2);
    m.countDecision('no_trade');
    expect(await samples(registry, 'orchestrator_signals_received_total')).toEqual(['{agent="momentum"} 2', '{agent="risk"} 2']);
    expect(await samples(registry, 'orchestrator_state_operations_total')).toEqual(['{operation="store"} 5', '{operation="claim"} 1']);
    expect(await samples(registry, 'orchestrator_decisions_made_total')).toEqual(['{type="trade"} 1', '{type="no_trade"} 1']);
  });

  it('keeps agent labels bounded: agents past maxOthers count as "other"', async () => {
    const registry = new Registry();
    const m = new WorkerMetrics(registry, {}, { known: ['risk'], maxOthers: 1 });
    for (const agent of ['risk', 'x1', 'x2', 'x3', 'x2']) m.countSignal(agent);
    expect(await samples(registry, 'orchestrator_signals_received_total')).toEqual(['{agent="risk"} 1', '{agent="x1"} 1', '{agent="other"} 3']);
  });

  it('reads the same totals through get(), as the heartbeat stats do', async () => {
    const m = new WorkerMetrics(new Registry());
    m.countDecision('trade');
    m.countDecision('trade');
    const read = await m.decisionsMade.get();
    expect(read.values.map((v) => [v.labels.type, v.value])).toEqual([['trade', 2]]);
  });
});
