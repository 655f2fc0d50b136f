import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { memoryLogger } from '@at-orchestrator/runtime';
import { CLEAN_MIX, SimulatedAgents, makeCorrelation, seededRandom, type SyntheticCorrelation } from '@at-orchestrator/sim';
import { OrchestratorWorker, TEST_HOOKS } from '@at-orchestrator/worker';
import { seedDecision } from './helpers/seed-oracle.js';
import { DecisionLog, Stack, workerMetric } from './helpers/stack.js';

// The decision engine in a Piscina pool (DECISION_POOL_THREADS=2) inside a real worker: the same
// decisions as the seed rules, none lost, none doubled; and a thread that dies on a batch, twice,
// inside the running worker. Needs `pnpm build` (threads run dist/).
let stack: Stack;
let worker: OrchestratorWorker;

beforeAll(async () => {
  stack = await Stack.start();
  worker = new OrchestratorWorker({
    config: stack.config({ DECISION_POOL_THREADS: '2', DECISION_BATCH_SIZE: '16', DECISION_TIMEOUT_SEC: '5', STATE_TTL_SECONDS: '60' }),
    log: memoryLogger('warn').log,
    ownership: 'self',
    decisionThreadTestHooks: true,
  });
  await worker.start();
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
  expect(await workerMetric(worker, 'orchestrator_engine_batches_total', { mode: 'pool' })).toBeGreaterThan(0);
  decisions.stop();
});

it('a thread that dies on a batch twice: its correlation closes with a timeout outcome, is dead-lettered with its signals, and the pool decides on', async () => {
  const decisions = new DecisionLog(stack.js, TEST_HOOKS.exit);
  await decisions.start();
  const after = new DecisionLog(stack.js, 'pool-after-');
  await after.start();
  const agents = new SimulatedAgents(stack.nc);
  const rnd = seededRandom(12);
  const crashing = makeCorrelation(`${TEST_HOOKS.exit}pool-1`, rnd, CLEAN_MIX);
  const letters = await (await stack.js.consumers.get('orchestrator-dlq')).consume();

  await agents.publishCorrelation(crashing);
  await decisions.waitFor(1, 30_000);
  const [d] = decisions.byCorr.get(crashing.corrId)!;
  expect(d).toMatchObject({ status: 'timeout', confidence: 0, decision: { action: 'no_trade' } });
  expect(d!.decision.reason).toMatch(/^timeout_engine_failed: /);
  expect(d!.agents_present).toEqual(['momentum', 'risk']);

  let letter: Record<string, string> | undefined;
  const giveUp = setTimeout(() => void letters.close(), 30_000); // ends the loop below without a letter
  for await (const m of letters) {
    const l = m.json<Record<string, string>>();
    if (l.corr_id === crashing.corrId) {
      letter = l;
      break;
    }
  }
  clearTimeout(giveUp);
  await letters.close();
  expect(letter).toMatchObject({ reason: 'engine_failed', subject: `correlation:${crashing.corrId}` });
  const signals = JSON.parse(Buffer.from(letter!.payload_b64!, 'base64').toString()) as Record<string, unknown>;
  expect(Object.keys(signals).sort()).toEqual(['momentum', 'risk']);

  // The dead threads were replaced: the next correlations are decided as the seed rules say.
  const next = Array.from({ length: 20 }, (_, i) => makeCorrelation(`pool-after-${i}`, rnd, CLEAN_MIX));
  await Promise.all(next.map((c) => agents.publishCorrelation(c)));
  await after.waitFor(20, 30_000);
  for (const c of next) expect(after.byCorr.get(c.corrId)![0]!.decision).toEqual(seedDecision(c.truth.momentum!, c.truth.risk!).decision);
  expect(decisions.duplicates()).toEqual([]);
  await vi.waitFor(async () => expect(await workerMetric(worker, 'orchestrator_dlq_total', { reason: 'engine_failed' })).toBe(1));
  decisions.stop();
  after.stop();
});
