import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ClusterKeys, RedisKeys, loadConfig, signalSubject } from '@at-orchestrator/contracts';
import { RedisClusterSet } from '@at-orchestrator/local-servers';
import { RedisLink, memoryLogger, stateRedisTarget } from '@at-orchestrator/runtime';
import { CorrelationStore } from '@at-orchestrator/worker/internal';
import { ClusterHarness, healthStatus, scrapeCounter, sumCounter } from './helpers/cluster.js';
import { DecisionCounts, SteadyAgents, describeCounts, expectDeliveredOnce, logFailure, tally } from './helpers/ha-load.js';
import { DecisionLog, Stack } from './helpers/stack.js';

// A Redis Cluster of real redis-server processes on loopback: 3 masters and 3 replicas made with
// `redis-cli --cluster create`, cluster-node-timeout 1 s; coordinators and workers of the built CLI
// configured with REDIS_CLUSTER_NODES and no REDIS_URL. The keys a script uses together share their
// partition's hash tag, the cluster-wide ones the {cluster} tag (docs/cluster.md, "Key layout"), so
// the state spreads over the three masters; batches go one script call per partition, and the
// coordinator's epoch bumps are fenced per slot. Then the cluster-faults steps (the whole Redis down,
// Redis back empty) and a master killed (-9) under load, counted like the Sentinel test.

const RATE = 100; // correlations per second
const P = 16;

let redis: RedisClusterSet;
let stack: Stack;

beforeAll(async () => {
  redis = await RedisClusterSet.start({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1_000 });
  stack = await Stack.on({ redisEnv: redis.env() });
}, 90_000);
afterAll(async () => {
  await stack?.stop();
  await redis?.dispose();
});

const enc = new TextEncoder();
const momentum = (corr: string) => enc.encode(JSON.stringify({ corr_id: corr, agent_name: 'momentum', analysis: { momentum_strength: 0.5, confidence: 0.9, trend_direction: 'up' } }));
const risk = (corr: string) => enc.encode(JSON.stringify({ corr_id: corr, agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 5 } } }));

describe('Redis Cluster', () => {
  it('a batch across partitions is one call per partition (one call is refused, CROSSSLOT); under traffic the keys land on all three masters, the cluster-wide ones on one', async () => {
    const config = loadConfig(stack.env({ REDIS_KEY_PREFIX: 'rk', PARTITIONS: String(P) }));
    expect(config.redis.url).toBeUndefined();
    const link = new RedisLink(stateRedisTarget(config.redis), memoryLogger().log, { name: 'test' });
    try {
      expect(await link.start()).toBe(true);
      expect(link.client.isCluster).toBe(true);
      const keys = new RedisKeys('rk', P);
      const items = Array.from({ length: 40 }, (_, i) => `rk-direct-${i}`).map((corrId) => ({ corrId, agent: 'risk', partition: keys.partitionOf(corrId), payload: '{}', deadlineMs: 1_000, epoch: 0 }));
      expect(new Set(items.map((i) => i.partition)).size).toBeGreaterThan(3);
      const ttl = { stateSec: 60, idempotencySec: 600 };
      await expect(new CorrelationStore(link.client, keys, ttl, { perSlot: false }).storeSignals(items)).rejects.toThrow(/CROSSSLOT/);
      const store = new CorrelationStore(link.client, keys, ttl);
      expect(store.perSlot).toBe(true);
      expect(await store.storeSignals(items)).toEqual(items.map(() => ({ kind: 'stored' })));
      expect((await store.claim(items.map(({ corrId, partition }) => ({ corrId, partition, epoch: 0, agents: ['risk'] })), 'w')).every((v) => v.kind === 'claimed')).toBe(true);
      await store.markPublished(items.map(({ corrId, partition }) => ({ corrId, partition, agents: ['risk'] })));
      expect(await store.loadOpen([...new Set(items.map((i) => i.partition))])).toEqual([]);
    } finally {
      await link.close();
    }

    // The cluster-wide keys share one slot; the partitions' slots are spread over every master.
    const cluster = new ClusterKeys('rc');
    const clusterSlots = new Set(await Promise.all([cluster.leader(), cluster.leaderEpoch(), cluster.assignment(), cluster.workers(), cluster.worker('w1'), cluster.paused()].map((k) => redis.keySlot(k))));
    expect(clusterSlots.size).toBe(1);
    const state = new RedisKeys('rc', P);
    const partitionMasters = new Set(await Promise.all(Array.from({ length: P }, async (_, p) => redis.masterOfSlot(await redis.keySlot(state.epoch(p))))));
    expect(partitionMasters.size).toBe(3);

    const c = new ClusterHarness(stack, { REDIS_KEY_PREFIX: 'rc', PARTITIONS: String(P) });
    const decisions = new DecisionLog(stack.js, 'rc-');
    try {
      await c.startCoordinator('coord-a');
      await Promise.all(['w1', 'w2'].map((w) => c.startWorker(w)));
      await c.waitForBalance(['w1', 'w2'], P);
      await decisions.start();
      const masters = await redis.masters();
      const before = await Promise.all(masters.map((m) => redis.keyCount(m)));
      for (let i = 0; i < 150; i++) {
        await stack.js.publish(signalSubject('momentum'), momentum(`rc-${i}`));
        await stack.js.publish(signalSubject('risk'), risk(`rc-${i}`));
      }
      await decisions.waitFor(150, 30_000);
      expect(decisions.duplicates()).toEqual([]);
      const after = await Promise.all(masters.map((m) => redis.keyCount(m)));
      console.log(`[redis-cluster] keys per master after 150 decisions: ${masters.map((m, i) => `node ${m}: ${before[i]} → ${after[i]}`).join(', ')}`);
      // Every master took done-markers of the decisions just made.
      for (let i = 0; i < masters.length; i++) expect(after[i]! - before[i]!).toBeGreaterThan(10);
    } finally {
      decisions.stop();
      await c.stopAll();
    }
  }, 120_000);

  // Once in about nine runs (a CI run of 2026-12-06, not reproduced alone or under CPU load since), the
  // standby did not answer as leader within 30 s after the leader's kill -9 on this Redis Cluster; the
  // processes' last lines and exit codes are printed when it fails, and it runs once more before failing
  // the suite.
  it('the cluster-faults steps on a Redis Cluster: down, then a worker killed; back empty after a leader failover; every correlation decided once', { timeout: 240_000, retry: 1 }, async () => {
    // Its own corr_ids and key prefix per attempt (a retry must not meet the first attempt's decisions).
    const rf = `rf${Date.now().toString(36)}`;
    const c = new ClusterHarness(stack, { REDIS_KEY_PREFIX: rf, PARTITIONS: String(P), DECISION_TIMEOUT_SEC: '40', STATE_TTL_SECONDS: '120' });
    const decisions = new DecisionLog(stack.js, `${rf}-`);
    try {
      await c.startCoordinator('coord-a');
      await c.startCoordinator('coord-b');
      const [w1, w2] = await Promise.all([c.startWorker('w1'), c.startWorker('w2')]);
      await c.waitForBalance(['w1', 'w2'], P);
      await decisions.start();
      const n = 100;

      // The whole cluster down: every momentum signal reaches its owner, whose store fails.
      await redis.stopAll();
      for (let i = 0; i < n; i++) await stack.js.publish(signalSubject('momentum'), momentum(`${rf}-${i}`));
      await vi.waitFor(
        async () => expect((await scrapeCounter(w1, 'orchestrator_state_operation_failures_total')) + (await scrapeCounter(w2, 'orchestrator_state_operation_failures_total'))).toBeGreaterThanOrEqual(n),
        { timeout: 30_000, interval: 200 },
      );
      w2.kill('SIGKILL');
      c.workers.delete('w2');
      // Back empty (no persistence in tests), with the same slots: the cluster rebuilds from the living.
      await redis.startAll();
      await c.waitForBalance(['w1'], P);
      for (let i = 0; i < n; i++) await stack.js.publish(signalSubject('risk'), risk(`${rf}-${i}`));
      await decisions.waitFor(n, 60_000);
      expect(decisions.duplicates()).toEqual([]);
      const incomplete = [...decisions.byCorr.values()].map(([d]) => d!).filter((d) => d.status !== 'complete');
      expect(incomplete.map((d) => `${d.corr_id}:${d.status}:${d.agents_present.join('+')}`)).toEqual([]);

      // A leader failover, then the cluster back empty again: the next leader is still obeyed (its
      // epoch follows the clock) and takes every partition slot at its term.
      await c.startWorker('w3');
      await c.waitForBalance(['w1', 'w3'], P);
      const first = await c.cli<{ coordinator: string }>('status');
      c.coordinators.get(first.coordinator)!.kill('SIGKILL');
      await vi.waitFor(async () => expect((await c.cli<{ coordinator: string }>('status')).coordinator).not.toBe(first.coordinator), { timeout: 30_000, interval: 200 });
      await redis.stopAll();
      await redis.startAll();
      const workers = [c.workers.get('w1')!, c.workers.get('w3')!];
      await vi.waitFor(async () => expect(await Promise.all(workers.map(healthStatus))).toEqual(['healthy', 'healthy']), { timeout: 30_000, interval: 200 });
      await vi.waitFor(() => c.cli('status'), { timeout: 30_000, interval: 200 });
      for (let i = n; i < 2 * n; i++) {
        await stack.js.publish(signalSubject('momentum'), momentum(`${rf}-${i}`));
        await stack.js.publish(signalSubject('risk'), risk(`${rf}-${i}`));
      }
      await decisions.waitFor(2 * n, 60_000);
      expect(decisions.byCorr.size).toBe(2 * n);
      expect(decisions.duplicates()).toEqual([]);
    } catch (err) {
      for (const [id, p] of [...c.coordinators, ...c.workers]) {
        console.log(`--- ${id} (exit code ${String(p.exitCode)})\n${p.output.filter((l) => !l.includes('"level":"info"')).slice(-25).join('\n')}`);
      }
      throw err;
    } finally {
      decisions.stop();
      await c.stopAll();
    }
  });

  it('kill -9 of the master holding the cluster-wide slot under load: its replica is promoted, the cluster keeps deciding, every decision stored once', async () => {
    const PREFIX = 'rm';
    const c = new ClusterHarness(stack, { REDIS_KEY_PREFIX: PREFIX, PARTITIONS: String(P) });
    expect(c.env().REDIS_URL).toBeUndefined();
    expect(c.env()).toMatchObject({ REDIS_CLUSTER_NODES: redis.nodeAddresses });
    const counts = new DecisionCounts(stack.nc, PREFIX);
    const agents = new SteadyAgents(stack.nc, PREFIX);
    try {
      await c.startCoordinator('coord-a');
      await c.startCoordinator('coord-b');
      await Promise.all(['w1', 'w2'].map((w) => c.startWorker(w)));
      await c.waitForBalance(['w1', 'w2'], P);
      const workers = [...c.workers.values()];
      expect(await Promise.all(workers.map(healthStatus))).toEqual(['healthy', 'healthy']);

      await counts.start();
      agents.start(RATE);
      await vi.waitFor(() => expect(counts.decided).toBeGreaterThan(RATE * 2), { timeout: 30_000, interval: 100 });
      const calmFrom = Date.now();
      await vi.waitFor(() => expect(counts.decided).toBeGreaterThan(RATE * 4), { timeout: 30_000, interval: 100 });
      const calm = counts.pause(calmFrom, Date.now());

      // The master of the lease, the table and the heartbeats: the leader loses its lease with it.
      const slot = await redis.keySlot(new ClusterKeys(PREFIX).leader());
      const victim = (await redis.masterOfSlot(slot))!;
      const partitionsThere = (await Promise.all(Array.from({ length: P }, async (_, p) => ((await redis.masterOfSlot(await redis.keySlot(new RedisKeys(PREFIX, P).epoch(p)))) === victim ? 1 : 0)))).reduce<number>((a, b) => a + b, 0);
      const before = counts.decided;
      const killedAt = Date.now();
      await redis.kill(victim, 'SIGKILL');
      const promoted = await redis.waitForFailover(victim, slot, 30_000);
      const failoverMs = Date.now() - killedAt;
      await vi.waitFor(() => expect(counts.decided).toBeGreaterThan(before + RATE * 2), { timeout: 60_000, interval: 100 });
      await vi.waitFor(async () => expect(await Promise.all(workers.map(healthStatus))).toEqual(['healthy', 'healthy']), { timeout: 30_000, interval: 200 });
      await vi.waitFor(() => c.cli('status'), { timeout: 30_000, interval: 200 });
      const recoveredMs = Date.now() - killedAt;
      const pause = counts.pause(killedAt, Date.now());
      const ingest = agents.pause(killedAt, Date.now());

      // The old master comes back (empty) as a replica of the promoted one.
      await redis.restart(victim);
      await redis.waitReplicaInSync(victim, 30_000);
      expect(await redis.masterOfSlot(slot)).toBe(promoted);
      const after = counts.decided;
      await vi.waitFor(() => expect(counts.decided).toBeGreaterThan(after + RATE), { timeout: 30_000, interval: 100 });

      await agents.stop();
      const published = agents.published;
      await vi.waitFor(() => expect(counts.stream.size).toBe(published), { timeout: 90_000, interval: 250 });
      const t = tally(counts, PREFIX, published);
      const fenced = await sumCounter(workers, 'orchestrator_fenced_writes_total');
      const stateFailures = await sumCounter(workers, 'orchestrator_state_operation_failures_total');
      console.log(
        `[redis-cluster] master kill: pause ${pause} ms (node ${victim} held the cluster-wide slot ${slot} and ${partitionsThere} of ${P} partitions; node ${promoted} promoted ${failoverMs} ms after the kill; workers healthy and a leader answering after ${recoveredMs} ms; the agents' longest wait for a PubAck ${ingest} ms)`,
      );
      console.log(
        `[redis-cluster] master kill at ${RATE} corr/s: ${published} correlations; ${describeCounts(counts, t)}; ` +
          `state operations failed or skipped ${stateFailures}, fenced writes ${fenced}; calm max gap ${calm} ms`,
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
