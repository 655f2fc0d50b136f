import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encode,
  encodeHeaders,
  headerValue,
  NatsProtocolError,
  NatsProtocolParser,
  NatsSession,
  parseHeaders,
  utf8Decode,
  utf8Encode,
  type NatsMessage,
  type PubAck,
  type ServerOp,
} from './nats-ws-protocol.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('utf8', () => {
  it('encodes and decodes like TextEncoder/TextDecoder for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        const ours = utf8Encode(s);
        expect(Array.from(ours)).toEqual(Array.from(bytes(s)));
        expect(utf8Decode(ours)).toBe(s);
      }),
      { numRuns: 300 },
    );
  });

  it('replaces lone surrogates and malformed bytes with U+FFFD, as the standard decoders do', () => {
    expect(Array.from(utf8Encode('a\ud800b'))).toEqual(Array.from(bytes('a\ud800b')));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (raw) => {
        expect(utf8Decode(raw)).toBe(new TextDecoder().decode(raw));
      }),
      { numRuns: 500 },
    );
  });
});

/** What nats-server would send for an op, so that the parser can be fed a byte stream. */
function serverBytes(op: ServerOp): Uint8Array {
  switch (op.op) {
    case 'INFO':
      return bytes(`INFO ${JSON.stringify(op.info)}\r\n`);
    case 'PING':
      return bytes('PING\r\n');
    case 'PONG':
      return bytes('PONG\r\n');
    case 'OK':
      return bytes('+OK\r\n');
    case 'ERR':
      return bytes(`-ERR '${op.message}'\r\n`);
    case 'MSG': {
      const reply = op.reply === undefined ? '' : ` ${op.reply}`;
      if (op.headers === undefined) {
        return concat(bytes(`MSG ${op.subject} ${op.sid}${reply} ${op.data.length}\r\n`), op.data, bytes('\r\n'));
      }
      const status = op.headers.status === undefined ? '' : ` ${op.headers.status}${op.headers.description ? ` ${op.headers.description}` : ''}`;
      let h = `NATS/1.0${status}\r\n`;
      for (const [k, vs] of Object.entries(op.headers.fields)) for (const v of vs) h += `${k}: ${v}\r\n`;
      const head = bytes(`${h}\r\n`);
      return concat(
        bytes(`HMSG ${op.subject} ${op.sid}${reply} ${head.length} ${head.length + op.data.length}\r\n`),
        head,
        op.data,
        bytes('\r\n'),
      );
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const token = fc.stringMatching(/^[A-Za-z0-9_.$>*-]{1,24}$/);
const headerName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/);
const headerValueArb = fc.stringMatching(/^[ -~]{0,30}$/).map((v) => v.trim());
const payload = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  // Payloads that look like protocol: the parser must go by the byte count, not by CRLF.
  fc.constantFrom(bytes('\r\n'), bytes('MSG a 1 3\r\nabc\r\n'), bytes('PING\r\nPONG\r\n'), bytes('é€😀')),
);

const serverOp: fc.Arbitrary<ServerOp> = fc.oneof(
  fc.record({ op: fc.constant('PING' as const) }),
  fc.record({ op: fc.constant('PONG' as const) }),
  fc.record({ op: fc.constant('OK' as const) }),
  fc.record({ op: fc.constant('ERR' as const), message: fc.stringMatching(/^[A-Za-z ]{1,30}$/) }),
  fc.record({
    op: fc.constant('INFO' as const),
    info: fc.record({ server_id: token, version: fc.constant('2.9.10'), headers: fc.boolean(), max_payload: fc.nat() }),
  }),
  fc
    .record({
      subject: token,
      sid: fc.integer({ min: 1, max: 1_000_000 }),
      reply: fc.option(token, { nil: undefined }),
      data: payload,
      headers: fc.option(
        fc.record({
          status: fc.option(fc.constantFrom(100, 404, 408, 503), { nil: undefined }),
          fields: fc.dictionary(headerName, fc.array(headerValueArb, { minLength: 1, maxLength: 2 }), { maxKeys: 3 }),
        }),
        { nil: undefined },
      ),
    })
    .map((m): ServerOp => {
      const headers =
        m.headers === undefined
          ? undefined
          : { ...(m.headers.status === undefined ? {} : { status: m.headers.status }), fields: m.headers.fields };
      return {
        op: 'MSG',
        subject: m.subject,
        sid: m.sid,
        ...(m.reply === undefined ? {} : { reply: m.reply }),
        ...(headers === undefined ? {} : { headers }),
        data: m.data,
      };
    }),
);

/** Cuts a byte stream at the given positions (sorted, deduplicated). */
function split(stream: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    parts.push(stream.subarray(prev, p));
    prev = p;
  }
  parts.push(stream.subarray(prev));
  return parts;
}

function normalise(op: ServerOp): unknown {
  if (op.op !== 'MSG') return op;
  return { ...op, data: Array.from(op.data) };
}

describe('NatsProtocolParser', () => {
  it('yields the same operations however the stream is cut into frames', () => {
    fc.assert(
      fc.property(fc.array(serverOp, { minLength: 1, maxLength: 20 }), fc.array(fc.nat(), { maxLength: 40 }), (ops, cuts) => {
        const stream = concat(...ops.map(serverBytes));
        const parser = new NatsProtocolParser();
        const seen: ServerOp[] = [];
        for (const frame of split(stream, cuts)) parser.push(frame, (op) => seen.push(op));
        expect(seen.map(normalise)).toEqual(ops.map(normalise));
        expect(parser.buffered).toBe(0);
      }),
      { numRuns: 400 },
    );
  });

  it('handles one byte per frame, and the CR and LF of a line in different frames', () => {
    const ops: ServerOp[] = [
      { op: 'INFO', info: { server_id: 'x', version: '2.9.10' } },
      { op: 'MSG', subject: 'a.b', sid: 7, reply: '_INBOX.1', data: bytes('hello\r\nworld') },
      { op: 'PING' },
    ];
    const stream = concat(...ops.map(serverBytes));
    const parser = new NatsProtocolParser();
    const seen: ServerOp[] = [];
    for (let i = 0; i < stream.length; i += 1) parser.push(stream.subarray(i, i + 1), (op) => seen.push(op));
    expect(seen.map(normalise)).toEqual(ops.map(normalise));
  });

  it('joins a large payload once, and copies it out of the caller\'s buffer', () => {
    const big = new Uint8Array(300_000).map((_, i) => i % 251);
    const stream = serverBytes({ op: 'MSG', subject: 'big', sid: 1, data: big });
    const parser = new NatsProtocolParser();
    const seen: NatsMessage[] = [];
    const frame = new Uint8Array(1000);
    for (let at = 0; at < stream.length; at += 1000) {
      const part = stream.subarray(at, at + 1000);
      frame.set(part);
      parser.push(frame.subarray(0, part.length), (op) => op.op === 'MSG' && seen.push(op));
      frame.fill(0); // the "transport" reuses its buffer
    }
    expect(seen).toHaveLength(1);
    expect(Buffer.compare(Buffer.from(seen[0]!.data), Buffer.from(big))).toBe(0);
  });

  it('parses status headers (no responders) and header fields case-insensitively', () => {
    const h = parseHeaders(bytes('NATS/1.0 503 No Responders\r\nNats-Msg-Id: a\r\nX: 1\r\nX: 2\r\n\r\n'));
    expect(h.status).toBe(503);
    expect(h.description).toBe('No Responders');
    expect(headerValue(h, 'nats-msg-id')).toBe('a');
    expect(h.fields.X).toEqual(['1', '2']);
  });

  it('rejects what is not the NATS protocol', () => {
    const parser = new NatsProtocolParser();
    expect(() => parser.push(bytes('HTTP/1.1 400 Bad Request\r\n'), () => undefined)).toThrow(NatsProtocolError);
    const p2 = new NatsProtocolParser();
    expect(() => p2.push(bytes('MSG a 1 3\r\nabcXY'), () => undefined)).toThrow(/not followed by CRLF/);
  });
});

describe('encode', () => {
  it('counts payload bytes, not characters', () => {
    expect(text(encode.pub('s', 'é€'))).toBe('PUB s 5\r\né€\r\n');
    expect(text(encode.pub('s', '', 'r'))).toBe('PUB s r 0\r\n\r\n');
  });

  it('HPUB: header and total sizes include the header block', () => {
    const out = text(encode.hpub('signals.enriched.risk', { 'Nats-Msg-Id': 'c1:risk' }, '{}', '_INBOX.x.1'));
    const head = 'NATS/1.0\r\nNats-Msg-Id: c1:risk\r\n\r\n';
    expect(out).toBe(`HPUB signals.enriched.risk _INBOX.x.1 ${head.length} ${head.length + 2}\r\n${head}{}\r\n`);
  });

  it('SUB, UNSUB, CONNECT', () => {
    expect(text(encode.sub('orchestrated.decision', 3))).toBe('SUB orchestrated.decision 3\r\n');
    expect(text(encode.sub('a', 4, 'q'))).toBe('SUB a q 4\r\n');
    expect(text(encode.unsub(4, 10))).toBe('UNSUB 4 10\r\n');
    const connect = JSON.parse(text(encode.connect({ name: 'k6' })).slice('CONNECT '.length)) as Record<string, unknown>;
    expect(connect).toMatchObject({ verbose: false, headers: true, no_responders: true, protocol: 1, name: 'k6' });
  });

  it('refuses subjects with spaces and header values with line breaks', () => {
    expect(() => encode.pub('a b', 'x')).toThrow(NatsProtocolError);
    expect(() => encodeHeaders({ A: 'x\r\ny' })).toThrow(NatsProtocolError);
  });
});

describe('NatsSession', () => {
  function harness() {
    const sent: string[] = [];
    let closed = 0;
    const errors: Error[] = [];
    let connected = 0;
    const session = new NatsSession(
      { send: (b) => sent.push(text(b)), close: () => (closed += 1) },
      { name: 't', inboxPrefix: '_INBOX.T', onConnect: () => (connected += 1), onError: (e) => errors.push(e) },
    );
    const feed = (s: string): void => session.receive(bytes(s));
    return { session, sent, feed, errors, closed: () => closed, connected: () => connected };
  }

  it('answers INFO with CONNECT and PING, and is connected at the PONG', () => {
    const h = harness();
    expect(() => h.session.publish('a', 'x')).toThrow(/INFO/);
    h.feed('INFO {"server_id":"s","version":"2.9.10","headers":true}\r\n');
    expect(h.sent[0]).toMatch(/^CONNECT \{/);
    expect(h.sent[1]).toBe('PING\r\n');
    expect(h.session.state).toBe('connecting');
    h.feed('PONG\r\n');
    expect(h.session.state).toBe('connected');
    expect(h.connected()).toBe(1);
  });

  it('answers the server\'s PING with PONG and delivers messages to their subscription', () => {
    const h = harness();
    h.feed('INFO {}\r\nPONG\r\n');
    const got: string[] = [];
    const sid = h.session.subscribe('orchestrated.decision', (m) => got.push(text(m.data)));
    h.feed(`PING\r\nMSG orchestrated.decision ${sid} 2\r\n{}\r\nMSG other 99 1\r\nx\r\n`);
    expect(h.sent).toContain('PONG\r\n');
    expect(got).toEqual(['{}']);
  });

  it('JetStream publish: HPUB with Nats-Msg-Id and a reply inbox; the PubAck, a 503 and expiry reach the callback', () => {
    const h = harness();
    h.feed('INFO {}\r\nPONG\r\n');
    const acks: PubAck[] = [];
    h.session.jetstreamPublish('signals.enriched.risk', '{"a":1}', { msgId: 'c1:risk', nowMs: 0 }, (a) => acks.push(a));
    h.session.jetstreamPublish('nowhere', 'x', { nowMs: 0 }, (a) => acks.push(a));
    h.session.jetstreamPublish('slow', 'x', { nowMs: 0 }, (a) => acks.push(a));
    expect(h.sent.find((s) => s.startsWith('SUB _INBOX.T.* '))).toBeDefined();
    const hpub = h.sent.find((s) => s.startsWith('HPUB signals.enriched.risk _INBOX.T.1 '));
    expect(hpub).toContain('Nats-Msg-Id: c1:risk\r\n');
    expect(h.sent.find((s) => s.startsWith('PUB nowhere _INBOX.T.2 1'))).toBeDefined();
    const ack = '{"stream":"trading-events","seq":5,"duplicate":true}';
    const noResp = 'NATS/1.0 503\r\n\r\n';
    h.feed(`MSG _INBOX.T.1 1 ${ack.length}\r\n${ack}\r\nHMSG _INBOX.T.2 1 ${noResp.length} ${noResp.length}\r\n${noResp}\r\n`);
    expect(acks).toEqual([
      { ok: true, stream: 'trading-events', seq: 5, duplicate: true },
      { ok: false, error: expect.stringMatching(/no responders/) },
    ]);
    expect(h.session.pendingAcks).toBe(1);
    expect(h.session.expirePubAcks(100, 1000)).toBe(0);
    expect(h.session.expirePubAcks(1000, 1000)).toBe(1);
    expect(acks[2]).toEqual({ ok: false, error: 'no PubAck within 1000 ms' });
  });

  it('closes on a protocol error and fails awaited PubAcks; close is idempotent', () => {
    const h = harness();
    h.feed('INFO {}\r\nPONG\r\n');
    const acks: PubAck[] = [];
    h.session.jetstreamPublish('a', 'x', { nowMs: 0 }, (a) => acks.push(a));
    h.feed('GARBAGE\r\n');
    expect(h.session.state).toBe('closed');
    expect(h.errors[0]).toBeInstanceOf(NatsProtocolError);
    expect(acks).toEqual([{ ok: false, error: 'connection closed' }]);
    h.session.close();
    expect(h.closed()).toBe(1);
  });
});
