import { describe, expect, it } from 'vitest';
import { describePlan, formatPlan, planAssignment } from './index.js';
import { compactRanges } from './describe-plan.js';

describe('describePlan / formatPlan (the CLI `plan` dry run)', () => {
  // 8 partitions: a holds 0-3, b holds 4-5, w-old (no longer live) held 6-7; b is drained, c joined.
  const plan = planAssignment({
    partitions: 8,
    workers: [{ id: 'a' }, { id: 'b' }, { id: 'c' }],
    current: ['a', 'a', 'a', 'a', 'b', 'b', 'w-old', 'w-old'],
    draining: ['b'],
    pins: [{ partition: 0, worker: 'nobody' }],
  });

  it('gives every worker its before/after counts and the partitions it gains and loses', () => {
    const rows = describePlan(plan);
    expect(rows.map((row) => [row.workerId, row.status, row.before, row.after])).toEqual([
      ['a', 'live', 4, 4],
      ['b', 'draining', 2, 0],
      ['c', 'live', 0, 4],
      ['w-old', 'gone', 2, 0],
    ]);
    expect(rows.find((row) => row.workerId === 'c')?.gains).toEqual([4, 5, 6, 7]);
    expect(rows.find((row) => row.workerId === 'b')?.losses).toEqual([4, 5]);
    // Every move appears once as a gain and once as a loss.
    expect(rows.flatMap((row) => row.gains)).toHaveLength(plan.moves.length);
    expect(rows.flatMap((row) => row.losses)).toHaveLength(plan.moves.length);
  });

  it('prints one line per worker, partition runs compacted, and the pins it could not apply', () => {
    expect(formatPlan(plan)).toBe(
      [
        '4 partitions move (P=8, 3 live workers)',
        'a             4 → 4',
        'b (draining)  2 → 0  −2 [4-5]',
        'c             0 → 4  +4 [4-7]',
        'w-old (gone)  2 → 0  −2 [6-7]',
        'pin 0 → nobody not applied: worker not live',
      ].join('\n'),
    );
  });

  it('compacts runs of partitions', () => {
    expect(compactRanges([])).toBe('');
    expect(compactRanges([5])).toBe('5');
    expect(compactRanges([0, 1, 2, 3, 9, 12, 13])).toBe('0-3, 9, 12-13');
  });
});
