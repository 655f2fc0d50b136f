import type { AssignmentTable, PartitionState } from '@at-orchestrator/contracts';

/** This worker's view of the assignment table, from the leader's broadcasts (newest version wins). */
export class AssignmentView {
  private version = -1;
  private leaderEpoch = -1;
  private readonly byPartition = new Map<number, PartitionState>();

  get tableVersion(): number {
    return this.version;
  }

  /** Applies a table if it is newer than what we have; returns whether it was applied. */
  apply(table: AssignmentTable): boolean {
    const newer = table.leader_epoch > this.leaderEpoch || (table.leader_epoch === this.leaderEpoch && table.version > this.version);
    if (!newer) return false;
    this.version = table.version;
    this.leaderEpoch = table.leader_epoch;
    this.byPartition.clear();
    for (const p of table.partitions) this.byPartition.set(p.partition, p);
    return true;
  }

  get(partition: number): PartitionState | undefined {
    return this.byPartition.get(partition);
  }

  /** The worker that owns a partition and can take signals for it now, if any. */
  ownerOf(partition: number): string | undefined {
    const p = this.byPartition.get(partition);
    return p !== undefined && p.phase === 'owned' && p.owner !== null ? p.owner : undefined;
  }

  entries(): IterableIterator<PartitionState> {
    return this.byPartition.values();
  }
}
