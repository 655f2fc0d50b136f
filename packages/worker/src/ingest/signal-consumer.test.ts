import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { QueuedIteratorImpl } from '@nats-io/nats-core/internal';
import { memoryLogger } from '@at-orchestrator/runtime';
import { describe, expect, it } from 'vitest';
import { PULL_EXPIRES_MS, pullExpiryFor, SignalConsumer } from './signal-consumer.js';

describe('pullExpiryFor', () => {
  it('keeps pull requests short in a NATS cluster, where only missed heartbeats reveal a lost consumer leader', () => {
    expect(pullExpiryFor({ cluster: 'orchestrator-bus' })).toBe(5_000);
    expect(PULL_EXPIRES_MS.cluster).toBe(5_000);
  });

  it("uses nats.js's 30 s on a single server (no cluster in its INFO), whose heartbeats cost it CPU per message", () => {
    expect(pullExpiryFor({})).toBe(30_000);
    expect(pullExpiryFor({ cluster: '' })).toBe(30_000);
    expect(pullExpiryFor(undefined)).toBe(30_000);
  });
});

/** The consumer's messages as nats.js delivers them: its own queued iterator, which counts what is buffered. */
function fakeConsumer(): { js: JetStreamClient; messages: QueuedIteratorImpl<JsMsg> & { close: () => Promise<void> } } {
  const messages = Object.assign(new QueuedIteratorImpl<JsMsg>(), {
    close: async () => {
      messages.stop();
    },
  });
  const js = { consumers: { get: async () => ({ consume: async () => messages }) } } as unknown as JetStreamClient;
  return { js, messages };
}

const msg = (seq: number): JsMsg => ({ seq }) as unknown as JsMsg;

describe('SignalConsumer batches', () => {
  function start(handle: (batch: JsMsg[]) => Promise<void>) {
    const { js, messages } = fakeConsumer();
    const consumer = new SignalConsumer({ js, stream: 's', durable: 'd', maxInFlight: 256, maxBatch: 100, log: memoryLogger().log, handle, capacity: () => undefined });
    consumer.start();
    return { consumer, messages };
  }

  it('hands a lone message over before the event loop turns (no setImmediate hop on the decision path)', async () => {
    const events: string[] = [];
    let handled!: () => void;
    const done = new Promise<void>((r) => (handled = r));
    const { consumer, messages } = start(async (batch) => {
      events.push(`batch ${batch.map((m) => m.seq).join(',')}`);
      handled();
    });
    await new Promise((r) => setImmediate(r)); // the consumer is iterating
    messages.push(msg(1));
    setImmediate(() => events.push('event loop turned'));
    await done;
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual(['batch 1', 'event loop turned']);
    await consumer.stop();
  });

  it('puts every message already received into one batch', async () => {
    const batches: number[][] = [];
    const { consumer, messages } = start(async (batch) => {
      batches.push(batch.map((m) => m.seq));
    });
    await new Promise((r) => setImmediate(r));
    for (let i = 1; i <= 5; i += 1) messages.push(msg(i)); // one socket read's worth, parsed at once
    await new Promise((r) => setImmediate(r));
    messages.push(msg(6));
    await consumer.stop();
    expect(batches).toEqual([[1, 2, 3, 4, 5], [6]]);
  });
});
