import { AckPolicy, DeliverPolicy, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { signalSubject, type DeadLetter } from '@at-orchestrator/contracts';
import { Registry, memoryLogger } from '@at-orchestrator/runtime';
import { OrchestratorWorker, WorkerMetrics } from '@at-orchestrator/worker';
import { DeadLetterPublisher, MaxDeliveriesWatch } from '@at-orchestrator/worker/internal';
import { CliProcess, DecisionLog, Stack, startWorker, workerMetric } from './helpers/stack.js';

const enc = new TextEncoder();
const momentum = (corrId: string, agent = 'momentum') => JSON.stringify({ corr_id: corrId, agent_name: agent, analysis: { momentum_strength: 0.4, confidence: 0.9, trend_direction: 'up' } });
const risk = (corrId: string) => JSON.stringify({ corr_id: corrId, agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 2 } } });
const other = (corrId: string, agent: string) => JSON.stringify({ corr_id: corrId, agent_name: agent, analysis: { score: 1 } });

let stack: Stack;
let worker: OrchestratorWorker;

/** Every dead letter stored so far, with its stream sequence. */
async function letters(): Promise<Array<DeadLetter & { seq: number }>> {
  const jsm = await jetstreamManager(stack.nc);
  const info = await jsm.streams.info('orchestrator-dlq');
  const out: Array<DeadLetter & { seq: number }> = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage('orchestrator-dlq', { seq });
    if (m !== null) out.push({ ...m.json<DeadLetter>(), seq });
  }
  return out;
}

async function letterFor(reason: string, corrId: string): Promise<DeadLetter & { seq: number }> {
  let found: (DeadLetter & { seq: number }) | undefined;
  await vi.waitFor(async () => {
    found = (await letters()).find((l) => l.reason === reason && l.corr_id === corrId);
    expect(found).toBeDefined();
  }, { timeout: 10_000, interval: 50 });
  return found!;
}

beforeAll(async () => {
  stack = await Stack.start();
  worker = await startWorker(
    stack.config({ ALLOWED_AGENTS: 'momentum,risk,correlation,sentiment', MAX_AGENTS_PER_CORRELATION: '3', MAX_AGENT_LABELS: '1', DECISION_TIMEOUT_SEC: '2', REQUIRED_AGENTS: 'momentum,risk', MIN_AGENTS_REQUIRED: '3' }),
  );
}, 60_000);

afterAll(async () => {
  await worker?.close();
  await stack?.stop();
});

describe('ingest checks', () => {
  it('a signal whose agent_name differs from its subject goes to the DLQ as agent_mismatch, acked, and the correlation is still decided', async () => {
    const decisions = new DecisionLog(stack.js, 'mm-');
    await decisions.start();
    await stack.js.publish(signalSubject('risk'), enc.encode(momentum('mm-1')));
    const letter = await letterFor('agent_mismatch', 'mm-1');
    expect(letter.subject).toBe('signals.enriched.risk');
    expect(Buffer.from(letter.payload_b64, 'base64').toString()).toBe(momentum('mm-1'));
    await stack.js.publish(signalSubject('momentum'), enc.encode(momentum('mm-1')));
    await stack.js.publish(signalSubject('risk'), enc.encode(risk('mm-1')));
    await decisions.waitFor(1, 10_000);
    decisions.stop();
  });

  it('an agent outside ALLOWED_AGENTS goes to the DLQ as agent_not_allowed', async () => {
    await stack.js.publish(signalSubject('intruder'), enc.encode(other('na-1', 'intruder')));
    const letter = await letterFor('agent_not_allowed', 'na-1');
    expect(letter.detail).toMatch(/intruder is not in ALLOWED_AGENTS/);
  });

  it('one agent more than MAX_AGENTS_PER_CORRELATION goes to the DLQ as too_many_agents; the correlation keeps its first agents', async () => {
    const decisions = new DecisionLog(stack.js, 'tm-');
    await decisions.start();
    // MIN_AGENTS_REQUIRED=3 keeps it open; the fourth agent is one too many.
    await stack.js.publish(signalSubject('momentum'), enc.encode(momentum('tm-1')));
    await stack.js.publish(signalSubject('correlation'), enc.encode(other('tm-1', 'correlation')));
    await stack.js.publish(signalSubject('sentiment'), enc.encode(other('tm-1', 'sentiment')));
    await stack.js.publish(signalSubject('risk'), enc.encode(risk('tm-1')));
    const letter = await letterFor('too_many_agents', 'tm-1');
    expect(letter.subject).toBe('signals.enriched.risk');
    await decisions.waitFor(1, 10_000);
    expect(decisions.byCorr.get('tm-1')![0]!.agents_present.sort()).toEqual(['correlation', 'momentum', 'sentiment']);
    decisions.stop();
  });

  it('agent label values: the allowed agents by name, a refused agent never becomes a label', async () => {
    const labelled = async () => {
      const m = (await worker.registry.getMetricsAsJSON()).find((x) => x.name === 'orchestrator_signals_received_total');
      return new Set((m?.values ?? []).map((v) => String(v.labels.agent)));
    };
    // Unknown agents beyond MAX_AGENT_LABELS count as "other": packages/worker/src/pipeline/bounds.test.ts.
    await vi.waitFor(async () => expect(await labelled()).toEqual(new Set(['momentum', 'risk', 'correlation', 'sentiment'])));
  });

  it('/health shows how full each bound is', () => {
    const bounds = worker.health().bounds as Record<string, { used: number; max?: number }>;
    expect(bounds.open_correlations!.max).toBe(50_000);
    expect(bounds.unsynced_done_markers).toEqual({ used: 0, max: 50_000 });
  });
});

describe('at-orchestrator dlq', () => {
  it('lists dead letters by reason and re-drives a chosen one to its original subject, where it is decided', async () => {
    const env = stack.env();
    const all = await CliProcess.run(env, ['dlq', 'list', '--json']);
    expect(all.code).toBe(0);
    const listed = JSON.parse(all.stdout) as Array<{ seq: number; reason: string; subject: string }>;
    expect(new Set(listed.map((l) => l.reason))).toEqual(new Set(['agent_mismatch', 'agent_not_allowed', 'too_many_agents']));
    const one = await CliProcess.run(env, ['dlq', 'list', '--reason', 'agent_not_allowed']);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/agent_not_allowed\s+signals\.enriched\.intruder\s+na-1/);
    expect(one.stdout).not.toMatch(/agent_mismatch/);

    // A too_many_agents letter of a decided correlation, re-driven, arrives late: recorded, not decided again.
    // The agent_mismatch one is re-driven to its original subject and dead-lettered again (same cause):
    // what matters here is that it went back to signals.enriched.risk.
    const mismatch = listed.find((l) => l.reason === 'agent_mismatch')!;
    const before = await workerMetric(worker, 'orchestrator_dlq_total', { reason: 'agent_mismatch' });
    const redriven = await CliProcess.run(env, ['dlq', 'redrive', String(mismatch.seq)]);
    expect(redriven.code).toBe(0);
    expect(redriven.stdout).toMatch(new RegExp(`redriven ${mismatch.seq} \\(agent_mismatch\\) -> signals\\.enriched\\.risk`));
    await vi.waitFor(async () => expect(await workerMetric(worker, 'orchestrator_dlq_total', { reason: 'agent_mismatch' })).toBe(before + 1));

    const missing = await CliProcess.run(env, ['dlq', 'redrive', '999999']);
    expect(missing.code).toBe(3);
    expect(missing.output.join('\n')).toMatch(/no dead letter at sequence 999999/);
    const usage = await CliProcess.run(env, ['dlq', 'redrive', 'x']);
    expect(usage.code).toBe(2);
  }, 60_000);
});

describe('poison messages and large letters', () => {
  it('a message past MAX_DELIVER reaches the DLQ with reason max_deliver (through the advisory)', async () => {
    // A second durable with max_deliver 2 whose messages nobody acks, watched as the worker watches its own.
    // (The worker's durable takes the same signal and decides it: no letter of its own to collide with.)
    const jsm = await jetstreamManager(stack.nc);
    const stream = stack.config().nats.stream;
    await jsm.consumers.add(stream, { durable_name: 'poison', ack_policy: AckPolicy.Explicit, ack_wait: 500_000_000, max_deliver: 2, deliver_policy: DeliverPolicy.New, filter_subject: 'signals.enriched.momentum' });
    const log = memoryLogger('silent').log;
    const dlq = new DeadLetterPublisher(stack.js, new WorkerMetrics(new Registry()), log, 'test', () => 1024 * 1024);
    const watch = new MaxDeliveriesWatch({ nc: stack.nc, stream, durable: 'poison', maxDeliver: 2, dlq, log });
    await watch.start();
    await stack.js.publish(signalSubject('momentum'), enc.encode(momentum('poison-1')));
    const consumer = await stack.js.consumers.get(stream, 'poison');
    for (let i = 0; i < 3; i++) await consumer.next({ expires: 2_000 }); // delivered, never acked
    let letter: (DeadLetter & { seq: number }) | undefined;
    await vi.waitFor(async () => {
      letter = (await letters()).find((l) => l.reason === 'max_deliver');
      expect(letter).toBeDefined();
    }, { timeout: 10_000, interval: 50 });
    expect(letter!.subject).toBe('signals.enriched.momentum');
    expect(Buffer.from(letter!.payload_b64, 'base64').toString()).toBe(momentum('poison-1'));
    await watch.close();
  }, 30_000);

  it('a letter larger than max_payload is truncated and flagged, and stored (not refused and nak\'d forever)', async () => {
    const metrics = new WorkerMetrics(new Registry());
    const dlq = new DeadLetterPublisher(stack.js, metrics, memoryLogger('silent').log, 'test', () => 4_096);
    const payload = enc.encode('y'.repeat(20_000));
    expect(await dlq.publish({ subject: 'signals.enriched.big', data: payload, letterId: 'big-1' }, 'oversized', 'too big', 'big-1')).toBe(true);
    const letter = await letterFor('oversized', 'big-1');
    expect(letter.truncated).toBe(true);
    expect(letter.payload_bytes).toBe(20_000);
    expect(Buffer.from(letter.payload_b64, 'base64').toString()).toBe('y'.repeat(Buffer.from(letter.payload_b64, 'base64').length));
    expect(JSON.stringify(letter).length).toBeLessThan(4_096);
    const refused = await CliProcess.run(stack.env(), ['dlq', 'redrive', String(letter.seq)]);
    expect(refused.code).toBe(3);
    expect(refused.output.join('\n')).toMatch(/truncated, 20000 bytes/);
  }, 30_000);
});
