import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Cluster, type Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { PartitionState, loadConfig } from '@at-orchestrator/contracts';
import { NatsServer, RedisClusterSet } from '@at-orchestrator/local-servers';
import { memoryLogger } from '@at-orchestrator/runtime';
import { FakeWorker } from '../../test/fake-worker.js';
import { CLUSTER_SECRET, OPERATOR_TOKEN, TIMING } from '../../test/harness.js';
import { Coordinator } from '../coordinator.js';
import { CoordinatorKeys } from '../coordinator-keys.js';
import { SLOT_CHECK_EVERY_TICKS } from './leader-term.js';

// A running leader on a real Redis Cluster (3 masters) repairs a partition whose epoch key lost a
// write while it leads: a partition master's failover does not touch the lease in the {cluster} slot,
// so no new term comes to do it. The lost write is stood in for by editing the partition's keys as a
// promoted replica that missed the last bump and the term's raise would hold them.

const P = 8;
let nats: NatsServer;
let cluster: RedisClusterSet;
let nc: NatsConnection;
let redis: Cluster;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  nats = await NatsServer.start();
  cluster = await RedisClusterSet.start({ masters: 3, replicasPerMaster: 0 });
  nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  redis = new Cluster(cluster.nodeAddresses.split(',').map((a) => ({ host: '127.0.0.1', port: Number(a.split(':')[1]) })));
}, 90_000);
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
});
afterAll(async () => {
  redis?.disconnect();
  await nc?.close().catch(() => undefined);
  await cluster?.dispose();
  await nats?.dispose();
});

describe('a leader on a Redis Cluster repairs lost epoch writes while it leads', () => {
  it('a partition whose epoch key fell back and whose raise was lost gets a new epoch within a few ticks; its owner is accepted again', async () => {
    const prefix = 'sr';
    const keys = new CoordinatorKeys(prefix);
    const { log, lines } = memoryLogger('info');
    const config = loadConfig({
      NATS_URL: nats.url,
      ...cluster.env(),
      REDIS_KEY_PREFIX: prefix,
      HTTP_PORT: '0',
      LOG_LEVEL: 'warn',
      PARTITIONS: String(P),
      CLUSTER_SECRET,
      OPERATOR_TOKEN,
      COORDINATOR_ID: 'c1',
      ...Object.fromEntries(Object.entries(TIMING).map(([k, v]) => [k, String(v)])),
    });
    const workers = ['w1', 'w2'].map(
      (id) => new FakeWorker({ id, nc, redis: redis as unknown as Redis, keyPrefix: prefix, heartbeatIntervalMs: TIMING.HEARTBEAT_INTERVAL_MS, leaseMs: TIMING.WORKER_LEASE_MS }),
    );
    for (const w of workers) {
      closers.push(() => w.close());
      await w.start();
    }
    const coordinator = new Coordinator({ config, log, http: false });
    closers.push(() => coordinator.close());
    await coordinator.start();

    const table = async (): Promise<PartitionState[]> =>
      Object.values(await redis.hgetall(keys.assignment()))
        .map((v) => PartitionState.parse(JSON.parse(v)))
        .sort((a, b) => a.partition - b.partition);
    const epochKey = async (p: number): Promise<number> => Number((await redis.get(keys.partitionEpoch(p))) ?? 0);
    /** Every partition owned, each epoch key equal to the table's, each owner holding it at that epoch. */
    const consistent = async (): Promise<PartitionState[]> => {
      const states = await table();
      expect(states.map((s) => s.phase)).toEqual(new Array<string>(P).fill('owned'));
      for (const s of states) {
        expect(await epochKey(s.partition)).toBe(s.epoch);
        expect(workers.find((w) => w.id === s.owner)?.owned.get(s.partition)).toBe(s.epoch);
      }
      return states;
    };
    const before = await vi.waitFor(consistent, { timeout: 10_000, interval: 25 });
    const term = coordinator.leaderEpoch!;

    // Partition p's master failed over; its promoted replica missed the last bump and the raise.
    const { partition: p, owner, epoch } = before.find((s) => s.epoch > 1)!;
    await redis.set(keys.partitionEpoch(p), String(epoch - 1));
    await redis.del(keys.partitionLeaderEpoch(p));
    const ticks = coordinator.stats().ticks;

    const after = await vi.waitFor(
      async () => {
        const states = await consistent();
        expect(states[p]!.epoch).toBeGreaterThan(epoch);
        return states;
      },
      { timeout: 10_000, interval: 25 },
    );
    expect(coordinator.stats().ticks - ticks).toBeLessThanOrEqual(SLOT_CHECK_EVERY_TICKS + 2);
    expect(after[p]!.owner).toBe(owner); // the same owner, at a new epoch: nothing moved
    expect(after.filter((s) => s.partition !== p)).toEqual(before.filter((s) => s.partition !== p));
    expect(await redis.get(keys.partitionLeaderEpoch(p))).toBe(String(term));
    expect(coordinator.leaderEpoch).toBe(term); // the same term repaired it
    expect(lines.join('\n')).toContain('partition epochs disagree with the table');
  });
});
