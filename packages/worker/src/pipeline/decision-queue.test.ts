import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseSignal, type EnrichedSignal } from '@at-orchestrator/contracts';
import { memoryLogger } from '@at-orchestrator/runtime';
import type { DecisionJob } from '../emit/decision-builder.js';
import { InlineDecider, SimpleEngine } from '../engines/index.js';
import { Correlations } from '../fanin/correlations.js';
import { DecidedSet } from '../fanin/decided-set.js';
import { FanInBuffer, type OpenCorrelation } from '../fanin/fan-in-buffer.js';
import { TokenBucket } from '../rate-limiter.js';
import { DecisionQueue, type DecisionSink } from './decision-queue.js';

const encoder = new TextEncoder();

function risk(corrId: string): EnrichedSignal {
  const parsed = parseSignal(encoder.encode(JSON.stringify({ corr_id: corrId, agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 10 } } })));
  if (!parsed.ok) throw new Error(parsed.detail);
  return parsed.signal;
}

/** An emit path that holds every batch until the test lets it go. */
class HeldSink implements DecisionSink {
  readonly batches: DecisionJob[][] = [];
  private readonly releases: Array<() => void> = [];
  pending = 0;

  emit(jobs: DecisionJob[]): Promise<void> {
    this.batches.push(jobs);
    this.pending += jobs.length;
    return new Promise((resolve) =>
      this.releases.push(() => {
        this.pending -= jobs.length;
        resolve();
      }),
    );
  }

  releaseAll(): void {
    for (const r of this.releases.splice(0)) r();
  }

  corrIds(): string[][] {
    return this.batches.map((b) => b.map((j) => j.corr.corrId));
  }
}

function setup(o: { rps?: number; maxPending?: number; clock?: { now: number }; onDecide?: () => void } = {}) {
  const engine = new SimpleEngine(['risk']);
  const open = new FanInBuffer(engine, 1, 1_000);
  const correlations = new Correlations({
    open,
    decided: new DecidedSet(1_000),
    metrics: { fencedWrites: { inc: vi.fn() } as never },
    onFenced: vi.fn(),
  });
  const sink = new HeldSink();
  const flags = { accepting: true };
  const clock = o.clock;
  const inline = new InlineDecider(engine);
  const queue = new DecisionQueue({
    correlations,
    engine,
    decider: {
      kind: 'inline',
      decide: async (inputs) => {
        const results = await inline.decide(inputs);
        o.onDecide?.();
        return results;
      },
      reloadRules: () => inline.reloadRules(),
      close: () => inline.close(),
    },
    sink,
    ctx: { orchestratorType: 'simple', minAgents: 1, workerId: 'w1' },
    bucket: new TokenBucket(o.rps ?? 0, clock === undefined ? undefined : () => clock.now),
    maxPending: o.maxPending ?? 1_000,
    decisionEpoch: (p) => (p === 9 ? -1 : 100 + p),
    accepting: () => flags.accepting,
    log: memoryLogger('silent').log,
  });
  /** A correlation with its risk signal: ready. */
  const ready = (corrId: string, partition = 0, firstSeen = Date.now()): OpenCorrelation => {
    const corr = open.create(corrId, partition, firstSeen);
    open.add(corr, risk(corrId));
    open.remove(corrId);
    return corr;
  };
  return { queue, sink, correlations, open, flags, ready };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('DecisionQueue', () => {
  it('decides ready correlations in the order they became ready, each under its partition epoch, and marks them decided', async () => {
    const { queue, sink, correlations, ready } = setup();
    for (const [id, p] of [['a', 1], ['b', 2], ['c', 9]] as const) queue.enqueue(ready(id, p), false);
    queue.drain();
    await vi.waitFor(() => expect(sink.batches).toHaveLength(1));
    expect(sink.corrIds()).toEqual([['a', 'b', 'c']]);
    // No epoch (not ours any more): -1, which the fence refuses.
    expect(sink.batches[0]!.map((j) => j.epoch)).toEqual([101, 102, -1]);
    expect(['a', 'b', 'c'].map((id) => correlations.decided.has(id))).toEqual([true, true, true]);
    sink.releaseAll();
    await queue.settled();
  });

  it('RATE_LIMIT_RPS: takes only what the bucket grants and decides the rest when tokens return; drain(true) ignores it', async () => {
    vi.useFakeTimers();
    const clock = { now: 0 };
    const { queue, sink, ready } = setup({ rps: 2, clock });
    for (const id of ['a', 'b', 'c', 'd', 'e']) queue.enqueue(ready(id), false);
    queue.drain();
    await vi.waitFor(() => expect(sink.corrIds()).toEqual([['a', 'b']]));
    expect(queue.pending).toBe(5);
    clock.now = 500;
    await vi.advanceTimersByTimeAsync(500);
    expect(sink.corrIds()).toEqual([['a', 'b'], ['c']]);
    queue.drain(true);
    await vi.waitFor(() => expect(sink.corrIds()).toEqual([['a', 'b'], ['c'], ['d', 'e']]));
    queue.close();
  });

  it('capacity: full at maxPending ready or emitting, free again when the emit path answers', async () => {
    const { queue, sink, ready } = setup({ maxPending: 3 });
    for (const id of ['a', 'b']) queue.enqueue(ready(id), false);
    expect(queue.capacity()).toBeUndefined();
    queue.enqueue(ready('c'), false);
    let freed = false;
    const waiting = queue.capacity()!.then(() => (freed = true));
    queue.drain();
    await vi.waitFor(() => expect(sink.batches).toHaveLength(1));
    // Moved from ready to emitting: still full.
    expect(queue.pending).toBe(3);
    expect(freed).toBe(false);
    sink.releaseAll();
    await waiting;
    expect(queue.capacity()).toBeUndefined();
  });

  it('capacity never blocks once the worker stops accepting, and waiting intake is let go', async () => {
    const { queue, flags, ready } = setup({ maxPending: 1 });
    queue.enqueue(ready('a'), false);
    const waiting = queue.capacity();
    expect(waiting).toBeDefined();
    flags.accepting = false;
    queue.wake();
    await waiting;
    expect(queue.capacity()).toBeUndefined();
  });

  it('takePartitions decides the ready correlations of those partitions now, whatever the rate limit, and leaves the rest queued in order', async () => {
    const clock = { now: 0 };
    const { queue, sink, ready } = setup({ rps: 1, clock });
    queue.enqueue(ready('x', 0), false);
    queue.drain();
    await vi.waitFor(() => expect(sink.corrIds()).toEqual([['x']]));
    for (const [id, p] of [['a', 1], ['b', 2], ['c', 1], ['d', 3]] as const) queue.enqueue(ready(id, p), false);
    queue.takePartitions(new Set([1, 3]));
    await vi.waitFor(() => expect(sink.corrIds()).toEqual([['x'], ['a', 'c', 'd']]));
    expect(queue.pending).toBe(5);
    sink.releaseAll();
    let settled = false;
    const done = queue.settled().then(() => (settled = true));
    await done;
    expect(settled).toBe(true);
    queue.close();
  });

  it('a correlation whose deadline passes is decided at the deadline (a timeout outcome without risk)', async () => {
    vi.useFakeTimers();
    const { queue, sink, open } = setup();
    const corr = open.create('late', 4, Date.now());
    expect(corr.deadlineMs).toBe(Date.now() + 1_000);
    queue.start(10);
    await vi.advanceTimersByTimeAsync(990);
    expect(sink.batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(20);
    expect(sink.corrIds()).toEqual([['late']]);
    expect(sink.batches[0]![0]!).toMatchObject({ atDeadline: true, type: 'timeout', epoch: 104 });
    expect(open.get('late')).toBeUndefined();
    queue.close();
  });

  it('gate: while the lease is lapsed nothing reaches the emit path — drain, takePartitions, nor a batch decided as it lapsed; once renewed the tick decides them, in order', async () => {
    vi.useFakeTimers();
    const lease = { held: false, lapseWhileDeciding: true };
    // The first time the engine decides, the lease lapses meanwhile (the process was stopped).
    const onDecide = (): void => {
      if (lease.lapseWhileDeciding) lease.held = false;
      lease.lapseWhileDeciding = false;
    };
    const { queue, sink, correlations, ready } = setup({ onDecide });
    queue.gate(() => lease.held);
    queue.start(10);
    for (const [id, p] of [['a', 1], ['b', 2]] as const) queue.enqueue(ready(id, p), false);
    queue.drain();
    queue.takePartitions(new Set([1]));
    await vi.advanceTimersByTimeAsync(50);
    expect(sink.batches).toEqual([]);
    expect(queue.pending).toBe(2);

    lease.held = true;
    await vi.advanceTimersByTimeAsync(10);
    // Taken and decided, but the lease lapsed before the emit path took the batch: back in the queue.
    expect(correlations.decided.has('a')).toBe(true);
    expect(sink.batches).toEqual([]);
    expect(queue.pending).toBe(2);

    // Renewed: the next tick hands them over, in their order, under their epochs.
    lease.held = true;
    await vi.advanceTimersByTimeAsync(20);
    expect(sink.corrIds()).toEqual([['a', 'b']]);
    expect(sink.batches[0]!.map((j) => j.epoch)).toEqual([101, 102]);
    sink.releaseAll();
    await queue.settled();
    queue.close();
  });

  it('waiting: a correlation is known from the moment it is ready until the emit path is done with it, not after', async () => {
    const { queue, sink, ready } = setup();
    const a = ready('a', 1);
    queue.enqueue(a, false);
    expect(queue.waiting('a')).toBe(a);
    queue.drain();
    await vi.waitFor(() => expect(sink.batches).toHaveLength(1));
    // Being claimed and published: its claim may still be fenced.
    expect(queue.waiting('a')).toBe(a);
    sink.releaseAll();
    await queue.settled();
    expect(queue.waiting('a')).toBeUndefined();
  });
});
