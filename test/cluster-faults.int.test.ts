import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { signalSubject } from '@at-orchestrator/contracts';
import { CLEAN_MIX, SimulatedAgents, makeCorrelation, seededRandom } from '@at-orchestrator/sim';
import { ClusterHarness, healthStatus, scrapeCounter } from './helpers/cluster.js';
import { DecisionLog, Stack } from './helpers/stack.js';

// A double fault: Redis goes down, and while it is a worker holding signals in memory dies. Signals
// forwarded to it must come back (they were never acked), so every correlation is still decided
// complete, once.

let stack: Stack;
let cluster: ClusterHarness | undefined;

beforeAll(async () => {
  stack = await Stack.start();
});
afterEach(async () => {
  await stack.redis.start();
  await cluster?.stopAll();
});
afterAll(async () => {
  await stack?.stop();
});

const enc = new TextEncoder();

it('Redis goes down, then the owner of half the partitions is killed: nothing it held in memory is lost', async () => {
  const c = (cluster = new ClusterHarness(stack, { REDIS_KEY_PREFIX: 'rf', DECISION_TIMEOUT_SEC: '40', STATE_TTL_SECONDS: '120' }));
  await c.startCoordinator('coord-a');
  const [w1, w2] = await Promise.all([c.startWorker('w1'), c.startWorker('w2')]);
  await c.waitForBalance(['w1', 'w2']);
  const decisions = new DecisionLog(stack.js, 'rf-');
  await decisions.start();
  const n = 100;

  await stack.redis.stop();
  for (let i = 0; i < n; i++) {
    await stack.js.publish(signalSubject('momentum'), enc.encode(JSON.stringify({ corr_id: `rf-${i}`, agent_name: 'momentum', analysis: { momentum_strength: 0.5, confidence: 0.9, trend_direction: 'up' } })));
  }
  // Every momentum signal reached its owner, whose store failed: it is in that owner's memory only.
  await vi.waitFor(
    async () => expect((await scrapeCounter(w1, 'orchestrator_state_operation_failures_total')) + (await scrapeCounter(w2, 'orchestrator_state_operation_failures_total'))).toBeGreaterThanOrEqual(n),
    { timeout: 30_000, interval: 200 },
  );
  w2.kill('SIGKILL');
  // Redis comes back empty (no persistence in tests): the cluster rebuilds its state from the living.
  await stack.redis.start();
  await c.waitForBalance(['w1']);

  for (let i = 0; i < n; i++) {
    await stack.js.publish(signalSubject('risk'), enc.encode(JSON.stringify({ corr_id: `rf-${i}`, agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 5 } } })));
  }
  await decisions.waitFor(n, 60_000);
  expect(decisions.byCorr.size).toBe(n);
  expect(decisions.duplicates()).toEqual([]);
  const notComplete = [...decisions.byCorr.values()].map(([d]) => d!).filter((d) => d.status !== 'complete');
  expect(notComplete.map((d) => `${d.corr_id}:${d.status}:${d.agents_present.join('+')}`)).toEqual([]);
  decisions.stop();
});

it('Redis comes back empty after a leader failover: the next leader is still obeyed, every correlation decided once', async () => {
  // Workers refuse commands and tables from a leader epoch older than the newest they saw (a deposed
  // leader's). An empty Redis forgets the leader epoch counter, so the next term must still be newer
  // than every term before it, or the workers would refuse the only leader there is.
  const c = (cluster = new ClusterHarness(stack, { REDIS_KEY_PREFIX: 'rl', DECISION_TIMEOUT_SEC: '10', STATE_TTL_SECONDS: '120' }));
  await c.startCoordinator('coord-a');
  await c.startCoordinator('coord-b');
  // One worker, then two: half the partitions move, so the epochs the workers hold differ from the
  // ones a leader starting from nothing would hand out.
  await c.startWorker('w1');
  await c.waitForBalance(['w1']);
  await c.startWorker('w2');
  await c.waitForBalance(['w1', 'w2']);
  const first = await c.cli<{ coordinator: string }>('status');
  c.coordinators.get(first.coordinator)!.kill('SIGKILL');
  await vi.waitFor(async () => expect((await c.cli<{ coordinator: string }>('status')).coordinator).not.toBe(first.coordinator), { timeout: 30_000, interval: 200 });

  const decisions = new DecisionLog(stack.js, 'rl-');
  await decisions.start();
  const agents = new SimulatedAgents(stack.nc);
  const rnd = seededRandom(5);
  const publish = (from: number, to: number) =>
    Promise.all(Array.from({ length: to - from }, (_, i) => agents.publishCorrelation(makeCorrelation(`rl-${from + i}`, rnd, CLEAN_MIX))));
  await publish(0, 100);
  await decisions.waitFor(100, 30_000);

  await stack.redis.stop();
  await stack.redis.start();
  // Everything is back on Redis (not deciding from memory) and a leader leads again.
  await vi.waitFor(async () => expect(await Promise.all([...c.workers.values()].map(healthStatus))).toEqual(['healthy', 'healthy']), { timeout: 30_000, interval: 200 });
  await vi.waitFor(() => c.cli('status'), { timeout: 30_000, interval: 200 });
  await publish(100, 200);
  await decisions.waitFor(200, 60_000);
  expect(decisions.byCorr.size).toBe(200);
  expect(decisions.duplicates()).toEqual([]);
  decisions.stop();
});
