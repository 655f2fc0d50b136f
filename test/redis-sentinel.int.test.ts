import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisSentinelSet } from '@at-orchestrator/local-servers';
import { ClusterHarness, healthStatus, sumCounter } from './helpers/cluster.js';
import { DecisionCounts, SteadyAgents, describeCounts, expectDeliveredOnce, logFailure, tally } from './helpers/ha-load.js';
import { Stack } from './helpers/stack.js';

// Redis behind Sentinel: a primary, a replica and three Sentinels (quorum 2, down-after 1 s) of real
// redis-server processes on loopback; two coordinators and two workers of the built CLI configured
// with REDIS_SENTINELS and REDIS_SENTINEL_MASTER and no REDIS_URL; agents at a steady rate. Under load
// the primary is killed (-9): the Sentinels promote the replica and the cluster keeps deciding. Every
// corr_id is counted on a JetStream consumer of the decisions (0 lost, 0 doubled) and on a core
// subscription (no repeat; losses counted and printed); the decision pause is printed.

const RATE = 100; // correlations per second
const PREFIX = 'hs';

let redis: RedisSentinelSet;
let stack: Stack;

beforeAll(async () => {
  redis = await RedisSentinelSet.start({ downAfterMs: 1_000, failoverTimeoutMs: 3_000 });
  stack = await Stack.on({ redisEnv: redis.env() });
}, 90_000);
afterAll(async () => {
  await stack?.stop();
  await redis?.dispose();
});

describe('Redis with Sentinel', () => {
  it('kill -9 of the primary under load: the replica is promoted, the cluster keeps deciding, every decision stored once', async () => {
    const c = new ClusterHarness(stack, { REDIS_KEY_PREFIX: PREFIX, PARTITIONS: '16' });
    // Configured through Sentinel alone.
    expect(c.env().REDIS_URL).toBeUndefined();
    expect(c.env()).toMatchObject({ REDIS_SENTINELS: redis.sentinelAddresses, REDIS_SENTINEL_MASTER: redis.masterName });
    const counts = new DecisionCounts(stack.nc, PREFIX);
    const agents = new SteadyAgents(stack.nc, PREFIX);
    try {
      await c.startCoordinator('coord-a');
      await c.startCoordinator('coord-b');
      await Promise.all(['w1', 'w2'].map((w) => c.startWorker(w)));
      await c.waitForBalance(['w1', 'w2'], 16);
      const workers = [...c.workers.values()];
      expect(await Promise.all(workers.map(healthStatus))).toEqual(['healthy', 'healthy']);

      await counts.start();
      agents.start(RATE);
      await vi.waitFor(() => expect(counts.decided).toBeGreaterThan(RATE * 2), { timeout: 30_000, interval: 100 });
      const calmFrom = Date.now();
      await vi.waitFor(() => expect(counts.decided).toBeGreaterThan(RATE * 4), { timeout: 30_000, interval: 100 });
      // The longest gap between decisions with nothing killed: what a pause compares with.
      const calm = counts.pause(calmFrom, Date.now());

      expect(await redis.primary()).toBe(0);
      const before = counts.decided;
      const killedAt = Date.now();
      await redis.kill(0, 'SIGKILL');
      const promoted = await redis.waitForFailover(0, 30_000);
      const failoverMs = Date.now() - killedAt;
      // The cluster decides again, on the promoted replica: healthy workers (not deciding from memory),
      // a leader answering, decisions flowing.
      await vi.waitFor(() => expect(counts.decided).toBeGreaterThan(before + RATE * 2), { timeout: 60_000, interval: 100 });
      await vi.waitFor(async () => expect(await Promise.all(workers.map(healthStatus))).toEqual(['healthy', 'healthy']), { timeout: 30_000, interval: 200 });
      await vi.waitFor(() => c.cli('status'), { timeout: 30_000, interval: 200 });
      const recoveredMs = Date.now() - killedAt;
      const pause = counts.pause(killedAt, Date.now());
      const ingest = agents.pause(killedAt, Date.now());

      // The old primary comes back (empty: no persistence in tests) and the Sentinels make it a replica.
      await redis.restart(0);
      await redis.waitReplicaInSync(0, 30_000);
      expect(await redis.primary()).toBe(promoted);
      const after = counts.decided;
      await vi.waitFor(() => expect(counts.decided).toBeGreaterThan(after + RATE), { timeout: 30_000, interval: 100 });

      await agents.stop();
      const published = agents.published;
      await vi.waitFor(() => expect(counts.stream.size).toBe(published), { timeout: 90_000, interval: 250 });
      const t = tally(counts, PREFIX, published);
      const fenced = await sumCounter(workers, 'orchestrator_fenced_writes_total');
      const stateFailures = await sumCounter(workers, 'orchestrator_state_operation_failures_total');
      console.log(`sentinel-failover kill: pause ${pause} ms (the Sentinels promoted node ${promoted} ${failoverMs} ms after the kill; workers healthy and a leader answering after ${recoveredMs} ms; the agents' longest wait for a PubAck meanwhile ${ingest} ms)`);
      console.log(
        `[figure] Sentinel failover at ${RATE} corr/s: ${published} correlations; ${describeCounts(counts, t)}; ` +
          `state operations failed or skipped meanwhile ${stateFailures}, fenced writes ${fenced}; calm max gap ${calm} ms`,
      );

      expectDeliveredOnce(t);
    } catch (err) {
      logFailure(counts, agents, [...c.workers, ...c.coordinators]);
      throw err;
    } finally {
      counts.stop();
      await agents.stop();
      await c.stopAll();
    }
  }, 240_000);
});
