import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { PartitionState } from '@at-orchestrator/contracts';
import { RedisServer } from '@at-orchestrator/local-servers';
import { CoordinatorKeys } from './coordinator-keys.js';
import { LeaderLease } from './election/leader-lease.js';
import { AssignmentStore } from './table/assignment-store.js';
import { Membership } from './membership/membership.js';
import { memoryLogger } from '@at-orchestrator/runtime';

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
  keys = new CoordinatorKeys(`s${n}`);
});

/** Redis's clock in milliseconds: what the epoch scripts start from. */
async function redisMs(): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

describe('leader lease scripts', () => {
  it('acquireLeaderLease: takes a free lease at a new epoch, never one another coordinator holds', async () => {
    const a = new LeaderLease(redis, keys, 'a', 5_000);
    const b = new LeaderLease(redis, keys, 'b', 5_000);
    const before = Date.now();
    const first = await a.tryAcquire();
    // The first term starts at Redis's clock in milliseconds (same machine as this test here).
    expect(first).toEqual({ acquired: true, epoch: expect.any(Number) });
    const e = (first as { epoch: number }).epoch;
    expect(Number.isSafeInteger(e) && e > before - 1_000 && e < Date.now() + 1_000).toBe(true);
    expect(await redis.get(keys.leader())).toBe('a');
    expect(await redis.pttl(keys.leader())).toBeGreaterThan(4_000);
    expect(await b.tryAcquire()).toEqual({ acquired: false, holder: 'a' });
    expect(await redis.get(keys.leaderEpoch())).toBe(String(e));
    // The holder asking again starts a new term: it never silently continues an old one.
    const second = (await a.tryAcquire()) as { acquired: true; epoch: number };
    expect(second).toEqual({ acquired: true, epoch: expect.any(Number) });
    expect(second.epoch).toBeGreaterThan(e);
    await redis.del(keys.leader()); // expired
    const third = (await b.tryAcquire()) as { acquired: true; epoch: number };
    expect(third.acquired).toBe(true);
    expect(third.epoch).toBeGreaterThan(second.epoch);
    // A counter ahead of the clock counts up one by one.
    const ahead = Date.now() + 60_000;
    await redis.set(keys.leaderEpoch(), String(ahead));
    expect(await b.tryAcquire()).toEqual({ acquired: true, epoch: ahead + 1 });
    expect(await redis.get(keys.leaderEpoch())).toBe(String(ahead + 1));
  });

  it('acquireLeaderLease: after Redis lost its keys, the next term is still newer than every earlier one', async () => {
    const a = new LeaderLease(redis, keys, 'a', 5_000);
    const b = new LeaderLease(redis, keys, 'b', 5_000);
    const first = (await a.tryAcquire()) as { epoch: number };
    for (let i = 0; i < 5; i++) await a.tryAcquire(); // five more terms in the same millisecond or so
    await redis.del(keys.leader(), keys.leaderEpoch()); // what a Redis restarted without persistence forgets
    // Redis's clock past the last term, as it is after any restart (which takes far more than 6 ms).
    await vi.waitFor(async () => expect(await redisMs()).toBeGreaterThan(first.epoch + 5));
    const next = await b.tryAcquire();
    expect(next).toMatchObject({ acquired: true });
    expect((next as { epoch: number }).epoch).toBeGreaterThan(first.epoch + 5);
  });

  it('renewLeaderLease: extends only our lease in our term', async () => {
    const a = new LeaderLease(redis, keys, 'a', 5_000);
    const b = new LeaderLease(redis, keys, 'b', 5_000);
    const first = await a.tryAcquire();
    if (!first.acquired) throw new Error('not acquired');
    await redis.pexpire(keys.leader(), 100);
    expect(await a.renew(first.epoch)).toBe(true);
    expect(await redis.pttl(keys.leader())).toBeGreaterThan(4_000);
    expect(await b.renew(first.epoch)).toBe(false);
    expect(await a.renew(first.epoch + 1)).toBe(false); // a term that is not ours
    await redis.del(keys.leader());
    expect(await a.renew(first.epoch)).toBe(false); // expired: renewal must not resurrect it
    expect(await redis.exists(keys.leader())).toBe(0);
  });

  it('releaseLeaderLease: deletes the lease only while it is ours', async () => {
    const a = new LeaderLease(redis, keys, 'a', 5_000);
    const b = new LeaderLease(redis, keys, 'b', 5_000);
    const first = await a.tryAcquire();
    if (!first.acquired) throw new Error('not acquired');
    expect(await b.release(first.epoch)).toBe(false);
    expect(await redis.get(keys.leader())).toBe('a');
    expect(await a.release(first.epoch)).toBe(true);
    expect(await redis.exists(keys.leader())).toBe(0);
    const second = await b.tryAcquire();
    expect(second).toEqual({ acquired: true, epoch: expect.any(Number) });
    expect((second as { epoch: number }).epoch).toBeGreaterThan(first.epoch);
    expect(await a.release(first.epoch)).toBe(false);
    expect(await redis.get(keys.leader())).toBe('b');
  });
});

describe('commitAssignment script', () => {
  async function lead(id: string): Promise<number> {
    const result = await new LeaderLease(redis, keys, id, 5_000).tryAcquire();
    if (!result.acquired) throw new Error(`${id} did not acquire`);
    return result.epoch;
  }
  const store = (id: string, epoch: number, partitions = 4): AssignmentStore =>
    new AssignmentStore(redis, keys, partitions, { coordinatorId: id, leaderEpoch: epoch }, memoryLogger().log);

  async function stored(partition: number): Promise<PartitionState> {
    return PartitionState.parse(JSON.parse((await redis.hget(keys.assignment(), String(partition)))!));
  }

  it('writes states, takes a new partition epoch on bump, and bumps the table version once per commit', async () => {
    const epoch = await lead('a');
    const s = store('a', epoch);
    // Epochs survive the table: a bump continues from them when they are ahead of the leader epoch.
    const ahead = epoch + 7;
    await redis.set(keys.partitionEpoch(1), String(ahead));
    expect(await s.load()).toEqual({ repaired: [0, 1, 2, 3], inconsistent: [] });
    expect(s.version).toBe(1);
    expect(await stored(1)).toEqual({ partition: 1, owner: null, epoch: ahead, phase: 'unowned' });

    // A partition's first epoch in a term is the leader epoch (never one handed out before, even
    // by a Redis that lost its data: the leader epoch follows the clock); after that, + 1.
    const states = await s.commit([
      { partition: 0, owner: 'w1', phase: 'owned', bump: true },
      { partition: 1, owner: 'w2', phase: 'owned', bump: true },
    ]);
    expect(states.map((x) => x.epoch)).toEqual([epoch, ahead + 1]);
    expect(s.version).toBe(2);
    expect(await redis.get(keys.assignmentVersion())).toBe('2');
    expect(await redis.get(keys.partitionEpoch(0))).toBe(String(epoch));
    expect(await redis.get(keys.partitionEpoch(1))).toBe(String(ahead + 1));
    expect(await stored(1)).toEqual({ partition: 1, owner: 'w2', epoch: ahead + 1, phase: 'owned' });

    await s.commit([{ partition: 1, owner: 'w2', phase: 'revoking', next: 'w3', bump: false }]);
    expect(await stored(1)).toEqual({ partition: 1, owner: 'w2', epoch: ahead + 1, phase: 'revoking', next: 'w3' });
    expect(await redis.get(keys.partitionEpoch(1))).toBe(String(ahead + 1));
    await s.commit([{ partition: 1, owner: 'w3', phase: 'owned', bump: true }]);
    expect(await stored(1)).toEqual({ partition: 1, owner: 'w3', epoch: ahead + 2, phase: 'owned' });
    await s.commit([{ partition: 0, owner: 'w2', phase: 'owned', bump: true }]);
    expect(await stored(0)).toEqual({ partition: 0, owner: 'w2', epoch: epoch + 1, phase: 'owned' });
    expect(s.version).toBe(5);

    // A new leader loads exactly that.
    const again = store('a', epoch);
    expect(await again.load()).toEqual({ repaired: [], inconsistent: [] });
    expect(again.table).toEqual(s.table);
    expect(again.version).toBe(5);
  });

  it('after Redis lost its data, no partition epoch handed out before is handed out again', async () => {
    // A worker paused across the loss still holds its old epoch: it must never match again.
    const first = await lead('a');
    const s = store('a', first);
    await s.load();
    const before: number[] = [];
    for (const owner of ['w1', 'w2', 'w3', 'w1']) {
      before.push(...(await s.commit([0, 1, 2, 3].map((partition) => ({ partition, owner, phase: 'owned' as const, bump: true })))).map((x) => x.epoch));
    }
    await redis.flushdb(); // a Redis restarted without persistence
    // Its clock has passed the last epoch handed out, as after any restart (epochs count owner
    // changes, each of which takes a worker's round trip, so they are far rarer than one per ms).
    await vi.waitFor(async () => expect(await redisMs()).toBeGreaterThan(Math.max(...before)));
    const second = await lead('b');
    const t = store('b', second);
    await t.load();
    const after = (await t.commit([0, 1, 2, 3].map((partition) => ({ partition, owner: 'w2', phase: 'owned' as const, bump: true })))).map((x) => x.epoch);
    for (const e of after) expect(e).toBeGreaterThan(Math.max(...before));
  });

  it('a deposed leader writes nothing and learns it (FENCED)', async () => {
    const old = await lead('a');
    const s = store('a', old);
    await s.load();
    await redis.del(keys.leader()); // a's lease expired while it was paused
    const next = await lead('b');
    expect(next).toBeGreaterThan(old);
    const before = await redis.hgetall(keys.assignment());
    await expect(s.commit([{ partition: 0, owner: 'w1', phase: 'owned', bump: true }])).rejects.toMatchObject({ code: 'FENCED' });
    expect(await redis.hgetall(keys.assignment())).toEqual(before);
    expect(await redis.get(keys.partitionEpoch(0))).toBeNull(); // the owner was not fenced out either
    expect(await redis.get(keys.assignmentVersion())).toBe('1');
  });

  it('load reports partitions whose epoch key moved on without the table', async () => {
    const epoch = await lead('a');
    const s = store('a', epoch);
    await s.load();
    await s.commit([{ partition: 2, owner: 'w1', phase: 'owned', bump: true }]);
    await redis.incr(keys.partitionEpoch(2));
    await redis.hset(keys.assignment(), '3', 'not json');
    const again = store('a', epoch);
    expect(await again.load()).toEqual({ repaired: [3], inconsistent: [2] });
  });
});

describe('membership (readHeartbeats)', () => {
  const heartbeat = (id: string) => JSON.stringify({ id, capacity: 1, load: 0, version: 't', draining: false, started_at: new Date(0).toISOString(), owned: [] });
  const beat = (id: string, value = heartbeat(id), leaseMs = 5_000) =>
    redis.multi().set(keys.worker(id), value, 'PX', leaseMs).sadd(keys.workers(), id).exec();

  it('lists the indexed workers whose heartbeat lives, drops the dead from the index, skips bad heartbeats', async () => {
    const { log, lines } = memoryLogger();
    const membership = new Membership(redis, keys, log);
    await beat('w2');
    await beat('w1');
    await beat('dead');
    await redis.del(keys.worker('dead')); // its lease expired
    await beat('garbled', 'not json');
    await beat('liar', heartbeat('someone-else'));

    const live = await membership.live();
    expect([...live.keys()]).toEqual(['w1', 'w2']);
    expect(live.get('w1')!.leaseLeftMs).toBeGreaterThan(4_000);
    expect((await redis.smembers(keys.workers())).sort()).toEqual(['garbled', 'liar', 'w1', 'w2']);
    expect(lines.join('\n')).toMatch(/not JSON/);
    expect(lines.join('\n')).toMatch(/another worker id/);

    // A worker that comes back adds itself to the index again with its next heartbeat.
    await beat('dead');
    expect([...(await membership.live()).keys()]).toEqual(['dead', 'w1', 'w2']);
  });

  it('never scans the keyspace: its cost does not grow with the done-markers beside it', async () => {
    const membership = new Membership(redis, keys, memoryLogger().log);
    const filler = redis.pipeline();
    for (let i = 0; i < 20_000; i++) filler.set(keys.state.done(`c${i}`), 'published|risk', 'EX', 600);
    await filler.exec();
    await beat('w1');
    await redis.config('RESETSTAT');
    expect([...(await membership.live()).keys()]).toEqual(['w1']);
    const stats = await redis.info('commandstats');
    expect(stats).not.toMatch(/cmdstat_(scan|keys):/);
    // SMEMBERS, then one script call that reads every heartbeat.
    expect(stats).toMatch(/cmdstat_smembers:calls=1,/);
    expect(stats).toMatch(/cmdstat_evalsha:calls=1,/);
  });
});
