import { headers, type MsgHdrs } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import { ControlRefusals } from './control-refusals.js';
import { ControlSealer, ControlVerifier, SealHeaders, keyId } from './control-seal.js';
import { memoryLogger } from './logger.js';
import { Registry } from './metrics.js';

const OLD = 'old-secret-0123456789';
const NEW = 'new-secret-0123456789';
const SUBJECT = 'orchestrator.ctl.worker.w1';
const body = (text: string): Uint8Array => new TextEncoder().encode(text);
const BODY = body('{"type":"shutdown","leader_epoch":7}');

/** A copy of sealed headers with one of them changed. */
function altered(h: MsgHdrs, name: string, value: string): MsgHdrs {
  const copy = headers();
  for (const [k, v] of h) copy.set(k, k === name ? value : (v[0] ?? ''));
  return copy;
}

function clock(start = 1_800_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('ControlSealer / ControlVerifier', () => {
  it('a sealed message verifies once, with the sender it names', () => {
    const sealer = new ControlSealer([NEW], 'coord-1');
    const verifier = new ControlVerifier([NEW]);
    const h = sealer.seal('worker-command', SUBJECT, BODY);
    expect(h.get(SealHeaders.keyId)).toBe(keyId(NEW));
    expect(h.get(SealHeaders.mac)).toMatch(/^[0-9a-f]{64}$/);
    expect(verifier.verify('worker-command', SUBJECT, h, BODY)).toEqual({ ok: true, sender: 'coord-1' });
    expect(verifier.verify('worker-command', SUBJECT, h, BODY)).toEqual({ ok: false, reason: 'replay', sender: 'coord-1' });
  });

  it.each([
    ['the body', (h: MsgHdrs) => ({ h, kind: 'worker-command' as const, subject: SUBJECT, b: body('{"type":"shutdown","leader_epoch":9000000000000000}') })],
    ['the subject (a command for w1 replayed to w2)', (h: MsgHdrs) => ({ h, kind: 'worker-command' as const, subject: 'orchestrator.ctl.worker.w2', b: BODY })],
    ['the kind', (h: MsgHdrs) => ({ h, kind: 'assignment' as const, subject: SUBJECT, b: BODY })],
    ['the sender', (h: MsgHdrs) => ({ h: altered(h, SealHeaders.sender, 'coord-2'), kind: 'worker-command' as const, subject: SUBJECT, b: BODY })],
    ['the sequence', (h: MsgHdrs) => ({ h: altered(h, SealHeaders.seq, String(Number(h.get(SealHeaders.seq)) + 1)), kind: 'worker-command' as const, subject: SUBJECT, b: BODY })],
    ['the timestamp', (h: MsgHdrs) => ({ h: altered(h, SealHeaders.ts, String(Number(h.get(SealHeaders.ts)) + 1)), kind: 'worker-command' as const, subject: SUBJECT, b: BODY })],
    ['the MAC', (h: MsgHdrs) => ({ h: altered(h, SealHeaders.mac, '0'.repeat(64)), kind: 'worker-command' as const, subject: SUBJECT, b: BODY })],
  ])('tampering with %s → bad_mac', (_what, tamper) => {
    const sealed = new ControlSealer([NEW], 'coord-1').seal('worker-command', SUBJECT, BODY);
    const { h, kind, subject, b } = tamper(sealed);
    expect(new ControlVerifier([NEW]).verify(kind, subject, h, b)).toMatchObject({ ok: false, reason: 'bad_mac' });
  });

  it('refuses unsigned, malformed and unknown-key messages', () => {
    const verifier = new ControlVerifier([NEW]);
    expect(verifier.verify('worker-command', SUBJECT, undefined, BODY)).toEqual({ ok: false, reason: 'unsigned' });
    expect(verifier.verify('worker-command', SUBJECT, headers(), BODY)).toEqual({ ok: false, reason: 'unsigned' });
    const sealed = new ControlSealer([NEW], 'coord-1').seal('worker-command', SUBJECT, BODY);
    expect(verifier.verify('worker-command', SUBJECT, altered(sealed, SealHeaders.seq, '1e99'), BODY)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verifier.verify('worker-command', SUBJECT, altered(sealed, SealHeaders.mac, 'zz'), BODY)).toMatchObject({ ok: false, reason: 'malformed' });
    const wrongKey = new ControlSealer(['somebody-elses-key-42'], 'coord-1').seal('worker-command', SUBJECT, BODY);
    expect(verifier.verify('worker-command', SUBJECT, wrongKey, BODY)).toEqual({ ok: false, reason: 'unknown_key', sender: 'coord-1' });
    // A forger who names the real key id still cannot make its MAC.
    expect(verifier.verify('worker-command', SUBJECT, altered(wrongKey, SealHeaders.keyId, keyId(NEW)), BODY)).toMatchObject({ ok: false, reason: 'bad_mac' });
    // Nothing configured: nothing verifies.
    expect(new ControlVerifier([]).verify('worker-command', SUBJECT, sealed, BODY)).toMatchObject({ ok: false, reason: 'unknown_key' });
  });

  it('refuses a timestamp more than 30 s from the receiver clock, either way', () => {
    const sender = clock();
    const receiver = clock();
    const sealer = new ControlSealer([NEW], 'coord-1', sender.now);
    const verifier = new ControlVerifier([NEW], { now: receiver.now });
    const early = sealer.seal('assignment', 'orchestrator.ctl.assignment', BODY);
    receiver.advance(30_001);
    expect(verifier.verify('assignment', 'orchestrator.ctl.assignment', early, BODY)).toMatchObject({ ok: false, reason: 'stale' });
    sender.advance(30_000 + 30_001 + 30_001);
    const ahead = sealer.seal('assignment', 'orchestrator.ctl.assignment', BODY);
    expect(verifier.verify('assignment', 'orchestrator.ctl.assignment', ahead, BODY)).toMatchObject({ ok: false, reason: 'stale' });
    sender.advance(-30_001);
    expect(verifier.verify('assignment', 'orchestrator.ctl.assignment', sealer.seal('assignment', 'orchestrator.ctl.assignment', BODY), BODY)).toMatchObject({ ok: true });
  });

  it('accepts out-of-order arrival inside the window, refuses what is at or below a full window', () => {
    const verifier = new ControlVerifier([NEW], { window: 4 });
    const sealer = new ControlSealer([NEW], 'coord-1');
    const sealed = Array.from({ length: 7 }, () => sealer.seal('forward', 'orchestrator.fwd.w1', BODY));
    const verify = (i: number) => verifier.verify('forward', 'orchestrator.fwd.w1', sealed[i], BODY).ok;
    expect([verify(1), verify(0), verify(3), verify(2)]).toEqual([true, true, true, true]);
    expect([verify(6), verify(5)]).toEqual([true, true]); // window now 2, 3, 5, 6
    expect(verify(4)).toBe(true); // above the floor, never seen: 3, 4, 5, 6
    expect(verify(1)).toBe(false); // below the floor, though never seen since it fell out
    expect(verify(3)).toBe(false); // at the floor
    expect(verify(5)).toBe(false); // seen
  });

  it('sequence numbers keep growing across a restart of the sender and are per sender', () => {
    const t = clock();
    const verifier = new ControlVerifier([NEW], { now: t.now });
    const first = new ControlSealer([NEW], 'w1', t.now);
    for (let i = 0; i < 5; i++) expect(verifier.verify('forward', 'orchestrator.fwd.w2', first.seal('forward', 'orchestrator.fwd.w2', BODY), BODY).ok).toBe(true);
    t.advance(1);
    const restarted = new ControlSealer([NEW], 'w1', t.now);
    expect(verifier.verify('forward', 'orchestrator.fwd.w2', restarted.seal('forward', 'orchestrator.fwd.w2', BODY), BODY).ok).toBe(true);
    // Another sender has its own numbers: the same sequence is no replay.
    const other = new ControlSealer([NEW], 'w3', t.now);
    expect(verifier.verify('forward', 'orchestrator.fwd.w2', other.seal('forward', 'orchestrator.fwd.w2', BODY), BODY).ok).toBe(true);
  });

  it('remembers a bounded number of senders, least recently heard from forgotten first', () => {
    const verifier = new ControlVerifier([NEW], { maxSenders: 2 });
    const a = new ControlSealer([NEW], 'a');
    const captured = a.seal('forward', 'orchestrator.fwd.w1', BODY);
    expect(verifier.verify('forward', 'orchestrator.fwd.w1', captured, BODY).ok).toBe(true);
    for (const id of ['b', 'c']) expect(verifier.verify('forward', 'orchestrator.fwd.w1', new ControlSealer([NEW], id).seal('forward', 'orchestrator.fwd.w1', BODY), BODY).ok).toBe(true);
    // "a" was forgotten (the timestamp check still bounds such a replay to 30 s).
    expect(verifier.verify('forward', 'orchestrator.fwd.w1', captured, BODY).ok).toBe(true);
    // Forgeries are not remembered: they cannot push genuine senders out.
    for (let i = 0; i < 10; i++) verifier.verify('forward', 'orchestrator.fwd.w1', new ControlSealer(['forger-key-0123456789'], `f${i}`).seal('forward', 'orchestrator.fwd.w1', BODY), BODY);
    expect(verifier.verify('forward', 'orchestrator.fwd.w1', captured, BODY)).toMatchObject({ ok: false, reason: 'replay' });
  });

  it('rollover: a verifier with the new and the old key accepts both; a sealer seals with the first', () => {
    const rolling = new ControlVerifier([NEW, OLD]);
    const oldOnly = new ControlVerifier([OLD]);
    const byOld = new ControlSealer([OLD], 'coord-old');
    const byNew = new ControlSealer([NEW, OLD], 'coord-new');
    expect(rolling.verify('assignment', 'orchestrator.ctl.assignment', byOld.seal('assignment', 'orchestrator.ctl.assignment', BODY), BODY).ok).toBe(true);
    const sealedNew = byNew.seal('assignment', 'orchestrator.ctl.assignment', BODY);
    expect(sealedNew.get(SealHeaders.keyId)).toBe(keyId(NEW));
    expect(rolling.verify('assignment', 'orchestrator.ctl.assignment', sealedNew, BODY).ok).toBe(true);
    expect(oldOnly.verify('assignment', 'orchestrator.ctl.assignment', sealedNew, BODY)).toMatchObject({ ok: false, reason: 'unknown_key' });
  });

  it('a sealer refuses to exist without a key or with a blank sender', () => {
    expect(() => new ControlSealer([], 'x')).toThrow(/needs a key/);
    expect(() => new ControlSealer([NEW], 'a b')).toThrow(/sender/);
  });
});

describe('ControlRefusals', () => {
  it('counts every refusal by kind and reason, logs each source once, and shares one counter per registry', async () => {
    const registry = new Registry();
    const { log, lines } = memoryLogger('warn');
    const refusals = new ControlRefusals(registry, log);
    const again = new ControlRefusals(registry, log); // an embedded coordinator on the worker's registry
    refusals.refuse('worker-command', 'unsigned', 'orchestrator.ctl.worker.w1');
    refusals.refuse('worker-command', 'unsigned', 'orchestrator.ctl.worker.w1');
    again.refuse('operator', 'bad_mac', 'mallory');
    const metric = await registry.getSingleMetric('orchestrator_control_refused_total')!.get();
    expect(metric.values.map((v) => [v.labels, v.value])).toEqual([
      [{ kind: 'worker-command', reason: 'unsigned' }, 2],
      [{ kind: 'operator', reason: 'bad_mac' }, 1],
    ]);
    expect(lines.filter((l) => l.includes('control message refused'))).toHaveLength(2);
    expect(lines.join('\n')).not.toMatch(/secret/);
  });
});
