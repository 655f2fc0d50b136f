import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RedisKeys } from '@at-orchestrator/contracts';
import { RedisServer } from '@at-orchestrator/local-servers';
import { CorrelationStore } from './correlation-store.js';

let server: RedisServer;
let redis: Redis;
let store: CorrelationStore;
const keys = new RedisKeys('t');

beforeAll(async () => {
  server = await RedisServer.start();
  redis = new Redis(server.url);
  store = new CorrelationStore(redis, keys, { stateSec: 60, idempotencySec: 600 });
});
afterAll(async () => {
  await redis?.quit();
  await server?.dispose();
});
beforeEach(async () => {
  await redis.flushall();
  await redis.set(keys.epoch(3), '7');
});

const signal = (corrId: string, agent: string, epoch = 7) => ({ corrId, agent, partition: 3, payload: `{"a":"${agent}"}`, deadlineMs: 1000, epoch });

describe('store-signals.lua', () => {
  it('stores the first signal of an agent, with the TTL and the open index entry', async () => {
    expect(await store.storeSignals([signal('c1', 'risk')])).toEqual([{ kind: 'stored' }]);
    expect(await redis.hgetall(keys.signals('c1'))).toEqual({ risk: '{"a":"risk"}' });
    expect(await redis.ttl(keys.signals('c1'))).toBeGreaterThan(50);
    expect(await redis.zrange(keys.open(3), 0, -1, 'WITHSCORES')).toEqual(['c1', '1000']);
  });

  it('reports a repeat as a duplicate and keeps the first payload', async () => {
    await store.storeSignals([signal('c1', 'risk')]);
    const again = { ...signal('c1', 'risk'), payload: '{"other":1}' };
    expect(await store.storeSignals([again])).toEqual([{ kind: 'duplicate' }]);
    expect(await redis.hget(keys.signals('c1'), 'risk')).toBe('{"a":"risk"}');
  });

  it('refuses a decided correlation and returns the agents of its decision', async () => {
    await redis.set(keys.done('c1'), 'published|momentum,risk');
    expect(await store.storeSignals([signal('c1', 'correlation')])).toEqual([{ kind: 'done', published: true, agents: ['momentum', 'risk'] }]);
    expect(await redis.exists(keys.signals('c1'))).toBe(0);
  });

  it('refuses a writer with a stale epoch and writes nothing', async () => {
    expect(await store.storeSignals([signal('c1', 'risk', 6)])).toEqual([{ kind: 'fenced' }]);
    expect(await redis.exists(keys.signals('c1'))).toBe(0);
    expect(await redis.zcard(keys.open(3))).toBe(0);
  });

  it('answers each signal of a batch on its own, in order, in one call', async () => {
    await redis.set(keys.epoch(4), '2');
    await redis.set(keys.done('c3'), 'pending|7|w1|risk');
    await store.storeSignals([signal('c1', 'risk')]);
    const batch = [
      signal('c1', 'momentum'),
      signal('c1', 'risk'),
      signal('c3', 'momentum'),
      { ...signal('c4', 'risk'), partition: 4, epoch: 1 },
      { ...signal('c5', 'risk'), partition: 4, epoch: 2, deadlineMs: 2000 },
    ];
    expect(await store.storeSignals(batch)).toEqual([
      { kind: 'stored' },
      { kind: 'duplicate' },
      { kind: 'done', published: false, agents: ['risk'] },
      { kind: 'fenced' },
      { kind: 'stored' },
    ]);
    expect(await redis.hgetall(keys.signals('c1'))).toEqual({ risk: '{"a":"risk"}', momentum: '{"a":"momentum"}' });
    expect(await redis.exists(keys.signals('c3'), keys.signals('c4'))).toBe(0);
    expect(await redis.zrange(keys.open(4), 0, -1, 'WITHSCORES')).toEqual(['c5', '2000']);
    expect(await store.storeSignals([])).toEqual([]);
  });
});

describe('store-and-claim.lua: the store, then the claims, in one script run', () => {
  const claim = (corrId: string, epoch = 7, partition = 3) => ({ corrId, partition, epoch, agents: ['momentum', 'risk'] });

  it('stores the batch and claims the correlations it completes, each answered as the two scripts answer', async () => {
    await redis.set(keys.epoch(4), '9');
    await redis.set(keys.done('c3'), 'pending|7|w0|momentum,risk');
    await store.storeSignals([signal('c1', 'momentum')]);
    const { stored, claimed } = await store.storeAndClaim(
      [signal('c1', 'risk'), signal('c2', 'momentum'), signal('c3', 'risk'), { ...signal('c4', 'risk'), partition: 4, epoch: 8 }],
      [claim('c1'), claim('c3'), claim('c4', 8, 4)],
      'w1',
    );
    expect(stored).toEqual([{ kind: 'stored' }, { kind: 'stored' }, { kind: 'done', published: false, agents: ['momentum', 'risk'] }, { kind: 'fenced' }]);
    expect(claimed).toEqual([{ kind: 'claimed' }, { kind: 'exists', published: false, agents: ['momentum', 'risk'] }, { kind: 'fenced', currentEpoch: 9 }]);
    expect(await redis.hgetall(keys.signals('c1'))).toEqual({ momentum: '{"a":"momentum"}', risk: '{"a":"risk"}' });
    expect(await redis.get(keys.done('c1'))).toBe('pending|7|w1|momentum,risk');
    expect(await redis.ttl(keys.done('c1'))).toBeGreaterThan(500);
    expect(await redis.exists(keys.done('c4'), keys.signals('c4'))).toBe(0);
  });

  it('with no claims or no signals it is the store or the claim alone', async () => {
    expect(await store.storeAndClaim([signal('c1', 'risk')], [], 'w1')).toEqual({ stored: [{ kind: 'stored' }], claimed: [] });
    expect(await store.storeAndClaim([], [claim('c1')], 'w1')).toEqual({ stored: [], claimed: [{ kind: 'claimed' }] });
    expect(await redis.get(keys.done('c1'))).toBe('pending|7|w1|momentum,risk');
  });

  it('is refused on a Redis Cluster client (a script may not cross slots there)', async () => {
    const perSlot = new CorrelationStore(redis, keys, { stateSec: 60, idempotencySec: 600 }, { perSlot: true });
    expect(perSlot.claimsWithStore).toBe(false);
    expect(store.claimsWithStore).toBe(true);
    await expect(perSlot.storeAndClaim([signal('c1', 'risk')], [claim('c1')], 'w1')).rejects.toThrow(/Redis Cluster/);
  });
});

describe('claim-decisions.lua and mark-published.lua', () => {
  const claim = (epoch = 7) => ({ corrId: 'c1', partition: 3, epoch, agents: ['momentum', 'risk'] });

  it('lets exactly one claim through, and reports an unpublished claim as such', async () => {
    expect(await store.claim([claim()], 'w1')).toEqual([{ kind: 'claimed' }]);
    expect(await redis.get(keys.done('c1'))).toBe('pending|7|w1|momentum,risk');
    expect(await store.claim([claim()], 'w2')).toEqual([{ kind: 'exists', published: false, agents: ['momentum', 'risk'] }]);
  });

  it('fences a claim made at a stale epoch', async () => {
    expect(await store.claim([claim(6)], 'w1')).toEqual([{ kind: 'fenced', currentEpoch: 7 }]);
    expect(await redis.exists(keys.done('c1'))).toBe(0);
  });

  it('markPublished closes the correlation: marker published, open index entry gone', async () => {
    await store.storeSignals([signal('c1', 'risk')]);
    await store.claim([claim()], 'w1');
    await store.markPublished([{ corrId: 'c1', partition: 3, agents: ['momentum', 'risk'] }]);
    expect(await redis.get(keys.done('c1'))).toBe('published|momentum,risk');
    expect(await redis.ttl(keys.done('c1'))).toBeGreaterThan(500);
    expect(await redis.zcard(keys.open(3))).toBe(0);
    expect(await store.claim([claim()], 'w2')).toEqual([{ kind: 'exists', published: true, agents: ['momentum', 'risk'] }]);
  });

  it('answers each claim of a batch on its own, and markPublished closes a whole batch', async () => {
    await redis.set(keys.epoch(4), '9');
    await store.claim([{ ...claim(), corrId: 'c2' }], 'w1');
    const verdicts = await store.claim(
      [claim(), { ...claim(), corrId: 'c2' }, { ...claim(8), corrId: 'c3', partition: 4 }, { ...claim(9), corrId: 'c4', partition: 4, agents: ['risk'] }],
      'w2',
    );
    expect(verdicts).toEqual([
      { kind: 'claimed' },
      { kind: 'exists', published: false, agents: ['momentum', 'risk'] },
      { kind: 'fenced', currentEpoch: 9 },
      { kind: 'claimed' },
    ]);
    expect(await redis.get(keys.done('c4'))).toBe('pending|9|w2|risk');
    await store.storeSignals([signal('c1', 'risk'), { ...signal('c4', 'risk'), partition: 4, epoch: 9 }]);
    await store.markPublished([
      { corrId: 'c1', partition: 3, agents: ['momentum', 'risk'] },
      { corrId: 'c4', partition: 4, agents: ['risk'] },
    ]);
    expect(await redis.mget(keys.done('c1'), keys.done('c4'))).toEqual(['published|momentum,risk', 'published|risk']);
    expect(await redis.zcard(keys.open(3))).toBe(0);
    expect(await redis.zcard(keys.open(4))).toBe(0);
    expect(await store.claim([], 'w2')).toEqual([]);
  });

  it('loadOpen returns open correlations with deadlines and flags claimed-but-unpublished ones', async () => {
    await store.storeSignals([signal('c1', 'risk'), signal('c2', 'momentum')]);
    await store.claim([{ ...claim(), corrId: 'c2' }], 'w1');
    const open = await store.loadOpen([3]);
    expect(open.map((o) => [o.corrId, o.deadlineMs, o.claimedNotPublished]).sort()).toEqual([
      ['c1', 1000, false],
      ['c2', 1000, true],
    ]);
    // Only the named ones, when named (reloading one refused claim does not read the whole partition).
    expect((await store.loadOpen([3], new Set(['c2']))).map((o) => o.corrId)).toEqual(['c2']);
  });
});

describe('one call per batch, or per partition (perSlot, as on a Redis Cluster)', () => {
  const claim = (epoch = 7) => ({ corrId: 'c1', partition: 3, epoch, agents: ['risk'] });
  /** Script calls Redis ran while `run` ran. */
  async function scriptCalls(run: () => Promise<unknown>): Promise<number> {
    await redis.config('RESETSTAT');
    await run();
    const stats = await redis.info('commandstats');
    return [...stats.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+),/g)].reduce((n, m) => n + Number(m[1]), 0);
  }

  it('a batch across partitions is one script call on one Redis, one per partition per slot, with the same verdicts in order', async () => {
    const perSlot = new CorrelationStore(redis, keys, { stateSec: 60, idempotencySec: 600 }, { perSlot: true });
    expect(store.perSlot).toBe(false);
    await redis.set(keys.epoch(4), '9');
    await redis.set(keys.epoch(5), '2');
    await store.storeSignals([signal('warm', 'risk')]); // the script is loaded: EVALSHA only from here
    await perSlot.storeSignals([signal('warm2', 'risk')]);
    // Items of three partitions interleaved, one of them stale (fenced).
    const batch = (prefix: string) => [
      signal(`${prefix}1`, 'risk'),
      { ...signal(`${prefix}2`, 'risk'), partition: 4, epoch: 9 },
      signal(`${prefix}3`, 'momentum'),
      { ...signal(`${prefix}4`, 'risk'), partition: 5, epoch: 1 },
      { ...signal(`${prefix}5`, 'risk'), partition: 4, epoch: 9 },
    ];
    const want = [{ kind: 'stored' }, { kind: 'stored' }, { kind: 'stored' }, { kind: 'fenced' }, { kind: 'stored' }];
    let one: unknown;
    expect(await scriptCalls(async () => (one = await store.storeSignals(batch('s'))))).toBe(1);
    expect(one).toEqual(want);
    let per: unknown;
    expect(await scriptCalls(async () => (per = await perSlot.storeSignals(batch('p'))))).toBe(3);
    expect(per).toEqual(want);

    const claims = (prefix: string) => [
      { ...claim(), corrId: `${prefix}1` },
      { ...claim(9), corrId: `${prefix}2`, partition: 4 },
      { ...claim(8), corrId: `${prefix}5`, partition: 4 },
    ];
    const wantClaims = [{ kind: 'claimed' }, { kind: 'claimed' }, { kind: 'fenced', currentEpoch: 9 }];
    expect(await scriptCalls(async () => expect(await store.claim(claims('s'), 'w1')).toEqual(wantClaims))).toBe(1);
    expect(await scriptCalls(async () => expect(await perSlot.claim(claims('p'), 'w1')).toEqual(wantClaims))).toBe(2);
    const marks = (prefix: string) => [
      { corrId: `${prefix}1`, partition: 3, agents: ['risk'] },
      { corrId: `${prefix}2`, partition: 4, agents: ['risk'] },
    ];
    expect(await scriptCalls(() => store.markPublished(marks('s')))).toBe(1);
    expect(await scriptCalls(() => perSlot.markPublished(marks('p')))).toBe(2);
    expect(await redis.mget(keys.done('s1'), keys.done('p2'))).toEqual(['published|risk', 'published|risk']);

    // The pipelines of the rare paths come back in order too.
    expect((await perSlot.loadOpen([3, 4])).map((o) => o.corrId).sort()).toEqual(['p3', 'p5', 's3', 's5', 'warm', 'warm2']);
    expect([...(await perSlot.bumpEpochs([5, 4, 6]))]).toEqual([
      [5, 3],
      [4, 10],
      [6, 1],
    ]);
  });
});
