import { describe, expect, it } from 'vitest';
import { groupByPartition, ungroup } from './partition-groups.js';

describe('per-slot grouping (Redis Cluster batches)', () => {
  const items = [
    { id: 'a', partition: 3 },
    { id: 'b', partition: 7 },
    { id: 'c', partition: 3 },
    { id: 'd', partition: 1 },
    { id: 'e', partition: 7 },
  ];

  it('splits a batch by partition in order of first appearance, each item keeping its place', () => {
    const groups = groupByPartition(items, (i) => i.partition);
    expect(groups.map((g) => [g.partition, g.items.map((i) => i.id), g.indexes])).toEqual([
      [3, ['a', 'c'], [0, 2]],
      [7, ['b', 'e'], [1, 4]],
      [1, ['d'], [3]],
    ]);
    expect(groupByPartition([], (i: { partition: number }) => i.partition)).toEqual([]);
  });

  it('puts the per-partition replies back in batch order, one or several per item', () => {
    const groups = groupByPartition(items, (i) => i.partition);
    const replies = groups.map((g) => g.items.map((i) => `${i.id}!`));
    expect(ungroup(groups, replies, items.length)).toEqual(['a!', 'b!', 'c!', 'd!', 'e!']);
    const pairs = groups.map((g) => g.items.flatMap((i) => [`${i.id}1`, `${i.id}2`]));
    expect(ungroup(groups, pairs, items.length, 2)).toEqual(['a1', 'a2', 'b1', 'b2', 'c1', 'c2', 'd1', 'd2', 'e1', 'e2']);
  });
});
