import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import type { JetStreamClient } from '@nats-io/jetstream';
import { RedisKeys, type Decision } from '@at-orchestrator/contracts';
import { Registry, createLogger } from '@at-orchestrator/runtime';
import { RedisServer } from '@at-orchestrator/local-servers';
import { CorrelationStore, type ClaimVerdict } from '../state/correlation-store.js';
import { WorkerMetrics } from '../metrics.js';
import { CorrelationLock } from './correlation-lock.js';
import { jetStreamClientPublisher } from './jetstream-publisher.js';
import { DecisionEmitter } from './decision-emitter.js';
import type { DecisionJob } from './decision-builder.js';

let server: RedisServer;
let redis: Redis;
let observer: Redis;
const keys = new RedisKeys('em');
const log = createLogger({ service: 'test', env: 'test', level: 'silent' });

beforeAll(async () => {
  server = await RedisServer.start();
  redis = new Redis(server.url);
  observer = new Redis(server.url);
});
afterAll(async () => {
  redis?.disconnect();
  observer?.disconnect();
  await server?.dispose();
});
beforeEach(async () => {
  await redis.flushall();
  await redis.set(keys.epoch(1), '4');
});

function job(corrId: string, partition = 1): DecisionJob {
  const decision = { corr_id: corrId, agents_present: ['momentum', 'risk'], channels: [] } as unknown as Decision;
  const corr = { corrId, partition, held: [], firstSeenMs: Date.now() } as unknown as DecisionJob['corr'];
  return { corr, decision, type: 'buy', atDeadline: false, epoch: 4, bytes: undefined };
}

/**
 * An emitter over the real Redis whose "JetStream" records, at each publish, who holds each lock key;
 * with `lockClient` it takes the lock there (as with REDLOCK_URLS), without it no lock (the default).
 */
function setup(lockClient?: Redis, markDelayMs?: number) {
  const metrics = new WorkerMetrics(new Registry());
  const published: Array<{ corrId: string; lockHolder: string | null }> = [];
  const js = {
    publish: async (_subject: string, data: Uint8Array) => {
      const { corr_id } = JSON.parse(new TextDecoder().decode(data)) as { corr_id: string };
      published.push({ corrId: corr_id, lockHolder: await observer.get(keys.lock(corr_id)) });
      return { seq: published.length, duplicate: false, stream: 's', domain: '' };
    },
  } as unknown as JetStreamClient;
  const store = new CorrelationStore(redis, keys, { stateSec: 60, idempotencySec: 600 });
  const lock = lockClient === undefined ? undefined : new CorrelationLock([lockClient], keys, metrics, log);
  // What happened when, on the client side: the claims are sent before the lock's answer, or after it.
  const events: string[] = [];
  if (lock !== undefined) {
    const acquire = lock.acquire.bind(lock);
    lock.acquire = (ids) => {
      events.push('lock sent');
      return acquire(ids).then((l) => (events.push('lock answered'), l));
    };
  }
  const claim = store.claim.bind(store);
  store.claim = (requests, worker) => (events.push('claims sent'), claim(requests, worker));
  const emitter = new DecisionEmitter({ publisher: jetStreamClientPublisher(js), store, lock, redisAvailable: () => true, metrics, log, workerId: 'w1', onClosed: () => undefined, markDelayMs });
  return { emitter, published, metrics, events };
}

describe('DecisionEmitter and the correlation lock', () => {
  it('without REDLOCK_URLS: no lock at all, one claim script and one mark script for the batch', async () => {
    const { emitter, published, events } = setup();
    await emitter.emit([job('warm-up')]); // loads the scripts (EVALSHA, not EVAL, from here on)
    await emitter.idle();
    published.length = 0;
    events.length = 0;
    const monitor = await observer.duplicate().monitor();
    const commands: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => commands.push(args.join(' ')));

    await emitter.emit([job('c1'), job('c2')]);
    await emitter.idle();
    // The MONITOR stream lags the commands: wait for the mark, the last one.
    await vi.waitFor(() => expect(commands.filter((c) => /^evalsha /i.test(c))).toHaveLength(2));
    monitor.disconnect();

    // (The fake JetStream's observer reads the lock key; nothing else touches it.)
    expect(commands.filter((c) => c.includes(keys.lock('c1')) && !/^get /i.test(c))).toEqual([]);
    expect(commands.filter((c) => /^evalsha /i.test(c))).toHaveLength(2);
    expect(events).toEqual(['claims sent']);
    expect(published).toEqual([
      { corrId: 'c1', lockHolder: null },
      { corrId: 'c2', lockHolder: null },
    ]);
    expect(await redis.get(keys.done('c1'))).toBe('published|momentum,risk');
  });

  it('on another master: waits for the lock before claiming, and holds it through publish', async () => {
    const other = new Redis(server.url);
    try {
      const { emitter, published, events } = setup(other);
      await emitter.emit([job('c3')]);
      expect(events).toEqual(['lock sent', 'lock answered', 'claims sent']);
      expect(published).toEqual([{ corrId: 'c3', lockHolder: expect.any(String) }]);
      expect(await redis.exists(keys.lock('c3'))).toBe(0);
    } finally {
      other.disconnect();
    }
  });

  it('a lock held by someone else is counted and does not stop the decision: the fence decides', async () => {
    const { emitter, published, metrics } = setup(redis);
    await redis.set(keys.lock('c4'), 'someone-else', 'PX', 5_000);
    await emitter.emit([job('c4')]);
    expect(published.map((p) => p.corrId)).toEqual(['c4']);
    expect(published[0]!.lockHolder).toBe('someone-else');
    expect((await metrics.lockFailures.get()).values[0]?.value).toBe(1);
    expect(await redis.get(keys.lock('c4'))).toBe('someone-else');
    await emitter.idle();
    expect(await redis.get(keys.done('c4'))).toBe('published|momentum,risk');
  });

  it('with a mark delay: marks the decisions of several batches in one script call; idle() writes them at once', async () => {
    const { emitter } = setup(undefined, 5_000);
    await emitter.emit([job('warm')]);
    await emitter.idle();
    const monitor = await observer.duplicate().monitor();
    const commands: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => commands.push(args.join(' ')));
    await emitter.emit([job('m1')]);
    await emitter.emit([job('m2'), job('m3')]);
    // Published, not yet marked: the marks wait for more.
    expect(await redis.get(keys.done('m1'))).toMatch(/^pending\|/);
    await emitter.idle();
    expect(await redis.mget(keys.done('m1'), keys.done('m2'), keys.done('m3'))).toEqual(['published|momentum,risk', 'published|momentum,risk', 'published|momentum,risk']);
    await vi.waitFor(() => expect(commands.filter((c) => c.includes('published')).length).toBeGreaterThan(0));
    monitor.disconnect();
    const marks = commands.filter((c) => /^evalsha /i.test(c) && c.includes(keys.done('m1')) && !c.includes('pending|'));
    expect(marks).toHaveLength(1);
    expect(marks[0]).toContain(keys.done('m3'));
  });
});

/** A "JetStream" that records the corr_id of every decision published and acknowledges it. */
function recordingJetStream(): { js: JetStreamClient; published: string[] } {
  const published: string[] = [];
  const js = {
    publish: (_subject: string, data: Uint8Array) => {
      published.push((JSON.parse(new TextDecoder().decode(data)) as { corr_id: string }).corr_id);
      return Promise.resolve({ seq: published.length, duplicate: false, stream: 's', domain: '' });
    },
  } as unknown as JetStreamClient;
  return { js, published };
}

describe('DecisionEmitter on a Redis Cluster (claims per partition) when one partition fails', () => {
  it('publishes degraded only the jobs of the partition whose call failed; a fenced or already published job of another partition is not published', async () => {
    const metrics = new WorkerMetrics(new Registry());
    const { js, published } = recordingJetStream();
    // One real Redis, the batch split per partition as on a Cluster.
    const store = new CorrelationStore(redis, keys, { stateSec: 60, idempotencySec: 600 }, { perSlot: true });
    const closed: Array<[string, string]> = [];
    const emitter = new DecisionEmitter({ publisher: jetStreamClientPublisher(js), store, redisAvailable: () => true, metrics, log, workerId: 'w1', onClosed: (j, outcome) => closed.push([j.corr.corrId, outcome]) });

    await redis.set(keys.epoch(1), '5'); // partition 1 has a newer owner: our epoch 4 is stale
    await redis.hset(keys.epoch(2), 'x', 'y'); // partition 2's script fails (WRONGTYPE), as a master failing over would
    await redis.set(keys.epoch(3), '4');
    await redis.set(keys.done('old'), 'published|momentum,risk', 'EX', 600); // decided long ago (past the Nats-Msg-Id window)
    await redis.set(keys.epoch(4), '4');
    await redis.set(keys.open(4), 'not-a-sorted-set'); // partition 4's mark fails (after its claim)

    await emitter.emit([job('stale', 1), job('lost', 2), job('old', 3), job('fresh', 4)]);
    await emitter.idle();

    expect(published.sort()).toEqual(['fresh', 'lost']);
    expect(closed.sort()).toEqual([
      ['fresh', 'published'],
      ['lost', 'published'],
      ['old', 'already_published'],
      ['stale', 'fenced'],
    ]);
    const failures = (await metrics.stateFailures.get()).values;
    expect(failures.find((v) => v.labels.operation === 'claim')?.value).toBe(1);
    expect((await metrics.fencedWrites.get()).values[0]?.value).toBe(1);
    // The marks: partition 2's is written, partition 4's failed alone and waits for a recovery.
    expect(await redis.get(keys.done('lost'))).toBe('published|momentum,risk');
    expect(failures.find((v) => v.labels.operation === 'mark_published')?.value).toBe(1);
    expect(emitter.unsyncedCount).toBe(1);
    await redis.del(keys.open(4));
    await emitter.syncAfterRecovery();
    expect(emitter.unsyncedCount).toBe(0);
    expect(await redis.get(keys.done('fresh'))).toBe('published|momentum,risk');
  });

  it('one Redis keeps one claim call for the batch: a failure there publishes the whole batch degraded', async () => {
    const metrics = new WorkerMetrics(new Registry());
    const { js, published } = recordingJetStream();
    const store = new CorrelationStore(redis, keys, { stateSec: 60, idempotencySec: 600 });
    const emitter = new DecisionEmitter({ publisher: jetStreamClientPublisher(js), store, redisAvailable: () => true, metrics, log, workerId: 'w1', onClosed: () => undefined });
    await redis.hset(keys.epoch(2), 'x', 'y');
    await redis.set(keys.epoch(4), '4');
    await emitter.emit([job('a', 2), job('b', 4)]);
    await emitter.idle();
    expect(published.sort()).toEqual(['a', 'b']);
    expect((await metrics.stateFailures.get()).values.find((v) => v.labels.operation === 'claim')?.value).toBe(2);
  });
});

describe('DecisionEmitter after a stop past the lease (gate)', () => {
  it('a decision whose claim Redis cannot answer is not published unfenced: it waits, is claimed when Redis answers, and a refused claim fences it', async () => {
    const metrics = new WorkerMetrics(new Registry());
    const { js, published } = recordingJetStream();
    const store = new CorrelationStore(redis, keys, { stateSec: 60, idempotencySec: 600 });
    const redisUp = { now: false };
    const closed: Array<[string, string]> = [];
    const emitter = new DecisionEmitter({
      publisher: jetStreamClientPublisher(js),
      store,
      redisAvailable: () => redisUp.now,
      metrics,
      log,
      workerId: 'w1',
      retryDelayMs: 20,
      onClosed: (j, outcome) => closed.push([j.corr.corrId, outcome]),
    });
    // The worker was stopped past its lease: nothing may go out that no claim fenced.
    emitter.gate(() => false);
    await emitter.emit([job('stale-1'), job('stale-2', 3)]);
    expect(published).toEqual([]);
    expect(emitter.pending).toBe(2);

    // Meanwhile the leader gave partition 1 to another worker; partition 3 is still ours.
    await redis.set(keys.epoch(1), '5');
    await redis.set(keys.epoch(3), '4');
    redisUp.now = true;
    await emitter.idle();
    expect(published).toEqual(['stale-2']);
    expect(closed.sort()).toEqual([
      ['stale-1', 'fenced'],
      ['stale-2', 'published'],
    ]);
    expect((await metrics.fencedWrites.get()).values[0]?.value).toBe(1);
  });

  it('a worker that lived through the outage (gate open) publishes with the Nats-Msg-Id window, as before', async () => {
    const { js, published } = recordingJetStream();
    const store = new CorrelationStore(redis, keys, { stateSec: 60, idempotencySec: 600 });
    const emitter = new DecisionEmitter({ publisher: jetStreamClientPublisher(js), store, redisAvailable: () => false, metrics: new WorkerMetrics(new Registry()), log, workerId: 'w1', onClosed: () => undefined });
    emitter.gate(() => true);
    await emitter.emit([job('degraded')]);
    expect(published).toEqual(['degraded']);
    expect(emitter.unsyncedCount).toBe(1);
  });
});

describe('DecisionEmitter with claims made in the store call (Intake, one Redis)', () => {
  const preclaimed = (j: DecisionJob, epoch: number, verdict: ClaimVerdict | undefined, ageMs = 0): DecisionJob => {
    (j.corr as { preclaim: unknown }).preclaim = { epoch, verdict: Promise.resolve(verdict), answeredAt: verdict === undefined ? undefined : performance.now() - ageMs };
    return j;
  };

  it('uses the verdict Redis gave with the store under the same epoch, and claims anew otherwise', async () => {
    const { emitter, published, events } = setup();
    // Redis holds the truth for partition 1 (epoch 4): what is claimed anew is fenced or claimed there.
    await emitter.emit([
      preclaimed(job('pre-claimed'), 4, { kind: 'claimed' }),
      preclaimed(job('pre-fenced'), 4, { kind: 'fenced', currentEpoch: 5 }),
      preclaimed(job('pre-published'), 4, { kind: 'exists', published: true, agents: ['momentum', 'risk'] }),
      preclaimed(job('older-epoch'), 3, { kind: 'claimed' }),
      preclaimed(job('unanswered'), 4, undefined),
      job('no-preclaim'),
      // Answered before a stop past the lease, say: the partition has moved on (Redis says epoch 4 is
      // current here, so the claim made now goes through, where the old verdict said fenced).
      preclaimed(job('old-answer'), 4, { kind: 'fenced', currentEpoch: 5 }, 10_000),
    ]);
    await emitter.idle();
    // One claim call, for the four without a usable verdict; the others were answered with the store.
    expect(events).toEqual(['claims sent']);
    expect(published.map((p) => p.corrId)).toEqual(['pre-claimed', 'older-epoch', 'unanswered', 'no-preclaim', 'old-answer']);
    expect(await redis.mget(keys.done('pre-claimed'), keys.done('older-epoch'), keys.done('no-preclaim'))).toEqual([
      'published|momentum,risk',
      'published|momentum,risk',
      'published|momentum,risk',
    ]);
    // A verdict is used once: the correlation no longer carries it.
    const again = job('again');
    preclaimed(again, 4, { kind: 'claimed' });
    await emitter.emit([again]);
    expect((again.corr as { preclaim?: unknown }).preclaim).toBeUndefined();
  });
});

describe('DecisionEmitter afterPublish', () => {
  it('is called once per batch, after every publish of the batch is queued and before any PubAck', async () => {
    const order: string[] = [];
    const publisher = {
      publish: (_subject: string, data: Uint8Array) => {
        order.push(`publish ${(JSON.parse(new TextDecoder().decode(data)) as { corr_id: string }).corr_id}`);
        return Promise.resolve().then(() => (order.push('ack'), { seq: 1, duplicate: false, stream: 's', domain: '' }));
      },
    };
    const store = new CorrelationStore(redis, keys, { stateSec: 60, idempotencySec: 600 });
    const emitter = new DecisionEmitter({
      publisher,
      store,
      redisAvailable: () => true,
      metrics: new WorkerMetrics(new Registry()),
      log,
      workerId: 'w1',
      onClosed: () => undefined,
      afterPublish: () => order.push('after publish'),
    });
    await emitter.emit([job('a1'), job('a2')]);
    expect(order).toEqual(['publish a1', 'publish a2', 'after publish', 'ack', 'ack']);
  });
});
