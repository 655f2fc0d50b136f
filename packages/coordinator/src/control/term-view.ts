import type { PartitionState } from '@at-orchestrator/contracts';
import type { Reconciliation } from '../handoff/reconcile.js';
import type { LiveWorker } from '../membership/membership.js';

/**
 * What the control API sees of a leader term: reads only, so that an operator's request cannot
 * change the term's state except through the operator settings and the commands in TermCommands.
 */
export interface TermView {
  readonly coordinatorId: string;
  readonly leaderEpoch: number;
  /** False once the term ended: an answer then would speak for a leader that is no more. */
  readonly leading: boolean;
  /** How many partitions the cluster has (0 to partitionCount - 1). */
  readonly partitionCount: number;
  /** index = partition: the table in force. */
  readonly table: readonly PartitionState[];
  readonly tableVersion: number;
  /** The live workers as the last tick read them. */
  readonly live: ReadonlyMap<string, LiveWorker>;
  readonly natsConnected: boolean;
  readonly handoffsInFlight: number;
  /** Partitions per owner in the table, every live worker included (a revoking partition counts for its old owner). */
  ownerCounts(): ReadonlyMap<string, number>;
  /** Partitions a worker owns or is about to own (revoking onto it). */
  holds(workerId: string): number;
  /** What a tick in `auto` mode would decide now; acts on nothing. */
  preview(): Reconciliation;
  /** The live workers read from Redis now (the last tick's list may be a heartbeat old). */
  readLive(): Promise<ReadonlyMap<string, LiveWorker>>;
}

/** The term's state changes an operator may ask for besides the operator settings. */
export interface TermCommands {
  /** Runs a tick in `auto` mode now, after any tick under way; undefined when the term ended meanwhile. */
  rebalance(): Promise<Reconciliation | undefined>;
  /** Asks for a tick now instead of at the next interval. */
  requestTick(): void;
}
