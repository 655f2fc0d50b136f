import { execFile } from 'node:child_process';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CoordinatorKeys } from '@at-orchestrator/coordinator';
import { RedisServer } from '@at-orchestrator/local-servers';
import { Redis } from '@at-orchestrator/runtime';
import { MIGRATED_TOMBSTONE, migrateKeyLayout } from './key-migration.js';

// A keyspace as cluster protocol 1 left it (every key <prefix>:<kind>:…, written here by hand: that
// layout exists nowhere else any more) moved to the hash-tagged layout with values and TTLs kept.

const P = 8;
const MAIN = new URL('../dist/main.js', import.meta.url).pathname;
let server: RedisServer;
let redis: Redis;
let prefix: string;
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
  prefix = `km${n}`;
  keys = new CoordinatorKeys(prefix, P);
});

/** What a stopped cluster of protocol 1 leaves: an open correlation, a decided one, a late signal, epochs, the table. */
async function protocolOneKeyspace(): Promise<void> {
  const open = 'corr-open';
  const p = keys.state.partitionOf(open);
  await redis
    .multi()
    .hset(`${prefix}:signals:${open}`, 'momentum', '{"m":1}')
    .expire(`${prefix}:signals:${open}`, 600)
    .zadd(`${prefix}:open:${p}`, 123_456, open)
    .set(`${prefix}:epoch:${p}`, '1795814400012')
    .set(`${prefix}:epoch:1`, '1795814400003')
    .set(`${prefix}:done:corr-done`, 'published|momentum,risk', 'EX', 3_600)
    .hset(`${prefix}:late:corr-done`, 'ml', '{"x":1}')
    .hset(
      `${prefix}:assignment`,
      Object.fromEntries(
        Array.from({ length: P }, (_, q) => [String(q), JSON.stringify(q === p ? { partition: p, owner: 'w1', epoch: 1795814400012, phase: 'owned' } : { partition: q, owner: null, epoch: 0, phase: 'unowned' })]),
      ),
    )
    .set(`${prefix}:assignment:version`, '42')
    .set(`${prefix}:leader:epoch`, '1795814400000')
    .hset(`${prefix}:coordinator:pins`, '3', 'w1')
    .exec();
}

describe('keys migrate (cluster protocol 1 → 2)', () => {
  it('moves every state key under its new name with its value and TTL, and leaves the old lease a tombstone', async () => {
    await protocolOneKeyspace();
    const open = 'corr-open';
    const p = keys.state.partitionOf(open);
    const lines: string[] = [];
    const result = await migrateKeyLayout(redis, { prefix, partitions: P, say: (l) => lines.push(l) });
    expect(result).toEqual({ kind: 'done', moved: { table: 3, operator: 1, epoch: 2, open: 1, signals: 1, done: 1, late: 1 }, conflicts: [] });

    expect(await redis.hgetall(keys.state.signals(open))).toEqual({ momentum: '{"m":1}' });
    expect(await redis.ttl(keys.state.signals(open))).toBeGreaterThan(500);
    expect(await redis.zrange(keys.state.open(p), 0, -1, 'WITHSCORES')).toEqual([open, '123456']);
    expect(await redis.get(keys.partitionEpoch(p))).toBe('1795814400012');
    expect(await redis.get(keys.partitionEpoch(1))).toBe('1795814400003');
    expect(await redis.get(keys.state.done('corr-done'))).toBe('published|momentum,risk');
    expect(await redis.ttl(keys.state.done('corr-done'))).toBeGreaterThan(3_500);
    expect(await redis.hgetall(keys.state.late('corr-done'))).toEqual({ ml: '{"x":1}' });
    expect(JSON.parse((await redis.hget(keys.assignment(), String(p)))!)).toMatchObject({ owner: 'w1', epoch: 1795814400012 });
    expect(await redis.get(keys.assignmentVersion())).toBe('42');
    expect(await redis.get(keys.leaderEpoch())).toBe('1795814400000');
    expect(await redis.hgetall(keys.pins())).toEqual({ 3: 'w1' });
    // Nothing of the old layout is left but the tombstone in the old lease (no expiry).
    expect((await redis.keys(`${prefix}:*`)).filter((k) => !k.startsWith(`${prefix}:{`))).toEqual([`${prefix}:leader`]);
    expect(await redis.get(`${prefix}:leader`)).toBe(MIGRATED_TOMBSTONE);
    expect(await redis.pttl(`${prefix}:leader`)).toBe(-1);
    expect(lines.join('\n')).toMatch(/moved: 3 table, 1 operator, 2 epoch, 1 open, 1 signals, 1 done, 1 late/);

    // Again: nothing left to move.
    expect(await migrateKeyLayout(redis, { prefix, partitions: P })).toEqual({ kind: 'done', moved: { table: 0, operator: 0, epoch: 0, open: 0, signals: 0, done: 0, late: 0 }, conflicts: [] });
  });

  it('refuses while a process of protocol 1 lives (a lease, a heartbeat), and never overwrites a key of the new layout', async () => {
    await protocolOneKeyspace();
    await redis.set(`${prefix}:leader`, 'coord-old', 'PX', 5_000);
    expect(await migrateKeyLayout(redis, { prefix, partitions: P })).toEqual({ kind: 'busy', reason: expect.stringContaining('coordinator "coord-old" holds the lease') });
    await redis.del(`${prefix}:leader`);
    await redis.multi().set(`${prefix}:worker:w1`, '{}', 'PX', 5_000).sadd(`${prefix}:workers`, 'w1', 'w-gone').exec();
    expect(await migrateKeyLayout(redis, { prefix, partitions: P })).toEqual({ kind: 'busy', reason: expect.stringContaining('1 worker heartbeat(s) of cluster protocol 1') });
    expect(await redis.exists(keys.assignment())).toBe(0); // nothing moved

    await redis.set(keys.state.done('corr-done'), 'published|risk');
    const forced = await migrateKeyLayout(redis, { prefix, partitions: P, force: true });
    expect(forced).toMatchObject({ kind: 'done', conflicts: [`${prefix}:done:corr-done`] });
    expect(await redis.get(keys.state.done('corr-done'))).toBe('published|risk');
    expect(await redis.get(`${prefix}:done:corr-done`)).toBe('published|momentum,risk');
  });

  it('refuses a PARTITIONS other than the old table\'s, naming both numbers, even with --force: nothing written', async () => {
    await protocolOneKeyspace();
    const before = (await redis.keys(`${prefix}:*`)).sort();
    for (const force of [false, true]) {
      expect(await migrateKeyLayout(redis, { prefix, partitions: 16, force })).toEqual({
        kind: 'wrong-partitions',
        reason: `PARTITIONS is 16 but the table ${prefix}:assignment holds ${P} partitions: set PARTITIONS=${P}, the cluster's`,
      });
    }
    expect((await redis.keys(`${prefix}:*`)).sort()).toEqual(before); // not even the tombstone
    expect(await redis.get(`${prefix}:leader`)).toBeNull();
    // With the cluster's number it moves.
    expect(await migrateKeyLayout(redis, { prefix, partitions: P })).toMatchObject({ kind: 'done', conflicts: [] });
  });
});

describe('keys migrate refuses a running cluster of protocol 2, and reports keys left in place', () => {
  function keysMigrate(args: string[] = [], partitions = P): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const env = { PATH: process.env.PATH, REDIS_URL: server.url, REDIS_KEY_PREFIX: prefix, PARTITIONS: String(partitions) };
    return new Promise((resolve) => {
      execFile(process.execPath, [MAIN, 'keys', 'migrate', ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
      });
    });
  }

  it('refuses while a coordinator of protocol 2 holds its lease or a worker of protocol 2 heartbeats (exit 3), nothing written; --force moves', async () => {
    await protocolOneKeyspace();
    await redis.set(keys.leader(), 'coord-new', 'PX', 5_000);
    expect(await migrateKeyLayout(redis, { prefix, partitions: P })).toEqual({ kind: 'busy', reason: expect.stringContaining(`coordinator "coord-new" of cluster protocol 2 holds the lease ${keys.leader()}`) });
    const refused = await keysMigrate();
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('protocol 2 is running already');
    await redis.del(keys.leader());
    await redis.multi().set(keys.worker('w9'), '{}', 'PX', 5_000).sadd(keys.workers(), 'w9', 'w-gone').exec();
    expect(await migrateKeyLayout(redis, { prefix, partitions: P })).toEqual({ kind: 'busy', reason: expect.stringContaining('1 worker heartbeat(s) of cluster protocol 2') });
    expect(await redis.exists(keys.assignment(), `${prefix}:leader`)).toBe(0); // nothing moved, no tombstone
    expect(await migrateKeyLayout(redis, { prefix, partitions: P, force: true })).toMatchObject({ kind: 'done', conflicts: [] });
    expect(await redis.get(keys.assignmentVersion())).toBe('42');
  });

  it('exits 3 and lists every key left in place when a new name existed; 0 when everything moved', async () => {
    await protocolOneKeyspace();
    await redis.set(keys.state.done('corr-done'), 'published|risk');
    const run = await keysMigrate();
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`1 key(s) left in place`);
    expect(run.stderr).toContain(`${prefix}:done:corr-done`);
    expect(run.stdout).toMatch(/moved: 3 table/);
    expect(await redis.get(`${prefix}:done:corr-done`)).toBe('published|momentum,risk');
    // Resolved by hand (the old marker dropped): a run again moves nothing more and exits 0.
    await redis.del(`${prefix}:done:corr-done`);
    expect((await keysMigrate()).code).toBe(0);
    // PARTITIONS wrong: exit 3, both numbers named.
    await redis.hset(`${prefix}:assignment`, '0', '{}');
    const wrong = await keysMigrate([], 12);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain(`PARTITIONS is 12 but the table ${prefix}:assignment holds 1 partitions`);
  });
});
