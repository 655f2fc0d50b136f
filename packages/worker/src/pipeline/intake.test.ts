import { describe, expect, it, vi } from 'vitest';
import { parseSignal } from '@at-orchestrator/contracts';
import { Registry, memoryLogger } from '@at-orchestrator/runtime';
import { SimpleEngine } from '../engines/index.js';
import { Correlations } from '../fanin/correlations.js';
import { DecidedSet } from '../fanin/decided-set.js';
import { FanInBuffer, type OpenCorrelation } from '../fanin/fan-in-buffer.js';
import { RETRY_DELAY_MS, type SignalSource } from '../ingest/signal-source.js';
import { WorkerMetrics } from '../metrics.js';
import type { ClaimRequest, ClaimVerdict, CorrelationStore, SignalToStore, StoreVerdict } from '../state/correlation-store.js';
import type { DecisionQueue } from './decision-queue.js';
import { Intake, type Inbound } from './intake.js';
import { PARK_MS } from './parked-signals.js';

const encoder = new TextEncoder();
const bodies = {
  momentum: (c: string) => JSON.stringify({ corr_id: c, agent_name: 'momentum', analysis: { momentum_strength: 0.5, confidence: 0.9, trend_direction: 'up' } }),
  risk: (c: string) => JSON.stringify({ corr_id: c, agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 10 } } }),
  correlation: (c: string) => JSON.stringify({ corr_id: c, agent_name: 'correlation', analysis: { correlation_score: 0.4 } }),
};

function source() {
  return { holdable: true, ack: vi.fn<() => void>(), nak: vi.fn<(delayMs?: number) => void>(), hold: vi.fn<() => void>() } satisfies SignalSource;
}

function inbound(corrId: string, agent: keyof typeof bodies, partition = 3) {
  const payload = bodies[agent](corrId);
  const parsed = parseSignal(encoder.encode(payload));
  if (!parsed.ok) throw new Error(parsed.detail);
  const src = source();
  const reject = vi.fn(async () => {});
  return { item: { signal: parsed.signal, payload, partition, source: src, reject } satisfies Inbound, src, reject };
}

function setup(o: { redis?: boolean; canWrite?: boolean; maxAgents?: number; claimsWithStore?: boolean } = {}) {
  const engine = new SimpleEngine(['momentum', 'risk']);
  const registry = new Registry();
  const metrics = new WorkerMetrics(registry);
  const onFenced = vi.fn();
  const correlations = new Correlations({ open: new FanInBuffer(engine, 2, 60_000), decided: new DecidedSet(1_000), metrics, onFenced });
  const verdicts: StoreVerdict[][] = [];
  const store = {
    storeSignals: vi.fn(async (items: readonly SignalToStore[]): Promise<StoreVerdict[]> => verdicts.shift() ?? items.map(() => ({ kind: 'stored' }))),
    recordLate: vi.fn(async () => {}),
    claimsWithStore: o.claimsWithStore ?? false,
    storeAndClaim: vi.fn(
      async (items: readonly SignalToStore[], claims: readonly ClaimRequest[], _workerId: string): Promise<{ stored: StoreVerdict[]; claimed: ClaimVerdict[] }> => ({
        stored: items.map(() => ({ kind: 'stored' })),
        claimed: claims.map(() => ({ kind: 'claimed' })),
      }),
    ),
  };
  // Enqueued correlations wait in the queue (the lease gate holds them) until the test launches them.
  const waiting = new Map<string, OpenCorrelation>();
  const queue = {
    enqueue: vi.fn((corr: OpenCorrelation, _atDeadline: boolean) => void waiting.set(corr.corrId, corr)),
    drain: vi.fn(),
    waiting: (corrId: string) => waiting.get(corrId),
  };
  const intake = new Intake({
    correlations,
    queue: queue as unknown as DecisionQueue,
    store: store as unknown as CorrelationStore,
    redisAvailable: () => o.redis ?? true,
    epochs: { ownedEpoch: (p) => (p === 3 ? 7 : undefined), canWrite: o.canWrite ?? true },
    maxAgentsPerCorrelation: o.maxAgents ?? 16,
    workerId: 'w1',
    metrics,
    log: memoryLogger('silent').log,
  });
  const counter = async (name: string): Promise<number> =>
    ((await registry.getMetricsAsJSON()).find((m) => m.name === name)?.values ?? []).reduce((sum, v) => sum + v.value, 0);
  return { intake, store, queue, waiting, correlations, onFenced, verdicts, counter };
}

describe('Intake', () => {
  it('stores new signals in one round trip under the partition epoch, acks them once stored, and hands a complete correlation to the queue', async () => {
    const { intake, store, queue, correlations } = setup();
    const m = inbound('c1', 'momentum');
    const r = inbound('c1', 'risk');
    await intake.take([m.item, r.item]);
    expect(store.storeSignals).toHaveBeenCalledTimes(1);
    expect(store.storeSignals.mock.calls[0]![0].map((i) => [i.corrId, i.agent, i.epoch])).toEqual([
      ['c1', 'momentum', 7],
      ['c1', 'risk', 7],
    ]);
    expect([m.src.ack.mock.calls.length, r.src.ack.mock.calls.length]).toEqual([1, 1]);
    expect(queue.enqueue.mock.calls.map(([c, atDeadline]) => [(c as { corrId: string }).corrId, atDeadline])).toEqual([['c1', false]]);
    expect(correlations.open.get('c1')).toBeUndefined();
  });

  it('with one Redis, the correlations a batch completes are claimed in the store\'s own call, and their verdict waits on the correlation', async () => {
    const { intake, store, queue, waiting } = setup({ claimsWithStore: true });
    const m = inbound('c1', 'momentum');
    const r = inbound('c1', 'risk');
    const half = inbound('c2', 'momentum');
    const elsewhere = inbound('c3', 'momentum', 5);
    const elsewhereRisk = inbound('c3', 'risk', 5);
    await intake.take([m.item, r.item, half.item, elsewhere.item, elsewhereRisk.item]);
    expect(store.storeSignals).not.toHaveBeenCalled();
    expect(store.storeAndClaim).toHaveBeenCalledOnce();
    const [items, claims, workerId] = store.storeAndClaim.mock.calls[0]!;
    // c2 is not complete; c3's partition is not ours to write (no epoch: its store is refused by
    // Redis, and its decision claims as usual, fenced): neither is claimed with the store.
    expect(items.map((i) => i.corrId)).toEqual(['c1', 'c1', 'c2', 'c3', 'c3']);
    expect(claims).toEqual([{ corrId: 'c1', partition: 3, epoch: 7, agents: ['momentum', 'risk'] }]);
    expect(workerId).toBe('w1');
    expect(queue.enqueue.mock.calls.map(([c]) => (c as OpenCorrelation).corrId)).toEqual(['c1', 'c3']);
    expect(waiting.get('c3')!.preclaim).toBeUndefined();
    const pre = waiting.get('c1')!.preclaim!;
    expect(pre.epoch).toBe(7);
    expect(await pre.verdict).toEqual({ kind: 'claimed' });
    expect([m.src.ack.mock.calls.length, r.src.ack.mock.calls.length, half.src.ack.mock.calls.length]).toEqual([1, 1, 1]);
  });

  it('a failed store-and-claim call holds the signals as a failed store does, and leaves the claim to be made again (verdict undefined)', async () => {
    const { intake, store, waiting, correlations } = setup({ claimsWithStore: true });
    store.storeAndClaim.mockRejectedValueOnce(new Error('connection lost'));
    const m = inbound('c1', 'momentum');
    const r = inbound('c1', 'risk');
    await intake.take([m.item, r.item]);
    expect(await waiting.get('c1')!.preclaim!.verdict).toBeUndefined();
    expect(m.src.ack).not.toHaveBeenCalled();
    expect(waiting.get('c1')!.held.length + (correlations.open.get('c1')?.held.length ?? 0)).toBeGreaterThan(0);
  });

  it('a correlation the batch completes is decided once its store is written, before Redis answers (the claim follows the store on the connection)', async () => {
    const { intake, store, queue } = setup();
    let answer: (verdicts: StoreVerdict[]) => void = () => undefined;
    const order: string[] = [];
    store.storeSignals.mockImplementationOnce((items) => {
      order.push('store written');
      return new Promise((resolve) => (answer = resolve)).then((v) => (order.push('store answered'), v as StoreVerdict[])) as Promise<StoreVerdict[]>;
    });
    queue.drain.mockImplementation(() => void order.push('queue drained'));
    const m = inbound('c0', 'momentum');
    const r = inbound('c0', 'risk');
    const taken = intake.take([m.item, r.item]);
    await Promise.resolve();
    expect(order).toEqual(['store written', 'queue drained']);
    expect(queue.enqueue).toHaveBeenCalledOnce();
    // The sources are acked only once Redis has their signals.
    expect(m.src.ack).not.toHaveBeenCalled();
    answer([{ kind: 'stored' }, { kind: 'stored' }]);
    await taken;
    expect(order).toEqual(['store written', 'queue drained', 'store answered']);
    expect([m.src.ack.mock.calls.length, r.src.ack.mock.calls.length]).toEqual([1, 1]);
  });

  it('with Redis down a completed correlation is decided from memory, its sources held', async () => {
    const { intake, queue, correlations } = setup({ redis: false });
    const m = inbound('c0b', 'momentum');
    const r = inbound('c0b', 'risk');
    await intake.take([m.item, r.item]);
    const queued = queue.enqueue.mock.calls[0]![0] as { corrId: string; held: unknown[] };
    expect(queued.corrId).toBe('c0b');
    expect(queued.held).toEqual([m.src, r.src]);
    expect(correlations.open.get('c0b')).toBeUndefined();
  });

  it('a redelivered signal of a correlation waiting to be decided (Redis down, the lease gate closed) is held with it, never opened again', async () => {
    const { intake, queue, waiting, correlations, counter } = setup({ redis: false });
    const m = inbound('c0w', 'momentum');
    const r = inbound('c0w', 'risk');
    await intake.take([m.item, r.item]);
    // JetStream redelivers both (ack wait passed while the decision waited) and one from a third agent.
    const again = [inbound('c0w', 'momentum'), inbound('c0w', 'risk')];
    const late = inbound('c0w', 'correlation');
    await intake.take([...again.map((x) => x.item), late.item]);
    expect(queue.enqueue).toHaveBeenCalledOnce();
    expect(correlations.open.get('c0w')).toBeUndefined();
    // Held with the waiting correlation: acked when its decision is published, not before.
    expect(waiting.get('c0w')!.held).toEqual([m.src, r.src, again[0]!.src, again[1]!.src, late.src]);
    for (const x of again) expect(x.src.ack).not.toHaveBeenCalled();
    expect(await counter('orchestrator_duplicate_signals_total')).toBe(2);
    // Another agent is late, but the decision may yet be fenced: held with it too, not acked.
    expect(late.src.ack).not.toHaveBeenCalled();
    expect(await counter('orchestrator_late_signals_total')).toBe(1);
  });

  it('a repeat delivery that arrives while the first one is being stored is held, not acked; a fenced store gives both back', async () => {
    // A worker woken past its lease finds a signal and its redelivery in its socket: were the repeat
    // acked before the store's (fenced) answer, the stream would drop the message that the fenced
    // first delivery gives back, and the partition's new owner would never see the signal.
    const { intake, store, correlations, onFenced, counter } = setup();
    let answer: (v: StoreVerdict[]) => void = () => undefined;
    store.storeSignals.mockImplementationOnce(() => new Promise<StoreVerdict[]>((resolve) => (answer = resolve)));
    const first = inbound('c9', 'momentum');
    const repeats = [inbound('c9', 'momentum'), inbound('c9', 'momentum')];
    // The first completes nothing: it is parked (waiting to be stored), then stored by settled().
    await intake.take([first.item, repeats[0]!.item]);
    await intake.take([repeats[1]!.item]);
    for (const r of repeats) expect(r.src.ack).not.toHaveBeenCalled();
    const storing = intake.settled();
    expect(store.storeSignals).toHaveBeenCalledOnce();
    for (const r of repeats) expect(r.src.ack).not.toHaveBeenCalled();
    answer([{ kind: 'fenced' }]);
    await storing;
    for (const x of [first, ...repeats]) {
      expect(x.src.ack).not.toHaveBeenCalled();
      expect(x.src.nak).toHaveBeenCalledOnce();
    }
    expect(correlations.open.get('c9')).toBeUndefined();
    expect(onFenced).toHaveBeenCalledWith(3, 7);
    expect(await counter('orchestrator_duplicate_signals_total')).toBe(2);
  });

  it('a repeat delivery after the first one is stored is acked, as before', async () => {
    const { intake, store } = setup();
    let answer: (v: StoreVerdict[]) => void = () => undefined;
    store.storeSignals.mockImplementationOnce(() => new Promise<StoreVerdict[]>((resolve) => (answer = resolve)));
    const first = inbound('c10', 'momentum');
    const during = inbound('c10', 'momentum');
    await intake.take([first.item]);
    await intake.take([during.item]);
    const storing = intake.settled();
    answer([{ kind: 'stored' }]);
    await storing;
    expect(first.src.ack).toHaveBeenCalledOnce();
    const after = inbound('c10', 'momentum');
    await intake.take([after.item]);
    expect(after.src.ack).toHaveBeenCalledOnce();
    // The one that came during the store stays held with the correlation until its decision is published.
    expect(during.src.ack).not.toHaveBeenCalled();
  });

  it('a second delivery of a stored signal is a duplicate: counted and acked, not stored again', async () => {
    const { intake, store, counter } = setup();
    await intake.take([inbound('c2', 'momentum').item]);
    await intake.settled();
    const again = inbound('c2', 'momentum');
    await intake.take([again.item]);
    expect(store.storeSignals).toHaveBeenCalledTimes(1);
    expect(again.src.ack).toHaveBeenCalledOnce();
    expect(await counter('orchestrator_duplicate_signals_total')).toBe(1);
  });

  it('a signal for a correlation decided here is late: acked, counted and recorded in Redis', async () => {
    const { intake, store, correlations, counter } = setup();
    correlations.decided.add('c3', ['momentum', 'risk']);
    const late = inbound('c3', 'correlation');
    await intake.take([late.item]);
    expect(late.src.ack).toHaveBeenCalledOnce();
    expect(store.storeSignals).not.toHaveBeenCalled();
    expect(store.recordLate).toHaveBeenCalledWith([{ corrId: 'c3', agent: 'correlation', payload: bodies.correlation('c3') }]);
    expect(await counter('orchestrator_late_signals_total')).toBe(1);
  });

  it('a fenced store gives the signal back to JetStream and tells the partition owner which epoch was refused', async () => {
    const { intake, verdicts, correlations, onFenced, counter } = setup();
    verdicts.push([{ kind: 'fenced' }]);
    const m = inbound('c4', 'momentum');
    await intake.take([m.item]);
    await intake.settled();
    expect(m.src.ack).not.toHaveBeenCalled();
    expect(m.src.nak).toHaveBeenCalledWith(RETRY_DELAY_MS);
    expect(onFenced).toHaveBeenCalledWith(3, 7);
    expect(correlations.open.get('c4')).toBeUndefined();
    expect(await counter('orchestrator_fenced_writes_total')).toBe(1);
  });

  it('Redis says decided before: the correlation closes and the signal is acked as late', async () => {
    const { intake, verdicts, correlations } = setup();
    verdicts.push([{ kind: 'done', agents: ['momentum', 'risk'], published: true }]);
    const c = inbound('c5', 'correlation');
    await intake.take([c.item]);
    await intake.settled();
    expect(c.src.ack).toHaveBeenCalledOnce();
    expect(correlations.open.get('c5')).toBeUndefined();
    expect(correlations.decided.has('c5')).toBe(true);
  });

  it('Redis down (or no epochs yet): signals are held in memory, their sources not acked, and nothing is written', async () => {
    for (const o of [{ redis: false }, { canWrite: false }]) {
      const { intake, store, correlations } = setup(o);
      const m = inbound('c6', 'momentum');
      await intake.take([m.item]);
      expect(store.storeSignals).not.toHaveBeenCalled();
      expect(m.src.ack).not.toHaveBeenCalled();
      expect(correlations.open.get('c6')!.held).toEqual([m.src]);
      expect([...correlations.open.get('c6')!.unsynced.keys()]).toEqual(['momentum']);
    }
  });

  it('a store that fails holds the signals in memory instead of losing them', async () => {
    const { intake, store, correlations } = setup();
    store.storeSignals.mockRejectedValueOnce(new Error('connection lost'));
    const m = inbound('c7', 'momentum');
    await intake.take([m.item]);
    await intake.settled();
    expect(m.src.ack).not.toHaveBeenCalled();
    expect(correlations.open.get('c7')!.held).toEqual([m.src]);
  });

  it('one agent more than MAX_AGENTS_PER_CORRELATION is rejected (dead-lettered), the correlation keeps what it had', async () => {
    const { intake, correlations } = setup({ maxAgents: 1 });
    await intake.take([inbound('c8', 'momentum').item]);
    const extra = inbound('c8', 'correlation');
    await intake.take([extra.item]);
    expect(extra.reject).toHaveBeenCalledWith('too_many_agents', expect.stringContaining('MAX_AGENTS_PER_CORRELATION'));
    expect(Object.keys(correlations.open.get('c8')!.signals)).toEqual(['momentum']);
  });

  it('settled() waits for every intake in flight', async () => {
    const { intake, store } = setup();
    let release!: () => void;
    store.storeSignals.mockImplementationOnce(() => new Promise((r) => (release = () => r([{ kind: 'stored' }]))));
    void intake.take([inbound('c9', 'momentum').item]);
    let settled = false;
    const done = intake.settled().then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    release();
    await done;
    expect(settled).toBe(true);
  });

  describe('parking: a signal that completes nothing rides with the next store', () => {
    it('waits, unacked and marked as being stored, and goes in the call of the signal that completes its correlation: one round trip for both', async () => {
      const { intake, store, queue } = setup();
      const m = inbound('p1', 'momentum');
      await intake.take([m.item]);
      expect(store.storeSignals).not.toHaveBeenCalled();
      expect(m.src.ack).not.toHaveBeenCalled();
      const other = inbound('p2', 'momentum');
      await intake.take([other.item]);
      const r = inbound('p1', 'risk');
      await intake.take([r.item]);
      expect(store.storeSignals).toHaveBeenCalledOnce();
      // Oldest first; p2, still incomplete, goes too: the round trip is paid anyway.
      expect(store.storeSignals.mock.calls[0]![0].map((i) => [i.corrId, i.agent])).toEqual([
        ['p1', 'momentum'],
        ['p2', 'momentum'],
        ['p1', 'risk'],
      ]);
      for (const x of [m, other, r]) expect(x.src.ack).toHaveBeenCalledOnce();
      expect(queue.enqueue.mock.calls.map(([c]) => (c as OpenCorrelation).corrId)).toEqual(['p1']);
      await intake.settled();
      expect(store.storeSignals).toHaveBeenCalledOnce();
    });

    it('with one Redis the parked signals go in the store-and-claim call of the batch that completes a correlation', async () => {
      const { intake, store } = setup({ claimsWithStore: true });
      await intake.take([inbound('p3', 'momentum').item]);
      await intake.take([inbound('p3', 'risk').item]);
      expect(store.storeAndClaim).toHaveBeenCalledOnce();
      const [items, claims] = store.storeAndClaim.mock.calls[0]!;
      expect(items.map((i) => i.agent)).toEqual(['momentum', 'risk']);
      expect(claims.map((c) => c.corrId)).toEqual(['p3']);
    });

    it('is stored on its own PARK_MS after it was parked when no store comes to take it, and acked then', async () => {
      vi.useFakeTimers();
      try {
        const { intake, store } = setup();
        const m = inbound('p4', 'momentum');
        await intake.take([m.item]);
        await intake.take([inbound('p5', 'momentum').item]);
        await vi.advanceTimersByTimeAsync(PARK_MS - 1);
        expect(store.storeSignals).not.toHaveBeenCalled();
        await vi.advanceTimersByTimeAsync(1);
        expect(store.storeSignals).toHaveBeenCalledOnce();
        expect(store.storeSignals.mock.calls[0]![0].map((i) => i.corrId)).toEqual(['p4', 'p5']);
        await intake.settled();
        expect(m.src.ack).toHaveBeenCalledOnce();
      } finally {
        vi.useRealTimers();
      }
    });

    it('a signal whose source cannot wait (forwarded: its sender awaits the answer) is stored at once, with what was parked', async () => {
      const { intake, store } = setup();
      await intake.take([inbound('p6', 'momentum').item]);
      const forwarded = inbound('p7', 'momentum');
      const src = { ...forwarded.src, holdable: false };
      await intake.take([{ ...forwarded.item, source: src }]);
      expect(store.storeSignals).toHaveBeenCalledOnce();
      expect(store.storeSignals.mock.calls[0]![0].map((i) => i.corrId)).toEqual(['p6', 'p7']);
      expect(src.ack).toHaveBeenCalledOnce();
    });

    it('nothing is parked while Redis is down: the signals are held in memory at once, as before', async () => {
      const { intake, store, correlations } = setup({ redis: false });
      const m = inbound('p8', 'momentum');
      await intake.take([m.item]);
      await intake.settled();
      expect(store.storeSignals).not.toHaveBeenCalled();
      expect([...correlations.open.get('p8')!.unsynced.keys()]).toEqual(['momentum']);
    });
  });
});
