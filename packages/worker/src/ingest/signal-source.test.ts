import type { JsMsg } from '@nats-io/jetstream';
import { describe, expect, it, vi } from 'vitest';
import { AckBatch, jetStreamSource } from './signal-source.js';

const message = () => ({ ack: vi.fn(), nak: vi.fn() }) as unknown as JsMsg & { ack: ReturnType<typeof vi.fn>; nak: ReturnType<typeof vi.fn> };

describe('jetStreamSource and AckBatch', () => {
  it('without a batch, acks at once', () => {
    const msg = message();
    jetStreamSource(msg).ack();
    expect(msg.ack).toHaveBeenCalledOnce();
  });

  it('with a batch, an ack waits for the next flush (a decision publish) and is written then, once', () => {
    const acks = new AckBatch();
    const [a, b] = [message(), message()];
    jetStreamSource(a, acks).ack();
    jetStreamSource(b, acks).ack();
    expect(a.ack).not.toHaveBeenCalled();
    acks.flush();
    expect([a.ack.mock.calls.length, b.ack.mock.calls.length]).toEqual([1, 1]);
    acks.flush();
    expect(a.ack).toHaveBeenCalledOnce();
  });

  it('with no publish in the turn, the acks go out at its end (setImmediate), never later', async () => {
    const acks = new AckBatch();
    const msg = message();
    jetStreamSource(msg, acks).ack();
    await Promise.resolve();
    expect(msg.ack).not.toHaveBeenCalled();
    await new Promise((resolve) => setImmediate(resolve));
    expect(msg.ack).toHaveBeenCalledOnce();
    // A later ack schedules its own end-of-turn flush.
    const later = message();
    jetStreamSource(later, acks).ack();
    await new Promise((resolve) => setImmediate(resolve));
    expect(later.ack).toHaveBeenCalledOnce();
  });

  it('naks and holds are never batched', () => {
    const acks = new AckBatch();
    const msg = message();
    const source = jetStreamSource(msg, acks);
    source.nak(250);
    source.hold();
    expect(msg.nak.mock.calls).toEqual([[250], [1_000]]);
    expect(source.holdable).toBe(true);
  });
});
