import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLEAN_MIX, SimulatedAgents, makeCorrelation, seededRandom } from '@at-orchestrator/sim';
import type { OrchestratorWorker } from '@at-orchestrator/worker';
import { DecisionLog, Stack, startWorker, workerMetric } from './helpers/stack.js';

let stack: Stack;
let worker: OrchestratorWorker;

beforeAll(async () => {
  stack = await Stack.start();
  worker = await startWorker(stack.config({ DECISION_TIMEOUT_SEC: '3', STATE_TTL_SECONDS: '60', ACK_WAIT_SEC: '2' }));
});

afterAll(async () => {
  await worker?.close();
  await stack?.stop();
});

const metricValue = (name: string, labels: Record<string, string> = {}): Promise<number> => workerMetric(worker, name, labels);

async function publishMany(prefix: string, n: number, seed: number): Promise<void> {
  const agents = new SimulatedAgents(stack.nc);
  const rnd = seededRandom(seed);
  await Promise.all(Array.from({ length: n }, (_, i) => agents.publishCorrelation(makeCorrelation(`${prefix}${i}`, rnd, CLEAN_MIX))));
}

describe('faults', () => {
  it('Redis stopped: keeps deciding from memory (degraded, visible), recovers when Redis returns, no duplicates', async () => {
    const decisions = new DecisionLog(stack.js, 'redis-');
    await decisions.start();
    await publishMany('redis-a', 100, 1);
    await decisions.waitFor(100);

    await stack.redis.stop();
    await vi.waitFor(() => expect(worker.health().status).toBe('degraded'));
    expect(worker.health()).toMatchObject({ redis_connected: false, nats_connected: true });
    const failuresBefore = await metricValue('orchestrator_state_operation_failures_total');
    await publishMany('redis-b', 200, 2);
    await decisions.waitFor(300);
    expect(await metricValue('orchestrator_state_operation_failures_total')).toBeGreaterThan(failuresBefore);
    expect(await metricValue('orchestrator_degraded')).toBe(1);

    await stack.redis.start();
    await vi.waitFor(() => expect(worker.health().status).toBe('healthy'), { timeout: 10_000 });
    await publishMany('redis-c', 100, 3);
    await decisions.waitFor(400);
    // Held messages were acked after their decisions: nothing comes back from JetStream later.
    await vi.waitFor(async () => expect(await metricValue('orchestrator_held_messages')).toBe(0));

    expect(decisions.byCorr.size).toBe(400);
    expect(decisions.duplicates()).toEqual([]);
    for (const [, [d]] of decisions.byCorr) expect(d!.status).toBe('complete');
    decisions.stop();
  });

  it('a correlation opened while Redis is down and completed after it returns is decided once', async () => {
    const decisions = new DecisionLog(stack.js, 'span-');
    await decisions.start();
    const corr = makeCorrelation('span-1', seededRandom(9), CLEAN_MIX);
    const agents = new SimulatedAgents(stack.nc);
    await stack.redis.stop();
    await vi.waitFor(() => expect(worker.health().status).toBe('degraded'));
    await agents.publishCorrelation({ ...corr, signals: corr.signals.slice(0, 1) });
    await stack.redis.start();
    await vi.waitFor(() => expect(worker.health().status).toBe('healthy'), { timeout: 10_000 });
    await agents.publishCorrelation({ ...corr, signals: corr.signals.slice(1) });
    await decisions.waitFor(1);
    expect(decisions.byCorr.get('span-1')).toHaveLength(1);
    expect(decisions.byCorr.get('span-1')![0]!.status).toBe('complete');
    decisions.stop();
  });

  it('NATS restarted: the worker reconnects and resumes without a restart; nothing lost or doubled', async () => {
    const decisions = new DecisionLog(stack.js, 'nats-');
    await decisions.start();
    await publishMany('nats-a', 100, 4);
    await decisions.waitFor(100);

    // Half of a correlation before the restart, the other half after.
    const corr = makeCorrelation('nats-span', seededRandom(5), CLEAN_MIX);
    const agents = new SimulatedAgents(stack.nc);
    await agents.publishCorrelation({ ...corr, signals: corr.signals.slice(0, 1) });

    await stack.nats.restart();
    await vi.waitFor(() => expect(worker.health().nats_connected).toBe(true), { timeout: 15_000 });
    decisions.stop();
    const after = new DecisionLog(stack.js, 'nats-');
    await vi.waitFor(async () => {
      await after.start();
    }, { timeout: 15_000 });
    await agents.publishCorrelation({ ...corr, signals: corr.signals.slice(1) });
    await publishMany('nats-b', 100, 6);
    await after.waitFor(201, 30_000);
    expect(after.byCorr.size).toBe(201);
    expect(after.duplicates()).toEqual([]);
    expect(after.byCorr.get('nats-span')![0]!.status).toBe('complete');
    after.stop();
  });
});
