import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { DiscardPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { DECISION_REPUBLISH, DECISION_SUBJECT, RedisKeys, STORED_DECISION_SUBJECT, STORED_DECISION_SUBJECTS, channelSubject, storedChannelSubject, type Decision } from '@at-orchestrator/contracts';
import { Registry, memoryLogger } from '@at-orchestrator/runtime';
import { NatsServer, RedisServer } from '@at-orchestrator/local-servers';
import { CorrelationStore } from '../state/correlation-store.js';
import { WorkerMetrics } from '../metrics.js';
import { jetStreamClientPublisher } from './jetstream-publisher.js';
import { DecisionEmitter, channelMsgId } from './decision-emitter.js';
import type { DecisionJob } from './decision-builder.js';

// The emit path against a real JetStream: a "duplicate" PubAck is checked and counted, never taken
// blindly; a decision the stream refuses is retried with a growing delay, shown by a gauge and a log
// line while stuck, and published once when the stream takes it again (docs/security.md). A core
// subscriber of orchestrated.* receives only what the stream stored, through its RePublish: a decision
// published again after a takeover reaches it once (docs/delivery.md).

const STREAM = 'decisions-test';
const keys = new RedisKeys('pub');
const enc = new TextEncoder();

let nats: NatsServer;
let redisServer: RedisServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let redis: Redis;

beforeAll(async () => {
  nats = await NatsServer.start();
  redisServer = await RedisServer.start();
  nc = await connect({ servers: nats.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  redis = new Redis(redisServer.url);
});
afterAll(async () => {
  redis?.disconnect();
  await nc?.close();
  await nats?.dispose();
  await redisServer?.dispose();
});
beforeEach(async () => {
  await redis.flushall();
  await redis.set(keys.epoch(1), '4');
  // As the worker creates it: a duplicate window, a size limit and discard new (a full stream refuses).
  await jsm.streams.add({
    name: STREAM,
    subjects: [STORED_DECISION_SUBJECTS],
    republish: { ...DECISION_REPUBLISH },
    duplicate_window: 60_000_000_000,
    max_bytes: 1024 * 1024,
    discard: DiscardPolicy.New,
  });
});
afterEach(async () => {
  vi.restoreAllMocks();
  await jsm.streams.delete(STREAM);
});

function job(corrId: string, channels: string[] = []): DecisionJob {
  const decision = { corr_id: corrId, agents_present: ['momentum', 'risk'], channels } as unknown as Decision;
  const corr = { corrId, partition: 1, held: [], firstSeenMs: Date.now() } as unknown as DecisionJob['corr'];
  return { corr, decision, type: 'buy', atDeadline: false, epoch: 4, bytes: undefined };
}

/** An emitter over the real JetStream and Redis; every publish attempt of a decision is timed. */
function setup(retry: { retryDelayMs?: number; maxRetryDelayMs?: number } = {}) {
  const metrics = new WorkerMetrics(new Registry());
  const { log, lines } = memoryLogger('debug');
  const attempts: number[] = [];
  const timed = {
    publish: (subject: string, data: Uint8Array, opts?: Parameters<JetStreamClient['publish']>[2]) => {
      if (subject === STORED_DECISION_SUBJECT) attempts.push(performance.now());
      return js.publish(subject, data, opts);
    },
  } as unknown as JetStreamClient;
  const closed: Array<{ corrId: string; outcome: string }> = [];
  const emitter = new DecisionEmitter({
    publisher: jetStreamClientPublisher(timed),
    store: new CorrelationStore(redis, keys, { stateSec: 60, idempotencySec: 600 }),
    redisAvailable: () => true,
    metrics,
    log,
    workerId: 'w1',
    onClosed: (j, outcome) => closed.push({ corrId: j.corr.corrId, outcome }),
    ...retry,
  });
  return { emitter, metrics, lines, attempts, closed };
}

const counter = async (metrics: WorkerMetrics, labels: Record<string, string>): Promise<number> =>
  (await metrics.duplicateAcks.get()).values.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k as 'kind'] === want)).reduce((a, v) => a + v.value, 0);

/** The messages of the stream on `subject`, with their Nats-Msg-Id. */
async function stored(subject: string): Promise<Array<{ id: string | undefined; body: string }>> {
  const info = await jsm.streams.info(STREAM);
  const out: Array<{ id: string | undefined; body: string }> = [];
  for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(STREAM, { seq });
    if (m !== null && m.subject === subject) out.push({ id: m.header?.get('Nats-Msg-Id'), body: m.string() });
  }
  return out;
}

/** A plain core subscription of orchestrated.>: what the execution layer sees (subject, Nats-Msg-Id). */
async function coreSubscriber(): Promise<{ seen: Array<[string, string | undefined]>; stop: () => void }> {
  const seen: Array<[string, string | undefined]> = [];
  const sub = nc.subscribe('orchestrated.>', { callback: (_err, m: Msg) => {
      seen.push([m.subject, m.headers?.get('Nats-Msg-Id')]);
    },
  });
  await nc.flush();
  return { seen, stop: () => sub.unsubscribe() };
}

describe('duplicate PubAck', () => {
  it('a decision (and its channel copy) JetStream already holds is marked published and counted per kind, not stored again', async () => {
    // A previous owner published them and died before marking the correlation published.
    const core = await coreSubscriber();
    await js.publish(STORED_DECISION_SUBJECT, enc.encode('{"corr_id":"dup-1","by":"previous owner"}'), { msgID: 'dup-1' });
    await js.publish(storedChannelSubject('ops'), enc.encode('{"corr_id":"dup-1","by":"previous owner"}'), { msgID: channelMsgId('dup-1', 'ops') });
    const { emitter, metrics, closed } = setup();

    await emitter.emit([job('dup-1', ['ops']), job('fresh-1', ['ops'])]);
    await emitter.idle(); // the marks are written together, a few ms after the publish
    // The stream republishes in the order it stores: once a later message is seen, every earlier one was.
    await js.publish(STORED_DECISION_SUBJECT, enc.encode('{"corr_id":"last"}'), { msgID: 'last' });
    await vi.waitFor(() => expect(core.seen.at(-1)).toEqual([DECISION_SUBJECT, 'last']), { timeout: 5_000, interval: 10 });
    core.stop();
    // The core subscriber saw each decision and each channel copy once, as the stream stored it.
    expect(core.seen).toEqual([
      [DECISION_SUBJECT, 'dup-1'],
      [channelSubject('ops'), channelMsgId('dup-1', 'ops')],
      [DECISION_SUBJECT, 'fresh-1'],
      [channelSubject('ops'), channelMsgId('fresh-1', 'ops')],
      [DECISION_SUBJECT, 'last'],
    ]);

    expect(closed).toEqual([
      { corrId: 'dup-1', outcome: 'published' },
      { corrId: 'fresh-1', outcome: 'published' },
    ]);
    expect(await redis.get(keys.done('dup-1'))).toBe('published|momentum,risk');
    expect(await counter(metrics, { kind: 'decision' })).toBe(1);
    expect(await counter(metrics, { kind: 'channel' })).toBe(1);
    // What the stream holds for dup-1 is the first copy, once; fresh-1 is stored once as usual.
    expect((await stored(STORED_DECISION_SUBJECT)).map((m) => [m.id, m.body.includes('previous owner')])).toEqual([
      ['dup-1', true],
      ['fresh-1', false],
      ['last', false],
    ]);
    expect((await stored(storedChannelSubject('ops'))).map((m) => m.id)).toEqual([channelMsgId('dup-1', 'ops'), channelMsgId('fresh-1', 'ops')]);
    expect(emitter.unpublishedCount).toBe(0);
  });
});

describe('publish retry', () => {
  it('a decision the full stream refuses is retried with growing delays, shown by the gauge and a stuck line, and published once when the stream takes it again', async () => {
    // Full: a size limit below one decision, discard new.
    await jsm.streams.update(STREAM, { max_bytes: 64 });
    const base = 40;
    const cap = 320;
    const { emitter, metrics, lines, attempts, closed } = setup({ retryDelayMs: base, maxRetryDelayMs: cap });
    const gauge = async () => (await metrics.decisionsUnpublished.get()).values[0]?.value;

    await emitter.emit([job('stuck-1')]);
    expect(emitter.unpublishedCount).toBe(1);
    expect(await gauge()).toBe(1);
    expect(closed).toEqual([]);
    expect(lines.some((l) => l.includes('decision publish failed; will retry') && l.includes('stuck-1'))).toBe(true);

    // After several retries, the "stuck" line: its interval (30 s) passes on the clock the emitter reads.
    await vi.waitFor(() => expect(attempts.length).toBeGreaterThanOrEqual(6), { timeout: 10_000, interval: 20 });
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 31_000);
    const triesBefore = attempts.length;
    await vi.waitFor(() => expect(attempts.length).toBeGreaterThan(triesBefore + 1), { timeout: 10_000, interval: 20 });
    vi.restoreAllMocks();
    const stuck = lines.find((l) => l.includes('decisions stuck unpublished; retrying with backoff'));
    expect(stuck).toBeDefined();
    expect(JSON.parse(stuck!)).toMatchObject({ level: 'error', unpublished: 1 });
    expect(await gauge()).toBe(1);
    expect(await redis.get(keys.done('stuck-1'))).toMatch(/^pending\|4\|w1\|/);

    // The stream takes decisions again: the next retry publishes it, once.
    await jsm.streams.update(STREAM, { max_bytes: 1024 * 1024 });
    await emitter.idle();
    expect(closed).toEqual([{ corrId: 'stuck-1', outcome: 'published' }]);
    expect(await gauge()).toBe(0);
    expect(emitter.unpublishedCount).toBe(0);
    expect((await stored(STORED_DECISION_SUBJECT)).map((m) => m.id)).toEqual(['stuck-1']);
    expect(await redis.get(keys.done('stuck-1'))).toBe('published|momentum,risk');
    expect(lines.some((l) => l.includes('decision publishes succeed again'))).toBe(true);
    expect((await metrics.publishFailures.get()).values[0]?.value).toBe(attempts.length - 1);

    // The delays grew: base, 2 base, 4 base ... up to the cap (lower bounds only: a loaded machine is late, never early).
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    const expected = gaps.map((_, i) => Math.min(base * 2 ** i, cap));
    console.log(`[figure] publish retry gaps: ${gaps.map(Math.round).join(", ")} ms`);
    gaps.slice(0, 5).forEach((gap, i) => expect(gap, `gap ${i}: ${gaps.map(Math.round).join(', ')} ms`).toBeGreaterThanOrEqual(expected[i]! - 5));
  });
});
