import { describe, expect, it, vi } from 'vitest';
import { parseSignal, type EnrichedSignal } from '@at-orchestrator/contracts';
import { memoryLogger } from '@at-orchestrator/runtime';
import { SimpleEngine } from '../engines/index.js';
import { Correlations } from '../fanin/correlations.js';
import { DecidedSet } from '../fanin/decided-set.js';
import { FanInBuffer, type OpenCorrelation } from '../fanin/fan-in-buffer.js';
import type { SignalSource } from '../ingest/signal-source.js';
import type { WorkerMetrics } from '../metrics.js';
import type { CorrelationStore, SignalToStore, StoreVerdict, StoredCorrelation } from '../state/correlation-store.js';
import { CorrelationSync, type RecoverySteps } from './correlation-sync.js';
import type { DecisionQueue } from './decision-queue.js';

const encoder = new TextEncoder();
const riskJson = (corrId: string): string =>
  JSON.stringify({ corr_id: corrId, agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 10 } } });
const momentumJson = (corrId: string): string =>
  JSON.stringify({ corr_id: corrId, agent_name: 'momentum', analysis: { momentum_strength: 0.5, confidence: 0.9, trend_direction: 'bullish' } });

function signal(json: string): EnrichedSignal {
  const parsed = parseSignal(encoder.encode(json));
  if (!parsed.ok) throw new Error(parsed.detail);
  return parsed.signal;
}

function source() {
  return { holdable: true, ack: vi.fn<() => void>(), nak: vi.fn<(delayMs?: number) => void>(), hold: vi.fn<() => void>() } satisfies SignalSource;
}

function setup(owned: Map<number, number>) {
  const engine = new SimpleEngine(['risk']);
  const open = new FanInBuffer(engine, 1, 1_000);
  const onFenced = vi.fn();
  const correlations = new Correlations({
    open,
    decided: new DecidedSet(1_000),
    metrics: { fencedWrites: { inc: vi.fn() } as never },
    onFenced,
  });
  const store = {
    storeSignals: vi.fn(async (items: readonly SignalToStore[]): Promise<StoreVerdict[]> => items.map(() => ({ kind: 'stored' }))),
    loadOpen: vi.fn(async (): Promise<StoredCorrelation[]> => []),
    // resume() reads pages; here one page: what loadOpen answers.
    async *loadOpenPages(): AsyncGenerator<StoredCorrelation[]> {
      yield await store.loadOpen();
    },
  };
  const queue = { enqueue: vi.fn(), drain: vi.fn(), capacity: vi.fn((): Promise<void> | undefined => undefined), isQueued: vi.fn(() => false) };
  const counter = { inc: vi.fn() };
  const flags = { redis: true };
  const sync = new CorrelationSync({
    correlations,
    queue: queue as unknown as DecisionQueue,
    store: store as unknown as CorrelationStore,
    redisAvailable: () => flags.redis,
    ownedEpoch: (p) => owned.get(p),
    decisionTimeoutMs: 1_000,
    metrics: { countStateOps: vi.fn(), stateFailures: counter } as unknown as WorkerMetrics,
    log: memoryLogger('silent').log,
  });
  /** An open correlation holding a risk signal only in memory, its source un-acked. */
  const heldInMemory = (corrId: string, partition: number): { corr: OpenCorrelation; src: ReturnType<typeof source> } => {
    const corr = open.create(corrId, partition, 0);
    const s = signal(momentumJson(corrId));
    open.add(corr, s);
    const src = source();
    correlations.holdUnsynced(corr, 'momentum', momentumJson(corrId), src);
    return { corr, src };
  };
  const steps = (): RecoverySteps & { order: string[] } => {
    const order: string[] = [];
    return {
      order,
      takeEpochs: vi.fn(async () => void order.push('epochs')),
      resumeRefused: vi.fn(async () => void order.push('refused')),
      syncDoneMarkers: vi.fn(async () => void order.push('done-markers')),
    };
  };
  return { sync, store, queue, correlations, open, onFenced, heldInMemory, steps, flags };
}

describe('CorrelationSync', () => {
  it('recovery: epochs first, then what was held in memory is written under the owned epochs and its sources acked, then refused claims, then done-markers', async () => {
    const { sync, store, heldInMemory, steps, open } = setup(new Map([[1, 41], [2, 42]]));
    const a = heldInMemory('a', 1);
    const b = heldInMemory('b', 2);
    const notOurs = heldInMemory('c', 3);
    store.storeSignals.mockImplementationOnce(async (items) => {
      steps_.order.push('write');
      return items.map(() => ({ kind: 'stored' }));
    });
    const steps_ = steps();
    await sync.recover(steps_);
    expect(steps_.order).toEqual(['epochs', 'write', 'refused', 'done-markers']);
    expect(store.storeSignals.mock.calls[0]![0].map((i: SignalToStore) => [i.corrId, i.agent, i.epoch])).toEqual([
      ['a', 'momentum', 41],
      ['b', 'momentum', 42],
    ]);
    expect([a.src.ack.mock.calls.length, b.src.ack.mock.calls.length, notOurs.src.ack.mock.calls.length]).toEqual([1, 1, 0]);
    expect([a.corr.unsynced.size, a.corr.held.length, notOurs.corr.held.length]).toEqual([0, 0, 1]);
    expect(open.get('a')).toBe(a.corr);
  });

  it('recovery: a fenced write gives the correlation up and its sources back, and tells the partition owner', async () => {
    const { sync, store, heldInMemory, steps, open, onFenced } = setup(new Map([[1, 41]]));
    const a = heldInMemory('a', 1);
    store.storeSignals.mockResolvedValueOnce([{ kind: 'fenced' }]);
    await sync.recover(steps());
    expect(open.get('a')).toBeUndefined();
    expect(a.src.ack).not.toHaveBeenCalled();
    expect(a.src.nak).toHaveBeenCalledTimes(1);
    expect(onFenced).toHaveBeenCalledWith(1, 41);
  });

  it('recovery: a correlation Redis says was decided before is closed, its sources acked', async () => {
    const { sync, store, heldInMemory, steps, open, correlations } = setup(new Map([[1, 41]]));
    const a = heldInMemory('a', 1);
    store.storeSignals.mockResolvedValueOnce([{ kind: 'done', agents: ['risk'], published: true }]);
    await sync.recover(steps());
    expect(open.get('a')).toBeUndefined();
    expect(correlations.decided.agents('a')).toEqual(['risk']);
    expect(a.src.ack).toHaveBeenCalledTimes(1);
  });

  it('recovery that fails keeps what is held for the next one, and never rejects', async () => {
    const { sync, store, heldInMemory, steps } = setup(new Map([[1, 41]]));
    const a = heldInMemory('a', 1);
    store.storeSignals.mockRejectedValueOnce(new Error('connection lost'));
    const first = steps();
    await expect(sync.recover(first)).resolves.toBeUndefined();
    expect(first.order).toEqual(['epochs']);
    expect(a.src.ack).not.toHaveBeenCalled();
    await sync.recover(steps());
    expect(a.src.ack).toHaveBeenCalledTimes(1);
    expect(store.storeSignals).toHaveBeenCalledTimes(2);
  });

  it('one recovery at a time: a second call while one runs shares it', async () => {
    const { sync, steps } = setup(new Map());
    const s = steps();
    let release!: () => void;
    s.takeEpochs = vi.fn(() => new Promise<void>((r) => (release = r)));
    const one = sync.recover(s);
    const two = sync.recover(steps());
    expect(two).toBe(one);
    release();
    await one;
    expect(s.takeEpochs).toHaveBeenCalledTimes(1);
  });

  it('resume loads open correlations of partitions we own with their deadlines; ready or claimed-but-unpublished ones go to the queue', async () => {
    const { sync, store, queue, open, correlations } = setup(new Map([[1, 41], [2, 42]]));
    correlations.decided.add('decided', ['risk']);
    store.loadOpen.mockResolvedValueOnce([
      { corrId: 'waiting', partition: 1, deadlineMs: 5_000, signals: { momentum: momentumJson('waiting') }, claimedNotPublished: false },
      { corrId: 'ready', partition: 1, deadlineMs: 5_000, signals: { risk: riskJson('ready') }, claimedNotPublished: false },
      { corrId: 'reclaim', partition: 2, deadlineMs: 6_000, signals: { momentum: momentumJson('reclaim') }, claimedNotPublished: true },
      { corrId: 'decided', partition: 2, deadlineMs: 6_000, signals: { risk: riskJson('decided') }, claimedNotPublished: false },
      { corrId: 'moved-away', partition: 3, deadlineMs: 6_000, signals: { risk: riskJson('moved-away') }, claimedNotPublished: false },
    ]);
    await sync.resume([1, 2, 3]);
    expect(open.get('waiting')).toMatchObject({ deadlineMs: 5_000, firstSeenMs: 4_000, agentCount: 1 });
    expect(queue.enqueue.mock.calls.map((call) => [(call[0] as OpenCorrelation).corrId, call[1]])).toEqual([
      ['ready', false],
      // Not ready, but a previous owner claimed it without publishing: decided again now.
      ['reclaim', true],
    ]);
    expect([open.get('decided'), open.get('moved-away'), open.get('ready')]).toEqual([undefined, undefined, undefined]);
    expect(queue.drain).toHaveBeenCalled();
  });

  it('flush writes what partitions leaving us hold in memory under the epochs given and returns the rest to JetStream', async () => {
    const { sync, store, heldInMemory, open } = setup(new Map());
    const a = heldInMemory('a', 1);
    const b = heldInMemory('b', 2);
    const stays = heldInMemory('c', 3);
    await sync.flush(new Set([1, 2]), new Map([[1, 41]]));
    expect([open.get('a'), open.get('b'), open.get('c')]).toEqual([undefined, undefined, stays.corr]);
    expect(store.storeSignals.mock.calls[0]![0].map((i: SignalToStore) => [i.corrId, i.epoch])).toEqual([['a', 41]]);
    expect([a.src.ack.mock.calls.length, b.src.nak.mock.calls.length, stays.src.nak.mock.calls.length]).toEqual([1, 1, 0]);
  });

  it('flush with Redis down returns every held source to JetStream', async () => {
    const { sync, store, heldInMemory, flags } = setup(new Map());
    flags.redis = false;
    const a = heldInMemory('a', 1);
    await sync.flush(new Set([1]), new Map([[1, 41]]));
    expect(store.storeSignals).not.toHaveBeenCalled();
    expect(a.src.nak).toHaveBeenCalledTimes(1);
  });
});
