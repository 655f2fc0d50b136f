/*
 * Batches split by partition and put back together: on a Redis Cluster a script or pipeline may
 * touch one slot only, and a partition's keys share one (its `{p<n>}` hash tag).
 */

/** A batch's items of one partition, with their places in the batch. */
export interface PartitionGroup<T> {
  readonly partition: number;
  readonly items: T[];
  readonly indexes: number[];
}

/**
 * Splits a batch by partition, in order of first appearance, each item keeping its index: on a Redis
 * Cluster a script may touch one slot only, and a partition's keys share one (its `{p<n>}` hash tag).
 */
export function groupByPartition<T>(items: readonly T[], partitionOf: (item: T) => number): Array<PartitionGroup<T>> {
  const groups = new Map<number, PartitionGroup<T>>();
  items.forEach((item, index) => {
    const partition = partitionOf(item);
    let group = groups.get(partition);
    if (group === undefined) {
      group = { partition, items: [], indexes: [] };
      groups.set(partition, group);
    }
    group.items.push(item);
    group.indexes.push(index);
  });
  return [...groups.values()];
}

/** Puts per-group results (each in its group's order) back in batch order; `per` results per item. */
export function ungroup<T, R>(groups: ReadonlyArray<PartitionGroup<T>>, results: ReadonlyArray<readonly R[]>, size: number, per = 1): R[] {
  const out = new Array<R>(size * per);
  groups.forEach((group, g) => {
    const got = results[g]!;
    group.indexes.forEach((index, j) => {
      for (let k = 0; k < per; k++) out[index * per + k] = got[j * per + k]!;
    });
  });
  return out;
}
