import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { CorrId, parseSignal, type EnrichedSignal } from '@at-orchestrator/contracts';
import { memoryLogger } from '@at-orchestrator/runtime';
import { channelMsgId } from '../emit/decision-emitter.js';
import { InlineDecider, SimpleEngine } from '../engines/index.js';
import { Correlations } from '../fanin/correlations.js';
import { DecidedSet } from '../fanin/decided-set.js';
import { FanInBuffer } from '../fanin/fan-in-buffer.js';
import { AgentLabels } from '../metrics.js';
import { TokenBucket } from '../rate-limiter.js';
import { DecisionQueue, type DecisionSink } from './decision-queue.js';

const encoder = new TextEncoder();

function momentum(corrId: string): EnrichedSignal {
  const parsed = parseSignal(encoder.encode(JSON.stringify({ corr_id: corrId, agent_name: 'momentum', analysis: { momentum_strength: 1, confidence: 0.5, trend_direction: 'up' } })));
  if (!parsed.ok) throw new Error(parsed.detail);
  return parsed.signal;
}

function setup(maxOpen: number, sink: DecisionSink & { blocked?: boolean } = { emit: async () => undefined, pending: 0 }) {
  const engine = new SimpleEngine(['momentum', 'risk']);
  const open = new FanInBuffer(engine, 2, 60_000);
  const correlations = new Correlations({
    open,
    decided: new DecidedSet(1_000),
    metrics: { fencedWrites: { inc: vi.fn() } as never },
    onFenced: vi.fn(),
  });
  const paused: string[] = [];
  const queue = new DecisionQueue({
    correlations,
    engine,
    decider: new InlineDecider(engine),
    sink,
    ctx: { orchestratorType: 'simple', minAgents: 2, workerId: 'w1' },
    bucket: new TokenBucket(0),
    maxPending: 1_000,
    maxOpen,
    onPause: (bound) => paused.push(bound),
    decisionEpoch: () => 1,
    accepting: () => true,
    log: memoryLogger('silent').log,
  });
  const openOne = (corrId: string) => open.add(open.create(corrId, 0, Date.now()), momentum(corrId));
  return { queue, open, openOne, paused };
}

describe('MAX_OPEN_CORRELATIONS', () => {
  it('intake waits while open correlations (and signals in hand) fill the bound, and goes on once one closes', async () => {
    const { queue, open, openOne, paused } = setup(3);
    openOne('a');
    openOne('b');
    expect(queue.capacity(0)).toBeUndefined();
    // Two open and one signal in hand: that signal may open the third, so no more is pulled.
    const waiting = queue.capacity(1);
    expect(waiting).toBeDefined();
    expect(paused).toEqual(['open_correlations']);
    openOne('c');
    queue.wake();
    let freed = false;
    void waiting!.then(() => (freed = true));
    await Promise.resolve();
    expect(freed).toBe(false);
    open.remove('a');
    queue.wake();
    await waiting;
    expect(queue.capacity(0)).toBeUndefined();
  });
});

describe('unsynced done-markers bound', () => {
  it('a blocked emit path stops deciding and pauses intake; ready correlations wait and are decided once it clears', async () => {
    const emitted: string[] = [];
    const sink = { pending: 0, blocked: true, emit: async (jobs: Array<{ corr: { corrId: string } }>) => void emitted.push(...jobs.map((j) => j.corr.corrId)) };
    const { queue, open, openOne, paused } = setup(100, sink as never);
    openOne('x');
    const corr = open.get('x')!;
    open.remove('x');
    queue.enqueue(corr, true);
    queue.drain();
    expect(emitted).toEqual([]);
    expect(queue.capacity(0)).toBeDefined();
    expect(paused).toEqual(['unsynced_done']);
    sink.blocked = false;
    queue.drain();
    await vi.waitFor(() => expect(emitted).toEqual(['x']));
  });
});

describe('agent label values', () => {
  it('known agents and at most maxOthers others keep their name; the rest are "other"', () => {
    const labels = new AgentLabels({ known: ['momentum', 'risk'], maxOthers: 2 });
    expect(['momentum', 'a', 'b', 'c', 'risk', 'a', 'd'].map((x) => labels.of(x))).toEqual(['momentum', 'a', 'b', 'other', 'risk', 'a', 'other']);
  });
});

describe('Nats-Msg-Id of channel copies', () => {
  const corrId = fc.string({ minLength: 1, maxLength: 128, unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)) });
  const channel = fc.stringMatching(/^[a-z0-9_.-]{1,32}$/);

  it('never equals a decision id (any valid corr_id) nor another copy id', () => {
    fc.assert(
      fc.property(corrId, channel, corrId, channel, (c1, ch1, c2, ch2) => {
        expect(CorrId.safeParse(c1).success).toBe(true);
        const id = channelMsgId(c1, ch1);
        expect(id).not.toBe(c2);
        if (c1 !== c2 || ch1 !== ch2) expect(id).not.toBe(channelMsgId(c2, ch2));
      }),
      { numRuns: 2_000 },
    );
    // The collision the old form allowed: corr_id "a:b" against the "b" copy of corr_id "a".
    expect(channelMsgId('a', 'b')).not.toBe('a:b');
  });
});
