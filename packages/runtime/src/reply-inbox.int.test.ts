import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NoRespondersError, TimeoutError, headers, type Msg, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { NatsServer } from '@at-orchestrator/local-servers';
import { ReplyInbox } from './reply-inbox.js';

// ReplyInbox against a real nats-server: what a request resolves to, how it fails, and that one
// subscription serves every request. (JetStreamPublisher's and SignalForwarder's tests cover it too,
// through their own replies.)

const enc = new TextEncoder();
const dec = new TextDecoder();

let nats: NatsServer;
let nc: NatsConnection;
let n = 0;

beforeAll(async () => {
  nats = await NatsServer.start();
  nc = await connect({ servers: nats.url, inboxPrefix: '_R.test' });
});
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

/** A responder on a fresh subject that answers with `answer(msg)` (or not at all when undefined). */
async function responder(answer: (m: Msg) => string | undefined): Promise<string> {
  const subject = `svc.${++n}`;
  nc.subscribe(subject, {
    callback: (_err, m) => {
      const reply = answer(m);
      if (reply !== undefined) m.respond(enc.encode(reply));
    },
  });
  await nc.flush();
  return subject;
}

const text = (m: Msg): string => dec.decode(m.data);

describe('ReplyInbox', () => {
  it('matches each reply to its own request, with many in flight and answered out of order', async () => {
    const held: Msg[] = [];
    const subject = await responder((m) => {
      held.push(m);
      return undefined;
    });
    const inbox = new ReplyInbox(nc, { timeoutMs: 5_000 });
    const requests = Array.from({ length: 50 }, (_, i) => inbox.request(subject, enc.encode(`q${i}`), undefined, text));
    await nc.flush();
    while (held.length < 50) await new Promise((r) => setTimeout(r, 5));
    // Answered last first, each with its question's own text.
    for (const m of [...held].reverse()) m.respond(enc.encode(`a:${dec.decode(m.data)}`));

    expect(await Promise.all(requests)).toEqual(Array.from({ length: 50 }, (_, i) => `a:q${i}`));
    expect(inbox.pendingCount).toBe(0);
    // Every reply subject is under the connection's inbox prefix, and unique.
    expect(new Set(held.map((m) => m.reply)).size).toBe(50);
    for (const m of held) expect(m.reply!.startsWith('_R.test.')).toBe(true);
    inbox.close();
  });

  it('sends the headers given and resolves to what interpret makes of the reply', async () => {
    const subject = await responder((m) => `${m.headers?.get('X-Who') ?? 'nobody'}`);
    const inbox = new ReplyInbox(nc, { timeoutMs: 2_000 });
    const h = headers();
    h.set('X-Who', 'worker-7');
    expect(await inbox.request(subject, enc.encode(''), h, (r) => ({ said: text(r) }))).toEqual({ said: 'worker-7' });
    inbox.close();
  });

  it('rejects with the Error interpret returns or throws, and goes on serving', async () => {
    const subject = await responder((m) => text(m));
    const inbox = new ReplyInbox(nc, { timeoutMs: 2_000 });
    const refuse = (r: Msg): string | Error => (text(r) === 'bad' ? new Error('refused: bad') : text(r));
    const explode = (): string => {
      throw new Error('interpret blew up');
    };
    await expect(inbox.request(subject, enc.encode('bad'), undefined, refuse)).rejects.toThrow('refused: bad');
    await expect(inbox.request(subject, enc.encode('x'), undefined, explode)).rejects.toThrow('interpret blew up');
    expect(await inbox.request(subject, enc.encode('good'), undefined, refuse)).toBe('good');
    expect(inbox.pendingCount).toBe(0);
    inbox.close();
  });

  it('rejects at once when nobody listens (nats-server\'s 503 "no responders"), with NoRespondersError or the error given', async () => {
    const inbox = new ReplyInbox(nc, { timeoutMs: 5_000 });
    const named = new ReplyInbox(nc, { timeoutMs: 5_000, noResponders: (s) => new Error(`nobody on ${s}`) });
    const subject = `nobody.listens.${++n}`;
    let interpreted = 0;
    const count = (r: Msg): Msg => (interpreted++, r);
    const started = performance.now();
    const err = await inbox.request(subject, enc.encode('?'), undefined, count).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoRespondersError);
    await expect(named.request(subject, enc.encode('?'), undefined, count)).rejects.toThrow(`nobody on ${subject}`);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(interpreted).toBe(0);
    inbox.close();
    named.close();
  });

  it('times out with a TimeoutError in its own words; a reply after that is dropped', async () => {
    let late: Msg | undefined;
    const subject = await responder((m) => {
      late = m;
      return undefined;
    });
    const inbox = new ReplyInbox(nc, { timeoutMs: 150, timeoutMessage: (s, ms) => `no answer on ${s} within ${ms} ms` });
    const err = await inbox.request(subject, enc.encode('?'), undefined, text).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toBe(`no answer on ${subject} within 150 ms`);
    expect(inbox.pendingCount).toBe(0);

    // The late answer must not settle the next request.
    const first = late!;
    const next = inbox.request(subject, enc.encode('again'), undefined, text);
    first.respond(enc.encode('late'));
    await nc.flush();
    while (late === first) await new Promise((r) => setTimeout(r, 5));
    const second = late!;
    expect(dec.decode(second.data)).toBe('again');
    second.respond(enc.encode('on time'));
    expect(await next).toBe('on time');
    inbox.close();
  });

  it('close() rejects what is pending and every later request with the closed error', async () => {
    const subject = await responder(() => undefined);
    const inbox = new ReplyInbox(nc, { timeoutMs: 5_000, closedError: () => new Error('inbox gone') });
    const pending = inbox.request(subject, enc.encode('?'), undefined, text);
    inbox.close();
    inbox.close();
    await expect(pending).rejects.toThrow('inbox gone');
    await expect(inbox.request(subject, enc.encode('?'), undefined, text)).rejects.toThrow('inbox gone');
  });

  it('refuses a timeout that is not above 0', () => {
    expect(() => new ReplyInbox(nc, { timeoutMs: 0 })).toThrow('timeoutMs must be above 0, got 0');
  });
});
