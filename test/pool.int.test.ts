import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLEAN_MIX, SimulatedAgents, makeCorrelation, seededRandom, type SyntheticCorrelation } from '@at-orchestrator/sim';
import type { OrchestratorWorker } from '@at-orchestrator/worker';
import { seedDecision } from './helpers/seed-oracle.js';
import { DecisionLog, Stack, startWorker } from './helpers/stack.js';

// The decision engine in a Piscina pool (DECISION_POOL_THREADS=2) inside a real worker: the same
// decisions as the seed rules, none lost, none doubled. Needs `pnpm build` (threads run dist/).
let stack: Stack;
let worker: OrchestratorWorker;

beforeAll(async () => {
  stack = await Stack.start();
  worker = await startWorker(stack.config({ DECISION_POOL_THREADS: '2', DECISION_BATCH_SIZE: '16', DECISION_TIMEOUT_SEC: '5', STATE_TTL_SECONDS: '60' }));
});
afterAll(async () => {
  await worker?.close();
  await stack?.stop();
});

it('a worker deciding in a 2-thread pool publishes the seed rules\' decision for each of 500 correlations, once', async () => {
  const decisions = new DecisionLog(stack.js, 'pool-');
  await decisions.start();
  const agents = new SimulatedAgents(stack.nc);
  const rnd = seededRandom(11);
  const sent = new Map<string, SyntheticCorrelation>();
  for (let i = 0; i < 500; i++) {
    const c = makeCorrelation(`pool-${i}`, rnd, CLEAN_MIX);
    sent.set(c.corrId, c);
  }
  await Promise.all([...sent.values()].map((c) => agents.publishCorrelation(c)));
  await decisions.waitFor(500);
  expect(decisions.byCorr.size).toBe(500);
  expect(decisions.duplicates()).toEqual([]);
  for (const [corrId, [d]] of decisions.byCorr) {
    const t = sent.get(corrId)!.truth;
    const want = seedDecision(t.momentum!, t.risk!);
    expect(d!.decision).toEqual(want.decision);
    expect(d!.confidence).toBeCloseTo(want.confidence, 12);
  }
  const batches = (await worker.registry.getMetricsAsJSON()).find((m) => m.name === 'orchestrator_engine_batches_total');
  const pooled = (batches?.values ?? []).filter((v) => v.labels.mode === 'pool').reduce((a, v) => a + v.value, 0);
  expect(pooled).toBeGreaterThan(0);
  decisions.stop();
});
