import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ClusterSubjects, ForwardReply, type ForwardRequest } from '@at-orchestrator/contracts';
import { ControlRefusals, ControlSealer, Registry, memoryLogger } from '@at-orchestrator/runtime';
import { NatsServer } from '@at-orchestrator/local-servers';
import { SignalForwarder, type ForwardItem } from './forwarder.js';

let server: NatsServer;
let ownerConn: NatsConnection;
let senderConn: NatsConnection;
const opened: SignalForwarder[] = [];
let seq = 0;
const SECRET = 'forwarder-test-secret-0123';
/** Seals raw requests in these tests, as a genuine worker named "x" would. */
const asX = new ControlSealer([SECRET], 'x');

beforeAll(async () => {
  server = await NatsServer.start();
  ownerConn = await connect({ servers: server.url, name: 'owner' });
  senderConn = await connect({ servers: server.url, name: 'sender' });
});
afterAll(async () => {
  await senderConn?.close();
  await ownerConn?.close();
  await server?.dispose();
});
afterEach(() => {
  for (const f of opened.splice(0)) f.close();
});

const items = (...payloads: string[]): ForwardItem[] => payloads.map((payload, i) => ({ partition: i, subject: `signals.p${i}`, payload }));

/** An owner serving with `handle` and a sender with a short timeout, under worker ids fresh to this test. */
function pair(handle?: (req: ForwardRequest) => Promise<ForwardReply>, timeoutMs = 1_000) {
  seq += 1;
  const ownerId = `owner-${seq}`;
  const owner = memoryLogger('debug');
  const sender = memoryLogger('debug');
  const ownerMetrics = new Registry();
  const senderMetrics = new Registry();
  const serving = new SignalForwarder(ownerConn, ownerId, owner.log, { clusterSecrets: [SECRET], refusals: new ControlRefusals(ownerMetrics, owner.log) });
  const sending = new SignalForwarder(senderConn, `sender-${seq}`, sender.log, { clusterSecrets: [SECRET], refusals: new ControlRefusals(senderMetrics, sender.log) }, timeoutMs);
  opened.push(serving, sending);
  if (handle !== undefined) serving.serve(handle);
  return { ownerId, serving, sending, ownerLines: owner.lines, senderLines: sender.lines, ownerMetrics, senderMetrics };
}

/** orchestrator_control_refused_total of a registry, as `kind/reason` → count. */
async function refusals(registry: Registry): Promise<Record<string, number>> {
  const metric = registry.getSingleMetric('orchestrator_control_refused_total');
  const values = metric === undefined ? [] : (await metric.get()).values;
  return Object.fromEntries(values.map((v) => [`${String(v.labels.kind)}/${String(v.labels.reason)}`, v.value]));
}

/** A request to `subject` as worker "x" would send it: sealed. */
function sealedRequest(subject: string, body: Uint8Array, timeout: number) {
  return senderConn.request(subject, body, { timeout, headers: asX.seal('forward', subject, body) });
}

const encode = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const decode = (data: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(data));

describe('SignalForwarder', () => {
  it('answers a request with the verdicts the handler returns, one per signal, in order', async () => {
    const seen: ForwardRequest[] = [];
    const { ownerId, sending } = pair(async (req) => {
      seen.push(req);
      return { verdicts: req.signals.map((s) => (s.payload === 'kept' ? 'held' : s.payload === 'moving' ? 'retry' : 'stored')), table_version: 4 };
    });
    await ownerConn.flush();

    const verdicts = await sending.send(ownerId, items('a', 'kept', 'moving', 'b'));

    expect(verdicts).toEqual(['stored', 'held', 'retry', 'stored']);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.from).toBe(`sender-${seq}`);
    expect(seen[0]!.signals).toEqual(items('a', 'kept', 'moving', 'b'));
  });

  it('answers retry for every signal when the handler fails', async () => {
    const { ownerId, sending, ownerLines } = pair(() => Promise.reject(new Error('redis gone')));
    await ownerConn.flush();

    // The reply itself, not a timeout: the owner says "retry" at once.
    const raw = await sealedRequest(ClusterSubjects.forward(ownerId), encode({ from: 'x', signals: items('a', 'b') }), 5_000);
    expect(ForwardReply.parse(decode(raw.data)).verdicts).toEqual(['retry', 'retry']);
    expect(await sending.send(ownerId, items('a', 'b', 'c'))).toEqual(['retry', 'retry', 'retry']);
    expect(ownerLines.some((l) => l.includes('forward handler failed') && l.includes('redis gone'))).toBe(true);
  });

  it('answers retry when the handler throws synchronously, and the connection keeps serving', async () => {
    const { ownerId, sending, ownerLines } = pair(((req: { signals: unknown[] }) => {
      if (req.signals.length === 1) throw new Error('sync boom');
      return Promise.resolve({ verdicts: req.signals.map(() => 'stored' as const), table_version: 1 });
    }) as never);
    await ownerConn.flush();
    expect(await sending.send(ownerId, items('a'))).toEqual(['retry']);
    expect(ownerLines.some((l) => l.includes('forward handler failed') && l.includes('sync boom'))).toBe(true);
    expect(await sending.send(ownerId, items('a', 'b'))).toEqual(['stored', 'stored']);
  });

  it('gives a malformed request no reply and goes on serving the next good one', async () => {
    const { ownerId, sending, ownerLines } = pair(async (req) => ({ verdicts: req.signals.map(() => 'stored'), table_version: 1 }));
    await ownerConn.flush();

    const subject = ClusterSubjects.forward(ownerId);
    await expect(sealedRequest(subject, encode('not json {'), 300)).rejects.toThrow();
    await expect(sealedRequest(subject, encode({ from: 'x', signals: [{ partition: 'one' }] }), 300)).rejects.toThrow();
    expect(ownerLines.filter((l) => l.includes('malformed forward request'))).toHaveLength(2);

    expect(await sending.send(ownerId, items('a', 'b'))).toEqual(['stored', 'stored']);
  });

  it('resolves to retry for every signal when nobody serves the owner, and counts no forged reply', async () => {
    const { sending, senderLines, senderMetrics } = pair(undefined, 200);
    const started = Date.now();
    expect(await sending.send('nobody-serves-this', items('a', 'b'))).toEqual(['retry', 'retry']);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(senderLines.some((l) => l.includes('forward failed'))).toBe(true);
    // nats-server's "no responders" status is unsealed, and it is no forgery either.
    expect(await refusals(senderMetrics)).toEqual({});
  });

  it('matches each answer to its own request when many are in flight to several owners', async () => {
    const a = pair(async (req) => ({ verdicts: req.signals.map((s) => (s.payload.startsWith('keep') ? 'held' : 'stored')), table_version: 1 }));
    const b = pair(async (req) => {
      // Answered out of order: the later requests first.
      await new Promise((r) => setTimeout(r, 20 - req.signals.length));
      return { verdicts: req.signals.map(() => 'retry'), table_version: 1 };
    });
    await ownerConn.flush();
    const sends = Array.from({ length: 40 }, (_, i) =>
      i % 2 === 0 ? a.sending.send(a.ownerId, items(...Array.from({ length: 1 + (i % 7) }, (_, j) => (j % 2 === 0 ? `keep${i}` : `x${i}`)))) : a.sending.send(b.ownerId, items(...Array.from({ length: 1 + (i % 9) }, () => `y${i}`))),
    );
    const answers = await Promise.all(sends);
    answers.forEach((verdicts, i) => {
      if (i % 2 === 0) expect(verdicts).toEqual(Array.from({ length: 1 + (i % 7) }, (_, j) => (j % 2 === 0 ? 'held' : 'stored')));
      else expect(verdicts).toEqual(Array.from({ length: 1 + (i % 9) }, () => 'retry'));
    });
    expect(await refusals(a.senderMetrics)).toEqual({});
  });

  it('resolves to retry for every signal when the owner answers too late', async () => {
    let answered: Promise<void> = Promise.resolve();
    const { ownerId, sending } = pair(() => {
      const reply = new Promise<ForwardReply>((resolve) => setTimeout(() => resolve({ verdicts: ['stored'], table_version: 1 }), 600));
      answered = reply.then(() => undefined);
      return reply;
    }, 150);
    await ownerConn.flush();
    expect(await sending.send(ownerId, items('a'))).toEqual(['retry']);
    await answered; // the late answer goes out before the next test
  });

  it('resolves to retry for every signal when the reply has the wrong number of verdicts', async () => {
    const { ownerId, sending } = pair(async () => ({ verdicts: ['stored'], table_version: 1 }));
    await ownerConn.flush();
    expect(await sending.send(ownerId, items('a', 'b'))).toEqual(['retry', 'retry']);
  });

  it('resolves to retry for every signal when the reply is not a forward reply', async () => {
    seq += 1;
    const ownerId = `raw-owner-${seq}`;
    const sub = ownerConn.subscribe(ClusterSubjects.forward(ownerId), { callback: (_err, msg) => {
        msg.respond(encode({ verdicts: ['stored', 'maybe'] }));
      },
    });
    try {
      await ownerConn.flush();
      const { sending } = pair(undefined, 1_000);
      expect(await sending.send(ownerId, items('a', 'b'))).toEqual(['retry', 'retry']);
    } finally {
      sub.unsubscribe();
    }
  });

  it('stops serving after close', async () => {
    const { ownerId, serving, sending } = pair(async (req) => ({ verdicts: req.signals.map(() => 'stored'), table_version: 1 }), 200);
    await ownerConn.flush();
    expect(await sending.send(ownerId, items('a'))).toEqual(['stored']);
    serving.close();
    await ownerConn.flush();
    expect(await sending.send(ownerId, items('a'))).toEqual(['retry']);
  });
  it('serves no forward without a valid seal: unsigned, another key, replayed, or naming another worker than its from', async () => {
    let served = 0;
    const { ownerId, ownerMetrics } = pair(async (req) => {
      served += 1;
      return { verdicts: req.signals.map(() => 'stored'), table_version: 1 };
    });
    await ownerConn.flush();
    const subject = ClusterSubjects.forward(ownerId);
    const body = encode({ from: 'x', signals: items('a') });

    await expect(senderConn.request(subject, body, { timeout: 300 })).rejects.toThrow();
    const otherKey = new ControlSealer(['not-the-cluster-secret-42'], 'x');
    await expect(senderConn.request(subject, body, { timeout: 300, headers: otherKey.seal('forward', subject, body) })).rejects.toThrow();
    const genuine = asX.seal('forward', subject, body);
    const first = await senderConn.request(subject, body, { timeout: 5_000, headers: genuine });
    expect(ForwardReply.parse(decode(first.data)).verdicts).toEqual(['stored']);
    await expect(senderConn.request(subject, body, { timeout: 300, headers: genuine })).rejects.toThrow();
    const posing = encode({ from: 'someone-else', signals: items('a') });
    await expect(senderConn.request(subject, posing, { timeout: 300, headers: asX.seal('forward', subject, posing) })).rejects.toThrow();

    expect(served).toBe(1);
    expect(await refusals(ownerMetrics)).toEqual({ 'forward/unsigned': 1, 'forward/unknown_key': 1, 'forward/replay': 1, 'forward/sender_mismatch': 1 });
  });

  it('takes no verdict from a reply the owner did not seal for this request: retry for every signal, counted', async () => {
    seq += 1;
    const ownerId = `raw-owner-${seq}`;
    const impostor = new ControlSealer([SECRET], `impostor-${seq}`);
    const owner = new ControlSealer([SECRET], ownerId);
    const answers = [
      (_inbox: string, b: Uint8Array) => ({ body: b, headers: undefined }),
      (inbox: string, b: Uint8Array) => ({ body: b, headers: impostor.seal('forward-reply', inbox, b) }),
      (_inbox: string, b: Uint8Array) => ({ body: b, headers: owner.seal('forward-reply', '_INBOX.another.request', b) }),
    ];
    let n = 0;
    const sub = ownerConn.subscribe(ClusterSubjects.forward(ownerId), {
      callback: (_err, msg) => {
        const answer = answers[n++ % answers.length]!(msg.reply ?? '', encode({ verdicts: ['stored', 'stored'], table_version: 1 }));
        msg.respond(answer.body, { headers: answer.headers });
      },
    });
    try {
      await ownerConn.flush();
      const { sending, senderMetrics } = pair(undefined, 1_000);
      for (let i = 0; i < answers.length; i++) expect(await sending.send(ownerId, items('a', 'b'))).toEqual(['retry', 'retry']);
      expect(await refusals(senderMetrics)).toEqual({ 'forward-reply/unsigned': 1, 'forward-reply/sender_mismatch': 1, 'forward-reply/bad_mac': 1 });
    } finally {
      sub.unsubscribe();
    }
  });
});
