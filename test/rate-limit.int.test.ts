import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLEAN_MIX, SimulatedAgents, makeCorrelation, seededRandom } from '@at-orchestrator/sim';
import type { OrchestratorWorker } from '@at-orchestrator/worker';
import { DecisionLog, Stack, startWorker } from './helpers/stack.js';

let stack: Stack;
let worker: OrchestratorWorker;
const RPS = 50;

beforeAll(async () => {
  stack = await Stack.start();
  worker = await startWorker(stack.config({ RATE_LIMIT_RPS: String(RPS), DECISION_TIMEOUT_SEC: '30', STATE_TTL_SECONDS: '120' }));
});
afterAll(async () => {
  await worker?.close();
  await stack?.stop();
});

it('RATE_LIMIT_RPS slows decisions down by pulling less, and drops nothing', async () => {
  const n = 200;
  const decisions = new DecisionLog(stack.js, 'rl-');
  await decisions.start();
  const agents = new SimulatedAgents(stack.nc);
  const rnd = seededRandom(3);
  const started = Date.now();
  await Promise.all(Array.from({ length: n }, (_, i) => agents.publishCorrelation(makeCorrelation(`rl-${i}`, rnd, CLEAN_MIX))));
  await decisions.waitFor(n, 30_000);
  const elapsed = (Date.now() - started) / 1000;
  // A burst of one second's worth, then RPS a second: n decisions cannot take less than (n − RPS) / RPS s.
  expect(elapsed).toBeGreaterThanOrEqual((n - RPS) / RPS - 0.2);
  expect(decisions.byCorr.size).toBe(n);
  expect(decisions.duplicates()).toEqual([]);
  for (const [, [d]] of decisions.byCorr) expect(d!.status).toBe('complete');
  decisions.stop();
});
