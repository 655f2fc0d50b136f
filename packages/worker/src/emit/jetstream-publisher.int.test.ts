import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DiscardPolicy, JetStreamApiError, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { ClosedConnectionError, NoRespondersError, TimeoutError, type Msg, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { NatsServer } from '@at-orchestrator/local-servers';
import { JetStreamPublisher, jetStreamClientPublisher } from './jetstream-publisher.js';

// The publisher that replaces js.publish on the emit path, against a real nats-server (2.9.10 here):
// the same PubAck, the same rejections, its one timer and its close, and many publishes in flight.

const enc = new TextEncoder();

let nats: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let n = 0;
/** This test's subject namespace and stream name. */
let ns: string;

beforeAll(async () => {
  nats = await NatsServer.start();
  nc = await connect({ servers: nats.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});
beforeEach(() => {
  ns = `pub${++n}`;
});

async function addStream(config: Partial<StreamConfig> = {}): Promise<string> {
  await jsm.streams.add({ name: ns, subjects: [`${ns}.>`], ...config });
  return ns;
}

/** A core subscriber that keeps what it receives and answers nothing (or what `answer` says). */
async function coreSubscriber(subject: string, answer?: (m: Msg) => Uint8Array | string | undefined): Promise<Msg[]> {
  const seen: Msg[] = [];
  nc.subscribe(subject, {
    callback: (_err, m) => {
      seen.push(m);
      const reply = answer?.(m);
      if (reply !== undefined) m.respond(reply);
    },
  });
  await nc.flush();
  return seen;
}

/** How long `p` took to reject, and with what. */
async function rejection(p: Promise<unknown>): Promise<{ err: Error; ms: number }> {
  const t0 = performance.now();
  try {
    await p;
  } catch (err) {
    return { err: err as Error, ms: performance.now() - t0 };
  }
  throw new Error('resolved; a rejection was expected');
}

describe('PubAck', () => {
  it('resolves with the stream and sequence, as js.publish does', async () => {
    const stream = await addStream();
    const pub = new JetStreamPublisher(nc);
    expect(await pub.publish(`${ns}.a`, enc.encode('one'), 'id-1')).toEqual({ stream, seq: 1, duplicate: false });
    expect(await pub.publish(`${ns}.b`, enc.encode('two'), 'id-2')).toEqual({ stream, seq: 2, duplicate: false });
    // The JetStream client's answer has the same shape.
    expect(await jetStreamClientPublisher(js).publish(`${ns}.a`, enc.encode('three'), 'id-3')).toEqual({ stream, seq: 3, duplicate: false });
    expect(pub.pendingCount).toBe(0);
    pub.close();
  });

  it('a second publish with the same msgId answers duplicate: true with the first sequence, and the stream holds one message', async () => {
    const stream = await addStream({ duplicate_window: 60_000_000_000 });
    const pub = new JetStreamPublisher(nc);
    expect(await pub.publish(`${ns}.a`, enc.encode('first'), 'same')).toEqual({ stream, seq: 1, duplicate: false });
    expect(await pub.publish(`${ns}.a`, enc.encode('again'), 'same')).toEqual({ stream, seq: 1, duplicate: true });
    expect(await jetStreamClientPublisher(js).publish(`${ns}.a`, enc.encode('again'), 'same')).toEqual({ stream, seq: 1, duplicate: true });
    const info = await jsm.streams.info(stream);
    expect(info.state.messages).toBe(1);
    expect((await jsm.streams.getMessage(stream, { seq: 1 }))?.string()).toBe('first');
    pub.close();
  });

  it('the Nats-Msg-Id header and the bytes arrive on the stored message; replies come under the configured inbox prefix', async () => {
    const stream = await addStream();
    const prefixed = await connect({ servers: nats.url, inboxPrefix: 'custom_inbox' });
    const seen = await coreSubscriber(`${ns}.>`);
    const pub = new JetStreamPublisher(prefixed);
    const ack = await pub.publish(`${ns}.h`, enc.encode('{"corr_id":"c-1"}'), 'c-1');
    const stored = await jsm.streams.getMessage(stream, { seq: ack.seq });
    expect(stored?.header.get('Nats-Msg-Id')).toBe('c-1');
    expect(stored?.string()).toBe('{"corr_id":"c-1"}');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.reply).toMatch(/^custom_inbox\.[A-Za-z0-9]+\.0$/);
    pub.close();
    await prefixed.close();
  });

  it('2,000 concurrent publishes all resolve, each with its own sequence', async () => {
    const stream = await addStream();
    const pub = new JetStreamPublisher(nc);
    const acks = await Promise.all(Array.from({ length: 2_000 }, (_, i) => pub.publish(`${ns}.${i % 7}`, enc.encode(`m${i}`), `id-${i}`)));
    const seqs = new Set(acks.map((a) => a.seq));
    expect(seqs.size).toBe(2_000);
    expect(Math.min(...seqs)).toBe(1);
    expect(Math.max(...seqs)).toBe(2_000);
    expect(acks.every((a) => a.stream === stream && !a.duplicate)).toBe(true);
    expect((await jsm.streams.info(stream)).state.messages).toBe(2_000);
    // Each ack is its own message's: the stored copy at its seq carries its msgId.
    const probe = acks[1_234]!;
    expect((await jsm.streams.getMessage(stream, { seq: probe.seq }))?.header.get('Nats-Msg-Id')).toBe('id-1234');
    expect(pub.pendingCount).toBe(0);
    pub.close();
  });
});

describe('rejections', () => {
  it('a subject no stream takes rejects at once with "no responders", long before the timeout', async () => {
    const pub = new JetStreamPublisher(nc);
    const { err, ms } = await rejection(pub.publish(`${ns}.nostream`, enc.encode('x'), 'id-1'));
    expect(err.message).toContain(`no responders on '${ns}.nostream'`);
    expect(err.cause).toBeInstanceOf(NoRespondersError);
    expect(ms).toBeLessThan(1_000);
    expect(pub.pendingCount).toBe(0);
    pub.close();
  });

  it('a stream error reply rejects with a JetStreamApiError naming its description and codes, as js.publish does', async () => {
    const stream = await addStream({ max_msgs: 1, discard: DiscardPolicy.New });
    const pub = new JetStreamPublisher(nc);
    await pub.publish(`${ns}.a`, enc.encode('fits'), 'id-1');
    const { err } = await rejection(pub.publish(`${ns}.a`, enc.encode('does not'), 'id-2'));
    const { err: theirs } = await rejection(js.publish(`${ns}.a`, enc.encode('does not'), { msgID: 'id-3' }));
    expect(theirs).toBeInstanceOf(JetStreamApiError);
    expect(err).toBeInstanceOf(JetStreamApiError);
    const [ours, client] = [err as JetStreamApiError, theirs as JetStreamApiError];
    expect([ours.code, ours.status]).toEqual([client.code, client.status]);
    expect(ours.message).toBe(`${client.message} (status ${client.status}, err_code ${client.code})`);
    expect(ours.message).toMatch(/^maximum messages exceeded \(status 503, err_code 10077\)$/);
    expect((await jsm.streams.info(stream)).state.messages).toBe(1);
    pub.close();
  });

  it('an empty, a malformed or a stream-less reply rejects', async () => {
    const answers: Record<string, string> = { empty: '', text: 'not json', nostream: '{"stream":"","seq":1}', number: '42' };
    await coreSubscriber(`${ns}.fake`, (m) => answers[m.headers!.get('Nats-Msg-Id')]);
    const pub = new JetStreamPublisher(nc);
    const messages = await Promise.all(Object.keys(answers).map(async (id) => [id, (await rejection(pub.publish(`${ns}.fake`, enc.encode('x'), id))).err.message]));
    expect(Object.fromEntries(messages)).toEqual({
      empty: `empty PubAck reply for '${ns}.fake'`,
      text: `malformed PubAck reply for '${ns}.fake'`,
      nostream: 'invalid ack response',
      number: `malformed PubAck reply for '${ns}.fake'`,
    });
    pub.close();
  });

  it('no reply rejects after the timeout, each publish after its own; a late reply is ignored and never answers another publish', async () => {
    const seen = await coreSubscriber(`${ns}.silent`);
    const timeoutMs = 400;
    const pub = new JetStreamPublisher(nc, { timeoutMs });
    // Three publishes 150 ms apart: one timer, re-armed for each deadline (not a timeout later).
    const late: Array<Promise<{ err: Error; ms: number }>> = [];
    for (let i = 0; i < 3; i++) {
      late.push(rejection(pub.publish(`${ns}.silent`, enc.encode('x'), `late-${i}`)));
      if (i < 2) await new Promise((r) => setTimeout(r, 150));
    }
    const outcomes = await Promise.all(late);
    for (const { err, ms } of outcomes) {
      expect(err).toBeInstanceOf(TimeoutError);
      expect(err.message).toBe(`timeout: no PubAck for '${ns}.silent' in ${timeoutMs} ms`);
      expect(ms).toBeGreaterThanOrEqual(timeoutMs - 2);
      expect(ms, outcomes.map((o) => Math.round(o.ms)).join(', ')).toBeLessThan(timeoutMs + 200);
    }
    expect(pub.pendingCount).toBe(0);

    // A fourth publish is pending when the first one's ack arrives late, then its own.
    const next = pub.publish(`${ns}.silent`, enc.encode('x'), 'next');
    await nc.flush();
    expect(seen).toHaveLength(4);
    seen[0]!.respond(enc.encode('{"stream":"late","seq":1}'));
    await nc.flush();
    expect(pub.pendingCount).toBe(1);
    seen[3]!.respond(enc.encode('{"stream":"own","seq":7}'));
    expect(await next).toEqual({ stream: 'own', seq: 7, duplicate: false });
    pub.close();
  });
});

describe('close', () => {
  it('close() rejects what is pending and every later publish; it is idempotent', async () => {
    await coreSubscriber(`${ns}.silent`);
    const pub = new JetStreamPublisher(nc);
    const pending = [rejection(pub.publish(`${ns}.silent`, enc.encode('x'), 'a')), rejection(pub.publish(`${ns}.silent`, enc.encode('x'), 'b'))];
    await nc.flush();
    expect(pub.pendingCount).toBe(2);
    pub.close();
    pub.close();
    for (const { err, ms } of await Promise.all(pending)) {
      expect(err.message).toBe('JetStreamPublisher closed');
      expect(ms).toBeLessThan(1_000);
    }
    expect(pub.pendingCount).toBe(0);
    expect((await rejection(pub.publish(`${ns}.silent`, enc.encode('x'), 'c'))).err.message).toBe('JetStreamPublisher closed');
  });

  it('the connection closing rejects what is pending and every later publish', async () => {
    await coreSubscriber(`${ns}.silent`);
    const own = await connect({ servers: nats.url });
    const pub = new JetStreamPublisher(own);
    const pending = rejection(pub.publish(`${ns}.silent`, enc.encode('x'), 'a'));
    await own.flush();
    await own.close();
    const { err, ms } = await pending;
    expect(err).toBeInstanceOf(ClosedConnectionError);
    expect(ms).toBeLessThan(1_000);
    expect((await rejection(pub.publish(`${ns}.silent`, enc.encode('x'), 'b'))).err).toBeInstanceOf(ClosedConnectionError);
    pub.close();
  });

  it('a publish the connection refuses at once (payload above max_payload) rejects and leaves nothing pending', async () => {
    await addStream();
    const pub = new JetStreamPublisher(nc);
    const big = new Uint8Array(nc.info!.max_payload + 1);
    const { err } = await rejection(pub.publish(`${ns}.a`, big, 'big'));
    expect(err.message).toMatch(/max_payload/);
    expect(pub.pendingCount).toBe(0);
    expect((await pub.publish(`${ns}.a`, enc.encode('fits'), 'ok')).seq).toBe(1);
    pub.close();
  });
});
