import { ClusterKeys, RedisKeys } from '@at-orchestrator/contracts';

/**
 * The Redis keys of the control plane: the shared ones from contracts (which workers read too) and
 * the few that only coordinators read, kept under `<prefix>:{cluster}:coordinator:` and
 * `<prefix>:{cluster}:assignment:` (the cluster-wide hash tag, like the lease they are written under).
 */
export class CoordinatorKeys extends ClusterKeys {
  readonly state: RedisKeys;

  constructor(prefix = 'orchestrator', partitions?: number) {
    super(prefix);
    this.state = new RedisKeys(prefix, partitions);
  }

  /** The assignment table's version (INCR on every change), beside the hash of partition states. */
  assignmentVersion(): string {
    return `${this.base}:assignment:version`;
  }

  /** Set of worker ids an operator is draining (`drain <worker>`), so that a new leader remembers. */
  draining(): string {
    return `${this.base}:coordinator:draining`;
  }

  /** Hash partition → worker id: operator pins (`move <partition> <worker>`). */
  pins(): string {
    return `${this.base}:coordinator:pins`;
  }

  /** A coordinator's presence (JSON CoordinatorPresence) with a PX lease: how the console lists standbys. */
  presence(coordinatorId: string): string {
    return `${this.base}:presence:coordinator:${coordinatorId}`;
  }

  /** The ids of coordinators that announced themselves (read like the worker index, never scanned). */
  presenceIndex(): string {
    return `${this.base}:presence:coordinators`;
  }

  /** The per-partition owner epoch (fencing token); the worker's emit path checks it. */
  partitionEpoch(partition: number): string {
    return this.state.epoch(partition);
  }

  /** The newest leader epoch a partition's slot has seen (per-slot fencing, Redis Cluster). */
  partitionLeaderEpoch(partition: number): string {
    return this.state.leaderEpoch(partition);
  }
}
