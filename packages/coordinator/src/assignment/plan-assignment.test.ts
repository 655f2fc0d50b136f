import { describe, expect, it } from 'vitest';
import { ConfigError } from '@at-orchestrator/contracts';
import { planAssignment, diffAssignment, type AssignmentInput, type AssignmentPlan } from './index.js';

const workers = (...ids: string[]) => ids.map((id) => ({ id }));
const countsOf = (plan: AssignmentPlan): Record<string, number> =>
  Object.fromEntries(plan.quotas.map((quota) => [quota.workerId, quota.quota]));

describe('planAssignment: bad input is a ConfigError that names the field', () => {
  const cases: { name: string; input: AssignmentInput; message: RegExp }[] = [
    { name: 'P = 0', input: { partitions: 0, workers: workers('a') }, message: /partitions must be an integer from 1 to 65536, got 0/ },
    { name: 'P < 0', input: { partitions: -4, workers: [] }, message: /partitions .* got -4/ },
    { name: 'P not an integer', input: { partitions: 1.5, workers: [] }, message: /partitions .* got 1.5/ },
    { name: 'P NaN', input: { partitions: Number.NaN, workers: [] }, message: /partitions .* got NaN/ },
    { name: 'P too large', input: { partitions: 65_537, workers: [] }, message: /got 65537/ },
    { name: 'duplicate worker id', input: { partitions: 4, workers: workers('a', 'b', 'a') }, message: /worker id "a" appears twice/ },
    { name: 'empty worker id', input: { partitions: 4, workers: workers('') }, message: /non-empty string/ },
    { name: 'capacity 0', input: { partitions: 4, workers: [{ id: 'a', capacity: 0 }] }, message: /worker "a" capacity must be a finite number > 0, got 0/ },
    { name: 'capacity < 0', input: { partitions: 4, workers: [{ id: 'a', capacity: -1 }] }, message: /got -1/ },
    { name: 'capacity NaN', input: { partitions: 4, workers: [{ id: 'a', capacity: Number.NaN }] }, message: /got NaN/ },
    { name: 'capacity ∞', input: { partitions: 4, workers: [{ id: 'a', capacity: Infinity }] }, message: /got Infinity/ },
    {
      name: 'current longer than P',
      input: { partitions: 2, workers: workers('a'), current: ['a', 'a', 'a'] },
      message: /current assignment has 3 entries but there are only 2 partitions/,
    },
    {
      name: 'pin out of range',
      input: { partitions: 4, workers: workers('a'), pins: [{ partition: 4, worker: 'a' }] },
      message: /pinned partition must be an integer from 0 to 3, got 4/,
    },
    {
      name: 'one partition pinned to two workers',
      input: {
        partitions: 4,
        workers: workers('a', 'b'),
        pins: [
          { partition: 1, worker: 'a' },
          { partition: 1, worker: 'b' },
        ],
      },
      message: /partition 1 is pinned to both "a" and "b"/,
    },
  ];
  it.each(cases)('$name', ({ input, message }) => {
    let caught: unknown;
    try {
      planAssignment(input);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).code).toBe('CONFIG_INVALID');
    expect((caught as ConfigError).message).toMatch(message);
  });

  it('accepts the same pin twice', () => {
    const pin = { partition: 1, worker: 'b' };
    expect(planAssignment({ partitions: 4, workers: workers('a', 'b'), pins: [pin, pin] }).target[1]).toBe('b');
  });
});

describe('planAssignment: examples', () => {
  it('P=64 over 3 workers, then a 4th joins: 16 moves, all to the newcomer, 16 each', () => {
    const three = planAssignment({ partitions: 64, workers: workers('w1', 'w2', 'w3') });
    expect(Object.values(countsOf(three)).sort()).toEqual([21, 21, 22]);
    const four = planAssignment({ partitions: 64, workers: workers('w1', 'w2', 'w3', 'w4'), current: three.target });
    expect(countsOf(four)).toEqual({ w1: 16, w2: 16, w3: 16, w4: 16 });
    expect(four.moves).toHaveLength(16);
    expect(four.moves.every((move) => move.to === 'w4' && move.from !== null)).toBe(true);
  });

  it('a partial or stale current assignment: live owners keep what fits, the rest is dealt out', () => {
    const plan = planAssignment({ partitions: 6, workers: workers('a', 'b'), current: ['a', 'gone', null, 'a'] });
    expect(plan.target[0]).toBe('a');
    expect(plan.target[3]).toBe('a');
    expect(countsOf(plan)).toEqual({ a: 3, b: 3 });
    expect(plan.moves.find((move) => move.partition === 1)).toMatchObject({ from: 'gone' });
    expect(plan.moves.filter((move) => move.from === null).map((move) => move.partition)).toEqual([2, 4, 5]);
  });

  it('no live worker: every partition is unowned, and what was owned is released', () => {
    const plan = planAssignment({ partitions: 3, workers: [], current: ['a', null, 'b'] });
    expect(plan.target).toEqual([null, null, null]);
    expect(plan.moves).toEqual([
      { partition: 0, from: 'a', to: null },
      { partition: 2, from: 'b', to: null },
    ]);
    expect(plan.quotas).toEqual([]);
  });

  it('every live worker draining: they all end with 0 and the partitions are released', () => {
    const plan = planAssignment({ partitions: 2, workers: workers('a', 'b'), current: ['a', 'b'], draining: ['b', 'a'] });
    expect(plan.target).toEqual([null, null]);
    expect(plan.quotas.map((quota) => [quota.workerId, quota.draining, quota.quota])).toEqual([
      ['a', true, 0],
      ['b', true, 0],
    ]);
  });

  it('a drain of a worker that is no longer live is ignored', () => {
    const plan = planAssignment({ partitions: 4, workers: workers('a'), draining: ['ghost'] });
    expect(countsOf(plan)).toEqual({ a: 4 });
  });

  it('weighted: capacities 1:2:5 over 16 partitions → exactly 2, 4, 10', () => {
    const plan = planAssignment({
      partitions: 16,
      workers: [
        { id: 'small', capacity: 1 },
        { id: 'mid', capacity: 2 },
        { id: 'big', capacity: 5 },
      ],
    });
    expect(countsOf(plan)).toEqual({ big: 10, mid: 4, small: 2 });
  });

  it('capacities are compared exactly: 0.1 : 0.2 : 0.3 splits 60 as 10 : 20 : 30 (floating point would not)', () => {
    // In doubles 60·0.1/(0.1+0.2+0.3) = 9.999999999999998; exact arithmetic sees the true 10.
    const plan = planAssignment({
      partitions: 60,
      workers: [
        { id: 'a', capacity: 0.1 },
        { id: 'b', capacity: 0.2 },
        { id: 'c', capacity: 0.3 },
      ],
    });
    expect(countsOf(plan)).toEqual({ a: 10, b: 20, c: 30 });
  });

  it('extreme capacity ratios do not lose precision', () => {
    const plan = planAssignment({
      partitions: 16,
      workers: [
        { id: 'tiny', capacity: 1e-300 },
        { id: 'huge', capacity: 1e300 },
      ],
    });
    expect(countsOf(plan)).toEqual({ huge: 16, tiny: 0 });
  });

  it('the +1 of the remainder stays with workers that already hold it (no needless move)', () => {
    // 10 over 3 → 4, 3, 3. Whoever holds 4 keeps it, whatever the hash would have preferred.
    const current = ['c', 'c', 'c', 'c', 'a', 'a', 'a', 'b', 'b', 'b'];
    const plan = planAssignment({ partitions: 10, workers: workers('a', 'b', 'c'), current });
    expect(plan.moves).toEqual([]);
    expect(countsOf(plan)).toEqual({ a: 3, b: 3, c: 4 });
  });

  it('a surplus is given up, only as much as needed', () => {
    const plan = planAssignment({ partitions: 8, workers: workers('a', 'b'), current: Array(8).fill('a') });
    expect(countsOf(plan)).toEqual({ a: 4, b: 4 });
    expect(plan.moves).toHaveLength(4);
    expect(plan.moves.every((move) => move.from === 'a' && move.to === 'b')).toBe(true);
  });
});

describe('planAssignment: pins (operator moves)', () => {
  const base = planAssignment({ partitions: 16, workers: workers('a', 'b', 'c', 'd') });

  it('a pin that fits within the quota moves the partition and costs the balance nothing', () => {
    const partition = base.target.findIndex((owner) => owner !== 'a');
    const plan = planAssignment({
      partitions: 16,
      workers: workers('a', 'b', 'c', 'd'),
      current: base.target,
      pins: [{ partition, worker: 'a' }],
    });
    expect(plan.target[partition]).toBe('a');
    expect(countsOf(plan)).toEqual({ a: 4, b: 4, c: 4, d: 4 });
    // One partition onto a, one of a's others back to the worker that lost one: 2 moves.
    expect(plan.moves).toHaveLength(2);
    expect(plan.quotas.find((quota) => quota.workerId === 'a')).toMatchObject({ pinned: 1, saturatedByPins: false });
  });

  it('a move that fits within the quota outlives its pin: dropping the pin moves nothing', () => {
    const partition = base.target.findIndex((owner) => owner !== 'a');
    const pinned = planAssignment({
      partitions: 16,
      workers: workers('a', 'b', 'c', 'd'),
      current: base.target,
      pins: [{ partition, worker: 'a' }],
    });
    const unpinned = planAssignment({ partitions: 16, workers: workers('a', 'b', 'c', 'd'), current: pinned.target });
    expect(unpinned.moves).toEqual([]);
    expect(unpinned.target[partition]).toBe('a');
  });

  it('pins beyond a fair share: that worker holds exactly its pins, the others split the rest evenly', () => {
    const pins = Array.from({ length: 10 }, (_, partition) => ({ partition, worker: 'a' }));
    const plan = planAssignment({ partitions: 16, workers: workers('a', 'b', 'c', 'd'), current: base.target, pins });
    expect(countsOf(plan)).toEqual({ a: 10, b: 2, c: 2, d: 2 });
    expect(plan.quotas.find((quota) => quota.workerId === 'a')).toMatchObject({ pinned: 10, saturatedByPins: true });
    expect(plan.target.slice(0, 10).every((owner) => owner === 'a')).toBe(true);
  });

  it('a pin onto a gone or draining worker is reported, not applied', () => {
    const plan = planAssignment({
      partitions: 4,
      workers: workers('a', 'b'),
      draining: ['b'],
      pins: [
        { partition: 3, worker: 'b' },
        { partition: 0, worker: 'ghost' },
      ],
    });
    expect(plan.unappliedPins).toEqual([
      { partition: 0, worker: 'ghost', reason: 'worker-not-live' },
      { partition: 3, worker: 'b', reason: 'worker-draining' },
    ]);
    expect(plan.target).toEqual(['a', 'a', 'a', 'a']);
  });
});

describe('diffAssignment', () => {
  it('lists the partitions whose owner changes; missing and undefined entries are unowned', () => {
    expect(diffAssignment(['a', undefined, 'b', 'c'], ['a', 'b', null])).toEqual([
      { partition: 1, from: null, to: 'b' },
      { partition: 2, from: 'b', to: null },
      { partition: 3, from: 'c', to: null },
    ]);
  });
});
