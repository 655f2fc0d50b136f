import fc from 'fast-check';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { ClusterSubjects, ForwardReply, parseSignal, partitionOf, signalSubject, type DeadLetter, type ForwardRequest } from '@at-orchestrator/contracts';
import { ControlSealer } from '@at-orchestrator/runtime';
import { CliProcess, DecisionLog, Stack, TEST_CLUSTER_SECRET } from './helpers/stack.js';

// Arbitrary bytes and arbitrary JSON never crash a worker nor stall a partition (issue "Production
// trust", done-when). A real worker process (with its embedded coordinator, so it owns every
// partition and serves its forward subject) receives fuzzed forwarded batches sealed with the cluster
// secret as a peer worker would send them, unsealed and garbage requests, and fuzzed signals through
// JetStream. Afterwards it is healthy, every bad signal is in the DLQ with the reason the oracle
// (the same checks, computed here) expects, and one fresh correlation per partition is decided once.

const P = 8;
const MAX_BYTES = 1024;
const ALLOWED = ['momentum', 'risk', 'alpha'];
const BATCHES = 200;
const PEER = 'fuzz-peer';
const WORKER = 'fz';
const enc = new TextEncoder();
const dec = new TextDecoder();

let stack: Stack;
let worker: CliProcess;

beforeAll(async () => {
  stack = await Stack.start();
  worker = await CliProcess.started(
    stack.env({ WORKER_ID: WORKER, PARTITIONS: String(P), MAX_SIGNAL_BYTES: String(MAX_BYTES), ALLOWED_AGENTS: ALLOWED.join(','), DECISION_TIMEOUT_SEC: '2', REDIS_KEY_PREFIX: 'fz', LOG_LEVEL: 'warn' }),
  );
  await vi.waitFor(async () => expect((await health()).partitions_owned).toBe(P), { timeout: 30_000, interval: 100 });
}, 60_000);

afterAll(async () => {
  if (worker !== undefined && worker.exitCode === undefined) {
    worker.kill('SIGTERM');
    await worker.exited();
  }
  await stack?.stop();
});

async function http(path: '/health' | '/metrics'): Promise<Response> {
  const line = worker.output.find((l) => l.includes('"http_port"'));
  if (line === undefined) throw new Error('worker did not log its http_port');
  return fetch(`http://127.0.0.1:${(JSON.parse(line) as { http_port: number }).http_port}${path}`);
}
const health = async () => (await (await http('/health')).json()) as { status: string; partitions_owned: number; state: string };

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  let sum = 0;
  for (const line of (await (await http('/metrics')).text()).split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** What the owner must do with one signal: take it in, or dead-letter it with this reason (the oracle). */
function expected(subject: string, payload: string, partition: number | undefined): 'good' | string {
  const parsed = parseSignal(enc.encode(payload), MAX_BYTES);
  if (!parsed.ok) return parsed.reason;
  const agent = parsed.signal.agent_name;
  if (subject !== signalSubject(agent)) return 'agent_mismatch';
  if (!ALLOWED.includes(agent)) return 'agent_not_allowed';
  if (partition !== undefined && partition !== partitionOf(parsed.signal.corr_id, P)) return 'partition_mismatch';
  return 'good';
}

const analysisOf = (agent: string) =>
  agent === 'momentum'
    ? fc.oneof({ weight: 4, arbitrary: fc.record({ momentum_strength: fc.double({ min: -1, max: 1, noNaN: true }), confidence: fc.double({ min: 0, max: 1, noNaN: true }), trend_direction: fc.constantFrom('up', 'down') }) }, { weight: 1, arbitrary: fc.jsonValue() })
    : agent === 'risk'
      ? fc.oneof({ weight: 4, arbitrary: fc.record({ risk_level: fc.constantFrom('low', 'medium', 'high', 'blocked', 'extreme'), position_sizing: fc.record({ recommended_size: fc.double({ min: 0, max: 10, noNaN: true }) }) }) }, { weight: 1, arbitrary: fc.jsonValue() })
      : fc.oneof({ weight: 4, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }) }, { weight: 1, arbitrary: fc.jsonValue() });

/** An agent name as a subject token: mostly known, sometimes anything a token can be. */
const agentToken = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('momentum', 'risk', 'alpha') }, { weight: 1, arbitrary: fc.constant('intruder') }, { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,11}$/) });

/** One fuzzed signal: a subject, a payload (valid, wrong agent, not JSON, any JSON, oversized, cut) and an item index for unique corr_ids. */
const fuzzedSignal = (tag: string) =>
  fc
    .record({ agent: agentToken, subjectAgent: fc.oneof({ weight: 5, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: agentToken }), corrPrefix: fc.oneof({ weight: 6, arbitrary: fc.stringMatching(/^[\x21-\x7e]{0,20}$/) }, { weight: 1, arbitrary: fc.string({ maxLength: 20 }) }) })
    .chain(({ agent, subjectAgent, corrPrefix }) => {
      const corrId = `${corrPrefix.replace(/\s/g, '')}${tag}`;
      const valid = analysisOf(agent).map((analysis) => JSON.stringify({ corr_id: corrId, agent_name: agent, analysis }));
      const payload = fc.oneof(
        { weight: 6, arbitrary: valid },
        { weight: 1, arbitrary: valid.map((v) => `${v.slice(0, -1)},"pad":"${'x'.repeat(MAX_BYTES)}"}`) },
        { weight: 1, arbitrary: fc.tuple(valid, fc.nat()).map(([v, n]) => v.slice(0, n % v.length)) },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
        { weight: 1, arbitrary: fc.string({ maxLength: 64 }) },
        { weight: 1, arbitrary: fc.record({ corr_id: fc.jsonValue({ maxDepth: 1 }), agent_name: fc.constant(agent), analysis: fc.constant({}) }).map((v) => JSON.stringify(v)) },
      );
      return fc.record({ subject: fc.constant(signalSubject(subjectAgent ?? agent)), payload, corrId: fc.constant(corrId) });
    });

/** A forwarded item: its partition usually as a sender computes it, sometimes any integer. */
const fuzzedItem = (tag: string) =>
  fc.tuple(fuzzedSignal(tag), fc.oneof({ weight: 7, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.oneof(fc.integer({ min: -3, max: P + 3 }), fc.integer()) })).map(([s, forced]) => ({
    subject: s.subject,
    payload: s.payload,
    partition: forced ?? partitionOf(s.corrId, P),
  }));

/** Letters in the DLQ, as (subject, payload) → reasons. */
async function lettersByContent(): Promise<Map<string, Set<string>>> {
  const jsm = await jetstreamManager(stack.nc);
  const stream = stack.config().nats.dlqStream;
  const info = await jsm.streams.info(stream);
  const out = new Map<string, Set<string>>();
  for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m === null) continue;
    const l = m.json<DeadLetter>();
    const key = `${l.subject}\n${l.payload_b64}`;
    if (!out.has(key)) out.set(key, new Set());
    out.get(key)!.add(l.reason);
  }
  return out;
}
const contentKey = (subject: string, payload: string) => `${subject}\n${Buffer.from(enc.encode(payload)).toString('base64')}`;

it(`${BATCHES} fuzzed forwarded batches (sealed, unsealed, garbage) and fuzzed JetStream signals: the worker stays healthy, bad signals are dead-lettered with their reason, every partition still decides`, async () => {
  const sealer = new ControlSealer([TEST_CLUSTER_SECRET], PEER);
  const subject = ClusterSubjects.forward(WORKER);
  const expectedBad: Array<{ key: string; reason: string }> = [];
  const counts = { sealed: 0, good: 0, bad: 0, unsigned: 0, senderMismatch: 0, garbage: 0, jetstream: 0 };
  // Each item's corr_id ends in a random tag of its own, so that no two fuzzed signals share a correlation.
  const item = fc.integer({ min: 0, max: 2 ** 31 - 1 }).chain((n) => fuzzedItem(`.${n}`));
  const samples = fc.sample(fc.array(item, { minLength: 1, maxLength: 8 }), { numRuns: BATCHES, seed: 12 });

  for (const [b, signals] of samples.entries()) {
    const req: ForwardRequest = { from: PEER, signals };
    const body = enc.encode(JSON.stringify(req));
    switch (b % 10) {
      case 7: {
        // Unsealed: refused before it is read, never answered.
        stack.nc.publish(subject, body, { reply: `_INBOX.fuzz.${b}` });
        counts.unsigned += 1;
        continue;
      }
      case 8: {
        // Sealed by a genuine key but claiming another sender in its body.
        const forged = enc.encode(JSON.stringify({ ...req, from: 'someone-else' }));
        stack.nc.publish(subject, forged, { headers: sealer.seal('forward', subject, forged), reply: `_INBOX.fuzz.${b}` });
        counts.senderMismatch += 1;
        continue;
      }
      case 9: {
        // Sealed garbage: bytes that are no request at all (unanswered, logged).
        const garbage = b % 20 === 9 ? fc.sample(fc.uint8Array({ maxLength: 256 }), { numRuns: 1, seed: b })[0]! : enc.encode(JSON.stringify(fc.sample(fc.jsonValue({ maxDepth: 3 }), { numRuns: 1, seed: b })[0]));
        stack.nc.publish(subject, garbage, { headers: sealer.seal('forward', subject, garbage), reply: `_INBOX.fuzz.${b}` });
        counts.garbage += 1;
        continue;
      }
    }
    const reply = ForwardReply.parse((await stack.nc.request(subject, body, { timeout: 10_000, headers: sealer.seal('forward', subject, body) })).json());
    counts.sealed += 1;
    expect(reply.verdicts).toHaveLength(signals.length);
    signals.forEach((s, i) => {
      const want = expected(s.subject, s.payload, s.partition);
      if (want === 'good') {
        counts.good += 1;
        expect(['stored', 'held'], `good ${JSON.stringify(s)}`).toContain(reply.verdicts[i]);
      } else {
        counts.bad += 1;
        // Dead-lettered and answered so that the sender acks it (not redelivered forever).
        expect(reply.verdicts[i], `${want} ${JSON.stringify(s)}`).toBe('stored');
        expectedBad.push({ key: contentKey(s.subject, s.payload), reason: want });
      }
    });
  }

  // Fuzzed signals through JetStream too, on any agent's subject.
  const published = fc.sample(fc.integer({ min: 0, max: 2 ** 31 - 1 }).chain((n) => fuzzedSignal(`.js${n}`)), { numRuns: BATCHES, seed: 34 });
  for (const s of published) {
    await stack.js.publish(s.subject, enc.encode(s.payload));
    counts.jetstream += 1;
    const want = expected(s.subject, s.payload, undefined);
    if (want !== 'good') expectedBad.push({ key: contentKey(s.subject, s.payload), reason: want });
  }
  console.log(`[figure] forward fuzz: ${JSON.stringify(counts)}, ${expectedBad.length} bad signals expected in the DLQ`);
  expect(counts.good).toBeGreaterThan(50);
  expect(counts.bad).toBeGreaterThan(50);
  expect(new Set(expectedBad.map((e) => e.reason))).toEqual(new Set(['oversized', 'not_json', 'no_corr_id', 'schema', 'agent_mismatch', 'agent_not_allowed', 'partition_mismatch']));

  // Every partition still decides: one fresh correlation each, through JetStream, decided once.
  const decisions = new DecisionLog(stack.js, 'after-');
  await decisions.start();
  const finals = new Map<number, string>();
  for (let i = 0; finals.size < P; i++) if (!finals.has(partitionOf(`after-${i}`, P))) finals.set(partitionOf(`after-${i}`, P), `after-${i}`);
  for (const corrId of finals.values()) {
    await stack.js.publish(signalSubject('momentum'), enc.encode(JSON.stringify({ corr_id: corrId, agent_name: 'momentum', analysis: { momentum_strength: 0.5, confidence: 0.9, trend_direction: 'up' } })));
    await stack.js.publish(signalSubject('risk'), enc.encode(JSON.stringify({ corr_id: corrId, agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 1 } } })));
  }
  await decisions.waitFor(P, 30_000);
  expect([...decisions.byCorr.keys()].sort()).toEqual([...finals.values()].sort());
  expect(decisions.duplicates()).toEqual([]);
  decisions.stop();

  // Still healthy, still owning every partition; the unsealed and mis-sent requests counted.
  expect(worker.exitCode).toBeUndefined();
  expect(await health()).toMatchObject({ status: 'healthy', state: 'running', partitions_owned: P });
  expect(await metric('orchestrator_control_refused_total', { kind: 'forward', reason: 'unsigned' })).toBe(counts.unsigned);
  expect(await metric('orchestrator_control_refused_total', { kind: 'forward', reason: 'sender_mismatch' })).toBe(counts.senderMismatch);
  expect(worker.output.some((l) => l.includes('malformed forward request'))).toBe(true);

  // Every bad signal is in the DLQ with the reason the oracle gives.
  let letters = new Map<string, Set<string>>();
  await vi.waitFor(
    async () => {
      letters = await lettersByContent();
      const missing = expectedBad.filter((e) => letters.get(e.key)?.has(e.reason) !== true);
      expect(missing.slice(0, 3).map((m) => `${m.reason}: ${dec.decode(Buffer.from(m.key.split('\n')[1]!, 'base64')).slice(0, 200)}`)).toEqual([]);
    },
    { timeout: 20_000, interval: 250 },
  );
  console.log(`[figure] forward fuzz: ${letters.size} distinct dead letters`);
}, 90_000);
