import { describe, expect, it } from 'vitest';
import type { PartitionState, WorkerHeartbeat } from '@at-orchestrator/contracts';
import { reconcile, type ReconcileInput } from './reconcile.js';

const P = 6;

function hb(id: string, extra: Partial<WorkerHeartbeat> = {}): WorkerHeartbeat {
  return { id, capacity: 1, load: 0, version: 't', draining: false, started_at: '2026-01-01T00:00:00Z', owned: [], ...extra };
}
function live(...workers: WorkerHeartbeat[]): Map<string, WorkerHeartbeat> {
  return new Map(workers.map((w) => [w.id, w]));
}
/** owners like "aabbcc": partition p owned by worker owners[p] at epoch 3 ('-' = unowned). */
function table(owners: string, overrides: Record<number, Partial<PartitionState>> = {}): PartitionState[] {
  return [...owners].map((o, partition) => ({
    partition,
    owner: o === '-' ? null : o,
    epoch: 3,
    phase: o === '-' ? 'unowned' : 'owned',
    ...overrides[partition],
  }));
}
function input(overrides: Partial<ReconcileInput>): ReconcileInput {
  return { partitions: P, table: table('------'), live: live(), drains: new Set(), pins: [], inFlight: new Set(), mode: 'auto', ...overrides };
}

describe('reconcile', () => {
  it('assigns every unowned partition straight away (no revoke), balanced', () => {
    const r = reconcile(input({ live: live(hb('a'), hb('b'), hb('c')) }));
    expect(r.handoffs).toEqual([]);
    expect(r.reassign).toHaveLength(P);
    expect(r.reassign.every((m) => m.from === null && m.to !== null)).toBe(true);
    const counts = new Map<string, number>();
    for (const m of r.reassign) counts.set(m.to!, (counts.get(m.to!) ?? 0) + 1);
    expect([...counts.values()]).toEqual([2, 2, 2]);
  });

  it('a join moves only the surplus, cooperatively; frozen, it waits', () => {
    const base = input({ table: table('aaabbb'), live: live(hb('a'), hb('b'), hb('c')) });
    const r = reconcile(base);
    expect(r.reassign).toEqual([]);
    expect(r.handoffs).toHaveLength(2);
    expect(r.handoffs.every((m) => m.to === 'c' && (m.from === 'a' || m.from === 'b'))).toBe(true);
    const frozen = reconcile({ ...base, mode: 'frozen' });
    expect(frozen.handoffs).toEqual([]);
    expect(frozen.reassign).toEqual([]);
    expect(frozen.deferred).toEqual(r.handoffs);
  });

  it('a gone owner\'s partitions are reassigned at once, even frozen', () => {
    const r = reconcile(input({ table: table('aabbcc'), live: live(hb('a'), hb('c')), mode: 'frozen' }));
    expect(r.handoffs).toEqual([]);
    expect(r.reassign.map((m) => [m.partition, m.from])).toEqual([
      [2, 'b'],
      [3, 'b'],
    ]);
    expect(new Set(r.reassign.map((m) => m.to))).toEqual(new Set(['a', 'c']));
  });

  it('with nobody left, a gone owner\'s partitions become unowned; a live owner keeps them rather than revoke into nothing', () => {
    const gone = reconcile(input({ table: table('aabbcc'), live: live() }));
    expect(gone.reassign.every((m) => m.to === null)).toBe(true);
    expect(gone.reassign).toHaveLength(P);
    const drained = reconcile(input({ table: table('aaaaaa'), live: live(hb('a')), drains: new Set(['a']) }));
    expect(drained.reassign).toEqual([]);
    expect(drained.handoffs).toEqual([]);
    expect(drained.deferred).toHaveLength(P);
  });

  it('drains (operator or heartbeat) hand every partition off', () => {
    const operator = reconcile(input({ table: table('aabbcc'), live: live(hb('a'), hb('b'), hb('c')), drains: new Set(['b']) }));
    expect(operator.handoffs.map((m) => [m.partition, m.from])).toEqual([
      [2, 'b'],
      [3, 'b'],
    ]);
    const self = reconcile(input({ table: table('aabbcc'), live: live(hb('a'), hb('b', { draining: true }), hb('c')) }));
    expect(self.handoffs).toEqual(operator.handoffs);
  });

  it('never re-plans a partition in flight; plans as if it had arrived', () => {
    const t = table('aaaaab', { 0: { phase: 'revoking', next: 'b' }, 1: { phase: 'revoking', next: 'b' } });
    const r = reconcile(input({ table: t, live: live(hb('a'), hb('b')), inFlight: new Set([0, 1]) }));
    expect(r.handoffs).toEqual([]);
    expect(r.reassign).toEqual([]);
    expect(r.plan.target[0]).toBe('b');
  });

  it('finishes a revocation a previous leader left half done', () => {
    const t = table('aaaabb', { 0: { phase: 'revoking', next: 'b' } });
    // Both alive: send the revoke again.
    const resumed = reconcile(input({ table: t, live: live(hb('a'), hb('b')), mode: 'frozen' }));
    expect(resumed.handoffs).toEqual([{ partition: 0, from: 'a', to: 'b' }]);
    // The next owner is gone: the old owner may have released it, so it gets it back at a new epoch.
    const back = reconcile(input({ table: table('aaabbb', { 0: { phase: 'revoking', next: 'x' } }), live: live(hb('a'), hb('b')) }));
    expect(back.reassign).toEqual([{ partition: 0, from: 'a', to: 'a' }]);
    // The old owner is gone: an orphan like any other.
    const orphan = reconcile(input({ table: table('aaabbb', { 0: { phase: 'revoking', next: 'b' } }), live: live(hb('b'), hb('c')) }));
    expect(orphan.reassign.find((m) => m.partition === 0)?.from).toBe('a');
    expect(orphan.handoffs.find((m) => m.partition === 0)).toBeUndefined();
  });

  it('a pinned partition moves even frozen; the rest of the rebalance waits', () => {
    const r = reconcile(input({ table: table('aabbcc'), live: live(hb('a'), hb('b'), hb('c')), pins: [{ partition: 0, worker: 'c' }], mode: 'frozen' }));
    expect(r.handoffs).toEqual([{ partition: 0, from: 'a', to: 'c' }]);
    expect(r.deferred.length).toBeGreaterThan(0);
  });

  it('repairs give the owner a new epoch in place', () => {
    const r = reconcile(input({ table: table('aabbcc'), live: live(hb('a'), hb('b'), hb('c')), repair: new Set([4]) }));
    expect(r.reassign).toEqual([{ partition: 4, from: 'c', to: 'c' }]);
    expect(r.handoffs).toEqual([]);
  });

  it('is deterministic: workers in any order give the same decision', () => {
    const a = reconcile(input({ table: table('aaa---'), live: live(hb('a'), hb('b'), hb('c')) }));
    const b = reconcile(input({ table: table('aaa---'), live: live(hb('c'), hb('a'), hb('b')) }));
    expect(b).toEqual(a);
  });

  describe('workers of another cluster protocol (refused)', () => {
    it.each([
      {
        name: 'a refused worker that joins gets nothing',
        owners: 'aaabbb',
        live: ['a', 'b', 'x'],
        refused: ['x'],
        mode: 'auto' as const,
        handoffs: [],
        reassign: [],
        deferred: [],
      },
      {
        name: 'unowned partitions go to the accepted workers only',
        owners: '------',
        live: ['a', 'x'],
        refused: ['x'],
        mode: 'auto' as const,
        handoffs: [],
        reassign: [0, 1, 2, 3, 4, 5].map((p) => [p, null, 'a']),
        deferred: [],
      },
      {
        name: 'a refused owner hands its partitions to accepted workers, cooperatively',
        owners: 'aaaxxx',
        live: ['a', 'b', 'x'],
        refused: ['x'],
        mode: 'auto' as const,
        handoffs: [
          [3, 'x', 'b'],
          [4, 'x', 'b'],
          [5, 'x', 'b'],
        ],
        reassign: [],
        deferred: [],
      },
      {
        name: 'with no accepted worker, refused owners keep what they own (never handed to no one)',
        owners: 'xxxyyy',
        live: ['x', 'y'],
        refused: ['x', 'y'],
        mode: 'auto' as const,
        handoffs: [],
        reassign: [],
        deferred: [0, 1, 2, 3, 4, 5].map((p) => [p, p < 3 ? 'x' : 'y', null]),
      },
      {
        name: 'with no accepted worker, unowned partitions stay unowned',
        owners: 'xxx---',
        live: ['x'],
        refused: ['x'],
        mode: 'auto' as const,
        handoffs: [],
        reassign: [],
        deferred: [0, 1, 2].map((p) => [p, 'x', null]),
      },
      {
        name: 'frozen (paused), a refused owner keeps its partitions like a draining one',
        owners: 'aaaxxx',
        live: ['a', 'x'],
        refused: ['x'],
        mode: 'frozen' as const,
        handoffs: [],
        reassign: [],
        deferred: [3, 4, 5].map((p) => [p, 'x', 'a']),
      },
      {
        name: 'the partitions of a refused worker that died are orphans like any other',
        owners: 'aaaxxx',
        live: ['a'],
        refused: [],
        mode: 'frozen' as const,
        handoffs: [],
        reassign: [3, 4, 5].map((p) => [p, 'x', 'a']),
        deferred: [],
      },
    ])('$name', ({ owners, live: ids, refused, mode, handoffs, reassign, deferred }) => {
      const r = reconcile(input({ table: table(owners), live: live(...ids.map((id) => hb(id))), refused: new Set(refused), mode }));
      const triples = (moves: readonly { partition: number; from: string | null; to: string | null }[]): unknown[] => moves.map((m) => [m.partition, m.from, m.to]);
      expect(triples(r.handoffs)).toEqual(handoffs);
      expect(triples(r.reassign)).toEqual(reassign);
      expect(triples(r.deferred)).toEqual(deferred);
      for (const id of refused) expect(r.plan.target.filter((owner) => owner === id).length).toBeLessThanOrEqual([...owners].filter((o) => o === id).length);
    });

    it('a refused worker is never a target of the plan once an accepted worker can take its share', () => {
      const r = reconcile(input({ table: table('xxxxxx'), live: live(hb('a'), hb('x')), refused: new Set(['x']) }));
      expect(r.plan.target.every((owner) => owner === 'a')).toBe(true);
    });
  });
});

