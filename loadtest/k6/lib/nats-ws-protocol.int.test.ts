import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { NatsServer } from '@at-orchestrator/local-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { seededRandom } from '../../shared/synthetic.js';
import { headerValue, NatsSession, utf8Decode, type NatsMessage, type PubAck } from './nats-ws-protocol.js';

/**
 * The protocol code the k6 scripts use, run against a real nats-server's WebSocket listener through
 * Node's `ws` (the same bytes k6's WebSocket would carry).
 */

interface Opened {
  readonly session: NatsSession;
  readonly ws: WebSocket;
  readonly errors: Error[];
  framesOut: number;
  framesIn: number;
}

/**
 * Opens a session. With `chop`, every outgoing write is cut into random pieces sent as separate
 * WebSocket frames, and every incoming frame is re-cut at random points before the parser sees it.
 */
async function open(url: string, chop?: () => number): Promise<Opened> {
  const ws = new WebSocket(url);
  ws.binaryType = 'nodebuffer';
  const errors: Error[] = [];
  let onConnect: () => void = () => undefined;
  const connected = new Promise<void>((resolve) => (onConnect = resolve));
  const piece = (max: number): number => 1 + Math.floor((chop?.() ?? 0) * max);
  const opened: Opened = {
    ws,
    errors,
    framesOut: 0,
    framesIn: 0,
    session: new NatsSession(
      {
        send: (bytes) => {
          if (chop === undefined) {
            opened.framesOut += 1;
            ws.send(bytes);
            return;
          }
          for (let at = 0; at < bytes.length; ) {
            const n = piece(40);
            ws.send(bytes.subarray(at, at + n));
            opened.framesOut += 1;
            at += n;
          }
        },
        close: () => ws.close(1000),
      },
      { name: 'nats-ws-protocol.int.test', onConnect: () => onConnect(), onError: (e) => errors.push(e) },
    ),
  };
  ws.on('message', (data: Buffer) => {
    opened.framesIn += 1;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (chop === undefined) {
      opened.session.receive(bytes);
      return;
    }
    for (let at = 0; at < bytes.length; ) {
      const n = piece(60);
      opened.session.receive(bytes.subarray(at, at + n));
      at += n;
    }
  });
  ws.on('error', (e) => errors.push(e));
  await connected;
  return opened;
}

function flushed(session: NatsSession): Promise<void> {
  return new Promise((resolve) => session.flush(resolve));
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function jsPublish(session: NatsSession, subject: string, payload: string, msgId?: string): Promise<PubAck> {
  return new Promise((resolve) =>
    session.jetstreamPublish(subject, payload, { ...(msgId === undefined ? {} : { msgId }), nowMs: Date.now() }, resolve),
  );
}

describe('NATS protocol over WebSocket against nats-server', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let wsUrl: string;
  const opened: Opened[] = [];

  beforeAll(async () => {
    server = await NatsServer.start({ websocket: true });
    wsUrl = server.wsUrl!;
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'trading-events', subjects: ['signals.enriched.>'], duplicate_window: 60_000_000_000 });
  });

  afterAll(async () => {
    for (const o of opened) o.session.close();
    await nc?.close();
    await server?.dispose();
  });

  async function session(chop?: () => number): Promise<Opened> {
    const o = await open(wsUrl, chop);
    opened.push(o);
    return o;
  }

  it('connects: INFO, CONNECT, PING/PONG', async () => {
    const { session: s, errors } = await session();
    expect(s.state).toBe('connected');
    expect(String(s.info?.version)).toMatch(/^2\./);
    expect(s.info?.headers).toBe(true);
    expect(errors).toEqual([]);
  });

  it('receives MSG and HMSG published by a TCP client: small bursts (several per frame), headers, a large payload', async () => {
    const o = await session();
    const got: NatsMessage[] = [];
    o.session.subscribe('orchestrated.>', (m) => got.push(m));
    await flushed(o.session);
    const framesBefore = o.framesIn;
    for (let i = 0; i < 500; i += 1) nc.publish('orchestrated.decision', JSON.stringify({ corr_id: `c${i}`, n: i }));
    const h = natsHeaders();
    h.set('Nats-Msg-Id', 'c-1');
    nc.publish('orchestrated.audit', 'with headers', { headers: h, reply: 'reply.to' });
    const big = 'x'.repeat(200_000) + 'é';
    nc.publish('orchestrated.big', big);
    await nc.flush();
    await until(() => got.length === 502);
    expect(got.slice(0, 500).map((m) => (JSON.parse(utf8Decode(m.data)) as { n: number }).n)).toEqual([...Array(500).keys()]);
    // Coalescing is the server's choice; with 500 messages published at once it always packs some together.
    expect(o.framesIn - framesBefore).toBeLessThan(502);
    const withHeaders = got[500]!;
    expect(withHeaders.subject).toBe('orchestrated.audit');
    expect(withHeaders.reply).toBe('reply.to');
    expect(headerValue(withHeaders.headers, 'Nats-Msg-Id')).toBe('c-1');
    expect(utf8Decode(withHeaders.data)).toBe('with headers');
    expect(utf8Decode(got[501]!.data)).toBe(big);
    expect(o.errors).toEqual([]);
  });

  it('publishes to JetStream with HPUB and Nats-Msg-Id: PubAck, duplicate detection, no stream → 503', async () => {
    const { session: s } = await session();
    const first = await jsPublish(s, 'signals.enriched.momentum', '{"corr_id":"a"}', 'a:momentum');
    expect(first).toMatchObject({ ok: true, stream: 'trading-events', duplicate: false });
    const again = await jsPublish(s, 'signals.enriched.momentum', '{"corr_id":"a"}', 'a:momentum');
    expect(again).toMatchObject({ ok: true, duplicate: true });
    const nowhere = await jsPublish(s, 'no.stream.here', 'x');
    expect(nowhere).toEqual({ ok: false, error: expect.stringMatching(/no responders/) });
    if (!first.ok) throw new Error('unreachable');
    const stored = await jsm.streams.getMessage('trading-events', { seq: first.seq });
    expect(stored?.header.get('Nats-Msg-Id')).toBe('a:momentum');
    expect(stored?.string()).toBe('{"corr_id":"a"}');
  });

  it.each([1, 2, 3, 4, 5])('frames cut at random byte boundaries both ways (seed %i): every publish acked, every message intact', async (seed) => {
    const o = await session(seededRandom(seed));
    const received: string[] = [];
    o.session.subscribe(`signals.enriched.fuzz${seed}`, (m) => received.push(utf8Decode(m.data)));
    await flushed(o.session);
    const bodies = Array.from({ length: 200 }, (_, i) => JSON.stringify({ corr_id: `f${seed}-${i}`, text: 'ünïcödé €😀'.repeat(i % 7) }));
    const acks = await Promise.all(bodies.map((b, i) => jsPublish(o.session, `signals.enriched.fuzz${seed}`, b, `f${seed}-${i}`)));
    expect(acks.every((a) => a.ok && !a.duplicate)).toBe(true);
    await until(() => received.length === bodies.length);
    expect(received).toEqual(bodies);
    expect(o.framesOut).toBeGreaterThan(400);
    expect(o.errors).toEqual([]);
  });
});
