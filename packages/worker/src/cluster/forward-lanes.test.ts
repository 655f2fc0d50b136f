import { describe, expect, it, vi, type Mock } from 'vitest';
import type { ForwardReply } from '@at-orchestrator/contracts';
import { Counter, Registry, memoryLogger } from '@at-orchestrator/runtime';
import { HELD_REDELIVERY_MS, RETRY_DELAY_MS } from '../ingest/signal-source.js';
import { ForwardLanes, type Forward, type ForwardLanesOptions } from './forward-lanes.js';
import type { ForwardItem } from './forwarder.js';

type Verdicts = ForwardReply['verdicts'];

/** One request handed to the fake `send`, answered (or failed) by the test when it chooses. */
interface Request {
  owner: string;
  items: ForwardItem[];
  answer(verdicts?: Verdicts): void;
  fail(err: Error): void;
}

/** A forward whose JetStream message records how it was settled. */
function forward(partition: number, payload: string): Forward & { msg: { ack: Mock<() => void>; nak: Mock<(delayMs?: number) => void> } } {
  return { msg: { ack: vi.fn<() => void>(), nak: vi.fn<(delayMs?: number) => void>() }, item: { partition, subject: `signals.p${partition}`, payload } };
}

/** Lets the promise chains a settled request started (verdicts, finally, the next pump) run. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function counterValue(c: Counter): Promise<number> {
  return (await c.get()).values[0]?.value ?? 0;
}

/** Tracks whether a promise has settled yet, without awaiting it. */
function watch(p: Promise<void>): { readonly done: boolean } {
  const state = { done: false };
  void p.then(() => (state.done = true));
  return state;
}

function setup(options: Partial<Omit<ForwardLanesOptions, 'send' | 'metrics' | 'log'>> = {}) {
  const requests: Request[] = [];
  const send = (owner: string, items: ForwardItem[]): Promise<Verdicts> =>
    new Promise<Verdicts>((resolve, reject) => {
      requests.push({
        owner,
        items,
        answer: (verdicts) => resolve(verdicts ?? items.map(() => 'stored')),
        fail: reject,
      });
    });
  const registry = new Registry();
  const metrics = {
    signalsForwarded: new Counter({ name: 'forwarded_total', help: 'h', registers: [registry] }),
    forwardRetries: new Counter({ name: 'forward_retries_total', help: 'h', registers: [registry] }),
  };
  const { log, lines } = memoryLogger('warn');
  const owners = new Map<number, string>();
  const ownerOf = options.ownerOf ?? ((p: number) => owners.get(p) ?? 'owner-a');
  const lanes = new ForwardLanes({ ...options, ownerOf, send, metrics, log });
  return { lanes, requests, metrics, lines, owners };
}

const payloads = (r: Request | undefined): string[] => (r?.items ?? []).map((i) => i.payload);

describe('ForwardLanes', () => {
  it('keeps at most requestsPerOwner requests out per owner and sends what queued meanwhile in the next ones, up to maxRequest each', async () => {
    const { lanes, requests, owners } = setup({ requestsPerOwner: 2, maxRequest: 3 });
    owners.set(9, 'owner-b');
    lanes.enqueue('owner-a', [forward(1, 'a1')]);
    lanes.enqueue('owner-a', [forward(1, 'a2')]);
    lanes.enqueue('owner-a', ['a3', 'a4', 'a5', 'a6', 'a7'].map((p) => forward(1, p)));
    // Another owner has its own lane: the busy one does not hold it back.
    lanes.enqueue('owner-b', [forward(9, 'b1')]);

    expect(requests.map((r) => [r.owner, payloads(r)])).toEqual([
      ['owner-a', ['a1']],
      ['owner-a', ['a2']],
      ['owner-b', ['b1']],
    ]);
    expect(lanes.requestsInFlight).toBe(3);

    requests[0]!.answer();
    await flush();
    expect(requests).toHaveLength(4);
    expect(requests[3]!.owner).toBe('owner-a');
    expect(payloads(requests[3])).toEqual(['a3', 'a4', 'a5']);

    requests[1]!.answer();
    await flush();
    expect(requests).toHaveLength(5);
    expect(payloads(requests[4])).toEqual(['a6', 'a7']);
    expect(lanes.requestsInFlight).toBe(3);
  });

  it('counts signals queued and signals awaiting an answer as in flight, until their request is answered', async () => {
    const { lanes, requests } = setup({ requestsPerOwner: 1 });
    expect(lanes.inFlight).toBe(0);
    lanes.enqueue('owner-a', [forward(1, 'x1'), forward(1, 'x2')]);
    lanes.enqueue('owner-a', [forward(1, 'y1'), forward(1, 'y2'), forward(1, 'y3')]);
    expect(requests).toHaveLength(1);
    expect(lanes.inFlight).toBe(5);

    requests[0]!.answer();
    await flush();
    expect(payloads(requests[1])).toEqual(['y1', 'y2', 'y3']);
    expect(lanes.inFlight).toBe(3);

    requests[1]!.answer();
    await flush();
    expect(lanes.inFlight).toBe(0);
    expect(lanes.requestsInFlight).toBe(0);
  });

  it('waitForRoom stays pending while maxInFlight signals are out and resolves once an answer brings them below', async () => {
    const { lanes, requests } = setup({ maxInFlight: 3, requestsPerOwner: 1 });
    await lanes.waitForRoom(); // nothing out: room at once

    lanes.enqueue('owner-a', [forward(1, 'x1'), forward(1, 'x2')]);
    await lanes.waitForRoom(); // 2 < 3

    lanes.enqueue('owner-a', [forward(1, 'y1'), forward(1, 'y2'), forward(1, 'y3')]);
    const room = watch(lanes.waitForRoom());
    await flush();
    expect(room.done).toBe(false);

    // The first answer sends the three queued signals: still 3 out, still no room.
    requests[0]!.answer();
    await flush();
    expect(requests).toHaveLength(2);
    expect(lanes.inFlight).toBe(3);
    expect(room.done).toBe(false);

    requests[1]!.answer();
    await flush();
    expect(room.done).toBe(true);
  });

  it('drain resolves only after the requests queued behind finished ones are answered too', async () => {
    const { lanes, requests } = setup({ requestsPerOwner: 1 });
    const first = forward(1, 'x1');
    const queued = [forward(1, 'y1'), forward(1, 'y2')];
    lanes.enqueue('owner-a', [first]);
    lanes.enqueue('owner-a', queued);
    const drained = watch(lanes.drain());

    requests[0]!.answer();
    await flush();
    expect(requests).toHaveLength(2);
    expect(drained.done).toBe(false);

    requests[1]!.answer();
    await flush();
    expect(drained.done).toBe(true);
    for (const f of [first, ...queued]) expect(f.msg.ack).toHaveBeenCalledOnce();
  });

  it('settles each message by its verdict: stored → ack, held → nak after HELD_REDELIVERY_MS, retry → nak after RETRY_DELAY_MS, counted', async () => {
    const { lanes, requests, metrics } = setup();
    const [stored, held, retried] = [forward(1, 's'), forward(1, 'h'), forward(1, 'r')];
    lanes.enqueue('owner-a', [stored, held, retried]);
    requests[0]!.answer(['stored', 'held', 'retry']);
    await lanes.drain();

    expect(stored.msg.ack).toHaveBeenCalledOnce();
    expect(stored.msg.nak).not.toHaveBeenCalled();
    expect(held.msg.nak).toHaveBeenCalledExactlyOnceWith(HELD_REDELIVERY_MS);
    expect(held.msg.ack).not.toHaveBeenCalled();
    expect(retried.msg.nak).toHaveBeenCalledExactlyOnceWith(RETRY_DELAY_MS);
    expect(retried.msg.ack).not.toHaveBeenCalled();
    expect(await counterValue(metrics.signalsForwarded)).toBe(3);
    expect(await counterValue(metrics.forwardRetries)).toBe(1);
  });

  it('gives back, unsent, queued signals whose partition moved to another owner while they waited', async () => {
    const { lanes, requests, owners, metrics } = setup({ requestsPerOwner: 1 });
    lanes.enqueue('owner-a', [forward(1, 'first')]);
    const stays = forward(1, 'stays');
    const moved = forward(2, 'moved');
    lanes.enqueue('owner-a', [stays, moved]);
    owners.set(2, 'owner-b');

    requests[0]!.answer();
    await flush();
    requests[1]?.answer();
    await lanes.drain();

    expect(requests.map(payloads)).toEqual([['first'], ['stays']]);
    expect(moved.msg.nak).toHaveBeenCalledExactlyOnceWith(RETRY_DELAY_MS);
    expect(moved.msg.ack).not.toHaveBeenCalled();
    expect(stays.msg.ack).toHaveBeenCalledOnce();
    expect(await counterValue(metrics.signalsForwarded)).toBe(2);
    expect(await counterValue(metrics.forwardRetries)).toBe(1);
    expect(lanes.inFlight).toBe(0);
  });

  it('sends no request at all when every signal of a batch now belongs elsewhere', async () => {
    const { lanes, requests, owners } = setup();
    owners.set(3, 'owner-b');
    const moved = [forward(3, 'm1'), forward(3, 'm2')];
    lanes.enqueue('owner-a', moved);

    expect(requests).toHaveLength(0);
    expect(lanes.inFlight).toBe(0);
    expect(lanes.requestsInFlight).toBe(0);
    await lanes.waitForRoom();
    await lanes.drain();
    for (const m of moved) expect(m.msg.nak).toHaveBeenCalledExactlyOnceWith(RETRY_DELAY_MS);
  });

  it('a send that rejects does not leave the lane stuck: what queued behind it, and later enqueues, are still sent', async () => {
    const { lanes, requests, lines } = setup({ requestsPerOwner: 1, maxInFlight: 2 });
    const first = forward(1, 'x1');
    lanes.enqueue('owner-a', [first]);
    const queued = forward(1, 'y1');
    lanes.enqueue('owner-a', [queued]);

    requests[0]!.fail(new Error('connection reset'));
    await flush();
    expect(payloads(requests[1])).toEqual(['y1']);
    // Given back at once, not left for JetStream's ack wait.
    expect(first.msg.nak).toHaveBeenCalledExactlyOnceWith(RETRY_DELAY_MS);
    expect(lines.some((l) => l.includes('forward failed') && l.includes('connection reset'))).toBe(true);

    requests[1]!.answer();
    await lanes.drain();
    expect(queued.msg.ack).toHaveBeenCalledOnce();
    expect(lanes.inFlight).toBe(0);
    expect(lanes.requestsInFlight).toBe(0);

    // The lane is usable again, and the failed request did not leave phantom signals in flight.
    const later = forward(1, 'z1');
    lanes.enqueue('owner-a', [later]);
    expect(payloads(requests[2])).toEqual(['z1']);
    await lanes.waitForRoom();
    requests[2]!.answer();
    await lanes.drain();
    expect(later.msg.ack).toHaveBeenCalledOnce();
  });
});
