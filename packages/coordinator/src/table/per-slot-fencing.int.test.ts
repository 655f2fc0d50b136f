import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PartitionState } from '@at-orchestrator/contracts';
import { RedisServer } from '@at-orchestrator/local-servers';
import { memoryLogger } from '@at-orchestrator/runtime';
import { CoordinatorKeys } from '../coordinator-keys.js';
import { LeaderLease } from '../election/leader-lease.js';
import { AssignmentStore } from './assignment-store.js';

// The Redis Cluster commit (perSlot): partition epochs moved by a script in each partition's slot that
// checks the leader epoch kept there, the table written under the lease. Run here on one redis-server
// (the scripts touch one slot each, so they run the same on a cluster; test/redis-cluster.int.test.ts
// runs them on one): a deposed leader must never move a partition or fence its owner once the new
// leader has taken the partitions' slots, which it does before it reads the table.

let server: RedisServer;
let redis: Redis;
let keys: CoordinatorKeys;
let n = 0;

beforeAll(async () => {
  server = await RedisServer.start();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis?.disconnect();
  await server?.dispose();
});
beforeEach(() => {
  n += 1;
  keys = new CoordinatorKeys(`ps${n}`);
});

async function lead(id: string): Promise<number> {
  const result = await new LeaderLease(redis, keys, id, 5_000).tryAcquire();
  if (!result.acquired) throw new Error(`${id} did not acquire`);
  return result.epoch;
}
const store = (id: string, epoch: number, partitions = 4): AssignmentStore =>
  new AssignmentStore(redis, keys, partitions, { coordinatorId: id, leaderEpoch: epoch }, memoryLogger().log, { perSlot: true });
const stored = async (partition: number): Promise<PartitionState> => PartitionState.parse(JSON.parse((await redis.hget(keys.assignment(), String(partition)))!));
const epochKey = async (partition: number): Promise<string | null> => redis.get(keys.partitionEpoch(partition));

describe('per-slot fencing (Redis Cluster key layout)', () => {
  it('load takes every partition slot for the term; commits move epochs in their slots and write the table, as the one-script commit does', async () => {
    const epoch = await lead('a');
    const s = store('a', epoch);
    await redis.set(keys.partitionEpoch(1), String(epoch + 7));
    expect(await s.load()).toEqual({ repaired: [0, 1, 2, 3], inconsistent: [] });
    for (const p of [0, 1, 2, 3]) expect(await redis.get(keys.partitionLeaderEpoch(p))).toBe(String(epoch));
    expect(await stored(1)).toEqual({ partition: 1, owner: null, epoch: epoch + 7, phase: 'unowned' });

    const states = await s.commit([
      { partition: 0, owner: 'w1', phase: 'owned', bump: true },
      { partition: 1, owner: 'w2', phase: 'owned', bump: true },
      { partition: 2, owner: null, phase: 'unowned', bump: false },
    ]);
    expect(states.map((x) => x.epoch)).toEqual([epoch, epoch + 8, 0]);
    expect([await epochKey(0), await epochKey(1), await epochKey(2)]).toEqual([String(epoch), String(epoch + 8), null]);
    expect(await stored(1)).toEqual({ partition: 1, owner: 'w2', epoch: epoch + 8, phase: 'owned' });
    expect(s.version).toBe(2);
    await s.commit([{ partition: 0, owner: 'w2', phase: 'owned', bump: true }]);
    expect(await stored(0)).toEqual({ partition: 0, owner: 'w2', epoch: epoch + 1, phase: 'owned' });

    const again = store('a', epoch);
    expect(await again.load()).toEqual({ repaired: [], inconsistent: [] });
    expect(again.table).toEqual(s.table);
  });

  it('a deposed leader is refused in every partition slot once the new leader loaded: no partition moved, no owner fenced', async () => {
    const old = await lead('a');
    const a = store('a', old);
    await a.load();
    await a.commit([0, 1, 2, 3].map((partition) => ({ partition, owner: 'w1', phase: 'owned' as const, bump: true })));
    const epochsBefore = await Promise.all([0, 1, 2, 3].map(epochKey));
    const tableBefore = await redis.hgetall(keys.assignment());

    await redis.del(keys.leader()); // a's lease ran out while it was paused
    const next = await lead('b');
    const b = store('b', next);
    await b.load(); // raises every partition slot to b's term before anything else

    // a wakes up and tries to hand partition 2 to w2: refused in the partition's slot, before any write.
    await expect(a.commit([{ partition: 2, owner: 'w2', phase: 'owned', bump: true }])).rejects.toMatchObject({ code: 'FENCED' });
    expect(await Promise.all([0, 1, 2, 3].map(epochKey))).toEqual(epochsBefore); // w1 still accepted everywhere
    expect(await redis.hgetall(keys.assignment())).toEqual(tableBefore);
    // Nor may it take the slots back by loading again: a newer term holds them.
    await expect(store('a', old).load()).rejects.toMatchObject({ code: 'FENCED', message: expect.stringContaining(`leader epoch ${next}`) });
    for (const p of [0, 1, 2, 3]) expect(await redis.get(keys.partitionLeaderEpoch(p))).toBe(String(next));

    // The new leader commits normally, at epochs of its own term.
    const moved = await b.commit([{ partition: 2, owner: 'w2', phase: 'owned', bump: true }]);
    expect(moved[0]!.epoch).toBe(next);
  });

  it('a bump a deposed leader made before the new leader took its slot is found at load and repaired, never kept', async () => {
    const old = await lead('a');
    const a = store('a', old);
    await a.load();
    await a.commit([0, 1].map((partition) => ({ partition, owner: 'w1', phase: 'owned' as const, bump: true })));
    await redis.del(keys.leader());
    const next = await lead('b'); // b leads, but has not taken the partition slots yet
    // a's bump of partition 1 still passes its slot; its table write is refused under the lease.
    await expect(a.commit([{ partition: 1, owner: 'w2', phase: 'owned', bump: true }])).rejects.toMatchObject({ code: 'FENCED' });
    expect(await epochKey(1)).toBe(String(old + 1));
    expect((await stored(1)).owner).toBe('w1');
    // b reads the epochs as it takes each slot: the moved one disagrees with the table, and its owner
    // gets a new epoch of b's term (the leader term repairs it), which a can no longer move.
    const b = store('b', next);
    expect(await b.load()).toEqual({ repaired: [], inconsistent: [1] });
    const [repaired] = await b.commit([{ partition: 1, owner: 'w1', phase: 'owned', bump: true }]);
    // At least b's term, past the epoch a's refused commit left (the two terms may share a millisecond).
    expect(repaired!.epoch).toBe(Math.max(next, old + 2));
    await expect(a.commit([{ partition: 1, owner: 'w2', phase: 'owned', bump: true }])).rejects.toMatchObject({ code: 'FENCED' });
    expect(await epochKey(1)).toBe(String(repaired!.epoch));
  });

  it('a slot that lost its last bump (a master failover) never makes the leader hand that epoch out twice', async () => {
    const epoch = await lead('a');
    const s = store('a', epoch);
    await s.load();
    await s.commit([{ partition: 0, owner: 'w1', phase: 'owned', bump: true }]);
    const [second] = await s.commit([{ partition: 0, owner: 'w2', phase: 'owned', bump: true }]);
    expect(second!.epoch).toBe(epoch + 1);
    await redis.set(keys.partitionEpoch(0), String(epoch)); // the promoted replica missed the last bump
    const [third] = await s.commit([{ partition: 0, owner: 'w3', phase: 'owned', bump: true }]);
    expect(third!.epoch).toBe(epoch + 2); // not epoch + 1 again, which w2 holds
  });

  it('checkSlots: a bump or a raise a failover lost is found while the term leads (the owners to repair); nothing with one Redis', async () => {
    const epoch = await lead('a');
    const s = store('a', epoch);
    await s.load();
    const [p0, p1] = await s.commit([0, 1].map((partition) => ({ partition, owner: 'w1', phase: 'owned' as const, bump: true })));
    await s.commit([{ partition: 1, owner: 'w2', phase: 'owned', bump: true }]);
    expect(await s.checkSlots()).toEqual([]);

    // Partition 1's master failed over: the promoted replica missed the last bump and the raise.
    await redis.set(keys.partitionEpoch(1), String(p1!.epoch));
    await redis.del(keys.partitionLeaderEpoch(1));
    expect(await s.checkSlots()).toEqual([1]);
    expect(await redis.get(keys.partitionLeaderEpoch(1))).toBe(String(epoch)); // the raise is back
    // Partition 0's key vanished (owner fenced: 0 is not its epoch); unowned partitions do not matter.
    await redis.del(keys.partitionEpoch(0));
    await redis.set(keys.partitionEpoch(2), '99');
    expect(await s.checkSlots()).toEqual([0, 1]);
    // The repair: a new epoch for the same owner, above every epoch handed out before.
    const repaired = await s.commit([0, 1].map((partition) => ({ partition, owner: partition === 0 ? 'w1' : 'w2', phase: 'owned' as const, bump: true })));
    expect(repaired[0]!.epoch).toBeGreaterThan(p0!.epoch);
    expect(repaired[1]!.epoch).toBeGreaterThan(p1!.epoch + 1);
    expect([await epochKey(0), await epochKey(1)]).toEqual(repaired.map((r) => String(r.epoch)));
    expect(await s.checkSlots()).toEqual([]);

    // A slot that cannot be answered (its master failing over; here a key of the wrong type) is
    // skipped, the others still checked: the tick is not lost to it.
    await redis.set(keys.partitionEpoch(1), '1');
    await redis.del(keys.partitionLeaderEpoch(0));
    await redis.hset(keys.partitionLeaderEpoch(0), 'x', 'y');
    await redis.del(keys.partitionEpoch(0));
    expect(await s.checkSlots()).toEqual([1]);
    await redis.del(keys.partitionLeaderEpoch(0));
    expect(await s.checkSlots()).toEqual([0, 1]);
    await expect(s.load()).resolves.toMatchObject({ inconsistent: [0, 1] });

    // A newer term took a slot: the check ends this one.
    await redis.set(keys.partitionLeaderEpoch(3), String(epoch + 1));
    await expect(s.checkSlots()).rejects.toMatchObject({ code: 'FENCED' });

    const single = new AssignmentStore(redis, keys, 4, { coordinatorId: 'a', leaderEpoch: epoch }, memoryLogger().log, { perSlot: false });
    expect(await single.checkSlots()).toEqual([]);
  });
});
