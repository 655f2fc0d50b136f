import { describe, expect, it, vi, type Mock } from 'vitest';
import type { Counter, Gauge } from '@at-orchestrator/runtime';
import { Registry } from '@at-orchestrator/runtime';
import { SimpleEngine } from '../engines/index.js';
import { RETRY_DELAY_MS, type SignalSource } from '../ingest/signal-source.js';
import { WorkerMetrics } from '../metrics.js';
import { Correlations } from './correlations.js';
import { DecidedSet } from './decided-set.js';
import { FanInBuffer } from './fan-in-buffer.js';

type FakeSource = SignalSource & { ack: Mock<() => void>; nak: Mock<(delayMs?: number) => void>; hold: Mock<() => void> };

/** A JetStream message (holdable) or a forwarded signal whose sender awaits an answer (not holdable). */
function source(holdable = true): FakeSource {
  return { holdable, ack: vi.fn<() => void>(), nak: vi.fn<(delayMs?: number) => void>(), hold: vi.fn<() => void>() };
}

async function value(metric: Counter | Gauge): Promise<number> {
  return (await metric.get()).values[0]?.value ?? 0;
}

function setup() {
  // The gauges read the correlations when scraped, as in the worker.
  const metrics = new WorkerMetrics(new Registry(), {
    openPerPartition: () => correlations.countByPartition(),
    held: () => correlations.heldCount(),
    active: () => correlations.open.size,
  });
  const onFenced = vi.fn();
  const correlations: Correlations = new Correlations({
    open: new FanInBuffer(new SimpleEngine(['risk']), 2, 5_000),
    decided: new DecidedSet(100),
    metrics,
    onFenced,
  });
  return { correlations, metrics, onFenced };
}

describe('Correlations.giveBackFenced', () => {
  it('counts the fenced write, closes the correlation, gives its held sources back after RETRY_DELAY_MS and tells the owner', async () => {
    const { correlations, metrics, onFenced } = setup();
    const corr = correlations.open.create('c1', 7, 0);
    const held = [source(), source()];
    correlations.holdUnsynced(corr, 'momentum', '{}', held[0]!);
    correlations.holdUnsynced(corr, 'risk', '{}', held[1]!);

    correlations.giveBackFenced(corr, 12);

    expect(await value(metrics.fencedWrites)).toBe(1);
    expect(correlations.open.get('c1')).toBeUndefined();
    for (const h of held) {
      expect(h.nak).toHaveBeenCalledExactlyOnceWith(RETRY_DELAY_MS);
      expect(h.ack).not.toHaveBeenCalled();
    }
    expect(onFenced).toHaveBeenCalledExactlyOnceWith(7, 12);
    // Given back once: shutdown does not give them back a second time.
    expect(correlations.returnAllHeld()).toBe(0);
  });

  it('leaves a newer correlation with the same corr_id open', async () => {
    const { correlations, metrics, onFenced } = setup();
    const old = correlations.open.create('c1', 2, 0);
    const oldHeld = source();
    correlations.holdUnsynced(old, 'risk', '{}', oldHeld);
    const newer = correlations.open.create('c1', 2, 100);
    const newerHeld = source();
    correlations.holdUnsynced(newer, 'risk', '{}', newerHeld);

    correlations.giveBackFenced(old, 3);

    expect(correlations.open.get('c1')).toBe(newer);
    expect(oldHeld.nak).toHaveBeenCalledExactlyOnceWith(RETRY_DELAY_MS);
    expect(newerHeld.nak).not.toHaveBeenCalled();
    expect(onFenced).toHaveBeenCalledExactlyOnceWith(2, 3);
    expect(await value(metrics.fencedWrites)).toBe(1);
  });
});

describe('Correlations.settleDuplicate', () => {
  it('acks a second delivery when the original is already in Redis', async () => {
    const { correlations, metrics } = setup();
    const corr = correlations.open.create('c1', 0, 0);
    const dup = source();
    correlations.settleDuplicate(corr, 'risk', dup);
    expect(dup.ack).toHaveBeenCalledOnce();
    expect(dup.hold).not.toHaveBeenCalled();
    expect(corr.held).toHaveLength(0);
    expect(await value(metrics.heldMessages)).toBe(0);
  });

  it('holds a holdable second delivery while the original is only in memory, and counts it as held', async () => {
    const { correlations, metrics } = setup();
    const corr = correlations.open.create('c1', 0, 0);
    const original = source();
    correlations.holdUnsynced(corr, 'risk', '{"agent_name":"risk"}', original);
    const dup = source(true);

    correlations.settleDuplicate(corr, 'risk', dup);

    expect(dup.ack).not.toHaveBeenCalled();
    expect(dup.hold).not.toHaveBeenCalled();
    expect(corr.held).toEqual([original, dup]);
    expect(await value(metrics.heldMessages)).toBe(2);
  });

  it('asks a source that cannot wait to send again while the original is only in memory', () => {
    const { correlations } = setup();
    const corr = correlations.open.create('c1', 0, 0);
    correlations.holdUnsynced(corr, 'risk', '{}', source());
    const dup = source(false);

    correlations.settleDuplicate(corr, 'risk', dup);

    expect(dup.hold).toHaveBeenCalledOnce();
    expect(dup.ack).not.toHaveBeenCalled();
    expect(corr.held).not.toContain(dup);
  });
});

describe('Correlations.holdUnsynced and synced', () => {
  it('keeps the signal unsynced; a holdable source is held, one that cannot wait is asked again', () => {
    const { correlations } = setup();
    const corr = correlations.open.create('c1', 0, 0);
    const js = source(true);
    const forwarded = source(false);
    correlations.holdUnsynced(corr, 'risk', 'R', js);
    correlations.holdUnsynced(corr, 'momentum', 'M', forwarded);

    expect([...corr.unsynced]).toEqual([
      ['risk', 'R'],
      ['momentum', 'M'],
    ]);
    expect(corr.held).toEqual([js]);
    expect(forwarded.hold).toHaveBeenCalledOnce();
    expect(js.hold).not.toHaveBeenCalled();
  });

  it('acks the held sources once Redis has the signals, and later duplicates are acked directly', () => {
    const { correlations } = setup();
    const corr = correlations.open.create('c1', 0, 0);
    const held = [source(), source()];
    correlations.holdUnsynced(corr, 'risk', '{}', held[0]!);
    correlations.settleDuplicate(corr, 'risk', held[1]!);

    correlations.synced(corr);

    for (const h of held) {
      expect(h.ack).toHaveBeenCalledOnce();
      expect(h.nak).not.toHaveBeenCalled();
    }
    expect(corr.unsynced.size).toBe(0);
    expect(corr.held).toHaveLength(0);
    const dup = source();
    correlations.settleDuplicate(corr, 'risk', dup);
    expect(dup.ack).toHaveBeenCalledOnce();
    correlations.synced(corr);
    for (const h of held) expect(h.ack).toHaveBeenCalledOnce();
  });
});

describe('Correlations.decidedBefore', () => {
  it('closes the correlation and records it as decided with the agents Redis names', () => {
    const { correlations } = setup();
    const corr = correlations.open.create('c1', 0, 0);
    correlations.decidedBefore(corr, ['momentum', 'risk']);
    expect(correlations.open.get('c1')).toBeUndefined();
    expect(correlations.decided.agents('c1')).toEqual(['momentum', 'risk']);
  });

  it('keeps what the decided set already knows about the correlation', () => {
    const { correlations } = setup();
    correlations.decided.add('c1', ['momentum', 'news', 'risk']);
    const corr = correlations.open.create('c1', 0, 0);
    correlations.decidedBefore(corr, ['risk']);
    expect(correlations.decided.agents('c1')).toEqual(['momentum', 'news', 'risk']);
  });

  it('leaves a newer correlation with the same corr_id open', () => {
    const { correlations } = setup();
    const old = correlations.open.create('c1', 0, 0);
    const newer = correlations.open.create('c1', 0, 10);
    correlations.decidedBefore(old, ['risk']);
    expect(correlations.open.get('c1')).toBe(newer);
    expect(correlations.decided.has('c1')).toBe(true);
  });
});

describe('Correlations held counts', () => {
  it('returnAllHeld gives every held source back and says how many', () => {
    const { correlations } = setup();
    const a = correlations.open.create('a', 0, 0);
    const b = correlations.open.create('b', 1, 0);
    correlations.open.create('empty', 2, 0);
    const held = [source(), source(), source()];
    correlations.holdUnsynced(a, 'risk', '{}', held[0]!);
    correlations.holdUnsynced(a, 'momentum', '{}', held[1]!);
    correlations.holdUnsynced(b, 'risk', '{}', held[2]!);

    expect(correlations.returnAllHeld()).toBe(3);
    for (const h of held) {
      expect(h.nak).toHaveBeenCalledOnce();
      expect(h.ack).not.toHaveBeenCalled();
    }
    expect(correlations.returnAllHeld()).toBe(0);
  });

  it('the held gauge reads the sources held across open correlations when scraped', async () => {
    const { correlations, metrics } = setup();
    const a = correlations.open.create('a', 0, 0);
    const b = correlations.open.create('b', 0, 0);
    correlations.holdUnsynced(a, 'risk', '{}', source());
    correlations.holdUnsynced(b, 'risk', '{}', source());
    correlations.holdUnsynced(b, 'momentum', '{}', source());
    correlations.holdUnsynced(b, 'news', '{}', source(false)); // asked again, not held

    expect(await value(metrics.heldMessages)).toBe(3);

    correlations.synced(b);
    expect(await value(metrics.heldMessages)).toBe(1);
  });

  it('the active gauge and countByPartition report the open correlations', async () => {
    const { correlations, metrics } = setup();
    correlations.open.create('a', 4, 0);
    correlations.open.create('b', 4, 0);
    const c = correlations.open.create('c', 9, 0);
    correlations.drop(c);

    expect(await value(metrics.activeCorrelations)).toBe(2);
    expect([...correlations.countByPartition()]).toEqual([[4, 2]]);
  });
});
