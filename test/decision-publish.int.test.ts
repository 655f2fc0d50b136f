import { Redis } from 'ioredis';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisKeys, STORED_DECISION_SUBJECT, signalSubject } from '@at-orchestrator/contracts';
import { memoryLogger } from '@at-orchestrator/runtime';
import { OrchestratorWorker } from '@at-orchestrator/worker';
import { DecisionLog, Stack, workerMetric } from './helpers/stack.js';

// A worker's decisions and what JetStream answers (docs/security.md, "Decision ids" and "Streams that
// fill up"): a PubAck saying "duplicate" is checked and counted; a decision the full stream refuses
// is retried, shown on /health and the gauge, and published once when the stream has room again.

const enc = new TextEncoder();
const PREFIX = 'dp';
const momentum = (corrId: string) => JSON.stringify({ corr_id: corrId, agent_name: 'momentum', analysis: { momentum_strength: 0.4, confidence: 0.9, trend_direction: 'up' } });
const risk = (corrId: string) => JSON.stringify({ corr_id: corrId, agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 1 } } });

let stack: Stack;
let worker: OrchestratorWorker;
let lines: string[];
let jsm: JetStreamManager;
let redis: Redis;

beforeAll(async () => {
  stack = await Stack.start();
  jsm = await jetstreamManager(stack.nc);
  redis = new Redis(stack.redis.url);
  const logger = memoryLogger('info');
  lines = logger.lines;
  worker = new OrchestratorWorker({ config: stack.config({ REDIS_KEY_PREFIX: PREFIX }), log: logger.log, http: false, ownership: 'self' });
  await worker.start();
}, 60_000);

afterAll(async () => {
  await worker?.close();
  redis?.disconnect();
  await stack?.stop();
});

async function decide(corrId: string): Promise<void> {
  await stack.js.publish(signalSubject('momentum'), enc.encode(momentum(corrId)));
  await stack.js.publish(signalSubject('risk'), enc.encode(risk(corrId)));
}

/** Messages the decisions stream holds on orchestrator.decided.decision with this Nats-Msg-Id. */
async function storedWithId(id: string): Promise<string[]> {
  const info = await jsm.streams.info('orchestrated');
  const out: string[] = [];
  for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage('orchestrated', { seq });
    if (m !== null && m.subject === STORED_DECISION_SUBJECT && m.header?.get('Nats-Msg-Id') === id) out.push(m.string());
  }
  return out;
}

describe('a worker publishing decisions', () => {
  it('a decision whose Nats-Msg-Id JetStream already holds (published by a previous owner) is marked published and counted as a duplicate ack', async () => {
    await stack.js.publish(STORED_DECISION_SUBJECT, enc.encode('{"corr_id":"dup-1","from":"a previous owner"}'), { msgID: 'dup-1' });
    await decide('dup-1');
    const keys = new RedisKeys(PREFIX);
    await vi.waitFor(async () => expect(await redis.get(keys.done('dup-1'))).toBe('published|momentum,risk'), { timeout: 10_000 });
    expect(await workerMetric(worker, 'orchestrator_publish_duplicate_acks_total', { kind: 'decision' })).toBe(1);
    expect(await workerMetric(worker, 'orchestrator_decisions_made_total')).toBe(1);
    expect(await storedWithId('dup-1')).toEqual(['{"corr_id":"dup-1","from":"a previous owner"}']);
    // Its signals are acked: nothing waits for redelivery.
    await vi.waitFor(async () => expect((await jsm.consumers.info(stack.config().nats.stream, stack.config().nats.durable)).num_ack_pending).toBe(0));
  });

  it('a decision the full decisions stream refuses is retried, shown on /health and the gauge, and published once when the stream has room', async () => {
    // Full: discard new (as the worker creates it) and a size limit below one decision.
    await jsm.streams.purge('orchestrated');
    const { config } = await jsm.streams.info('orchestrated');
    await jsm.streams.update('orchestrated', { ...config, max_bytes: 64 });
    const decisions = new DecisionLog(stack.js, 'full-');
    await decisions.start();

    await decide('full-1');
    await vi.waitFor(async () => expect(await workerMetric(worker, 'orchestrator_decisions_unpublished')).toBe(1), { timeout: 10_000, interval: 50 });
    expect((worker.health().bounds as Record<string, { used: number }>).unpublished_decisions!.used).toBe(1);
    expect(lines.some((l) => l.includes('decision publish failed; will retry') && l.includes('full-1'))).toBe(true);
    const failures = await workerMetric(worker, 'orchestrator_publish_failures_total');
    await vi.waitFor(async () => expect(await workerMetric(worker, 'orchestrator_publish_failures_total')).toBeGreaterThan(failures), { timeout: 10_000, interval: 50 });
    expect(decisions.count).toBe(0);

    await jsm.streams.update('orchestrated', { ...config });
    await decisions.waitFor(1, 30_000);
    await vi.waitFor(async () => expect(await workerMetric(worker, 'orchestrator_decisions_unpublished')).toBe(0));
    expect((worker.health().bounds as Record<string, { used: number }>).unpublished_decisions!.used).toBe(0);
    expect(lines.some((l) => l.includes('decision publishes succeed again'))).toBe(true);
    expect(await storedWithId('full-1')).toHaveLength(1);
    expect(decisions.duplicates()).toEqual([]);
    decisions.stop();
  }, 60_000);
});
