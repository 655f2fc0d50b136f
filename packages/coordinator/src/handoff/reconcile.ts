import type { PartitionState, WorkerHeartbeat } from '@at-orchestrator/contracts';
import { planAssignment, type AssignmentPlan, type PartitionMove, type PartitionPin } from '../assignment/index.js';

/**
 * `auto`: apply the whole plan (joins, leaves, drains, rebalancing).
 * `frozen`: move only what must move — partitions nobody owns (owner gone or never assigned), pinned
 * partitions (an operator's explicit `move`) and handoffs already under way. Used while an operator
 * paused rebalancing and while the leader has no NATS connection (a revoke could not reach anyone).
 */
export type ReconcileMode = 'auto' | 'frozen';

export interface ReconcileInput {
  readonly partitions: number;
  /** index = partition: the table in force. */
  readonly table: readonly PartitionState[];
  /** Live workers (heartbeat present) by id. */
  readonly live: ReadonlyMap<string, WorkerHeartbeat>;
  /** Workers an operator is draining; workers whose heartbeat says `draining` are added. */
  readonly drains: ReadonlySet<string>;
  /**
   * Live workers the leader refuses (another cluster protocol): planned like draining workers — never
   * given a partition, their own handed off to the others (cooperatively) as soon as another may take
   * them, kept meanwhile rather than handed to no one.
   */
  readonly refused?: ReadonlySet<string>;
  readonly pins: readonly PartitionPin[];
  /** Partitions being handed off right now (revoke sent, not yet committed to the new owner). */
  readonly inFlight: ReadonlySet<number>;
  /** Partitions whose stored epoch disagrees with their epoch key: their owner needs a new epoch. */
  readonly repair?: ReadonlySet<number>;
  readonly mode: ReconcileMode;
}

export interface Reconciliation {
  /** The full plan (what `plan` shows), computed with in-flight partitions at their destination. */
  readonly plan: AssignmentPlan;
  /**
   * Straight to a new epoch, no revoke: unowned partitions, partitions of a gone owner (`to` null only
   * when no worker may own partitions), and repairs (`from` = `to`: the owner gets a new epoch).
   */
  readonly reassign: readonly PartitionMove[];
  /** Live owner → another live worker, cooperatively (revoke → released → owned at a new epoch). */
  readonly handoffs: readonly PartitionMove[];
  /** Moves the plan wants that wait: frozen, or no other worker may take them. */
  readonly deferred: readonly PartitionMove[];
}

/**
 * Decides what the leader does this tick. Pure: the same inputs give the same decision. The planner
 * sees in-flight partitions (and revocations a previous leader left half done) at their destination,
 * so a tick never re-plans a partition that is already moving.
 */
export function reconcile(input: ReconcileInput): Reconciliation {
  const { live, table } = input;
  const current: (string | null)[] = new Array<string | null>(input.partitions).fill(null);
  const underway = new Set<number>();
  const handoffs: PartitionMove[] = [];
  const needsNewEpoch = new Set<number>();

  for (let partition = 0; partition < input.partitions; partition++) {
    const state = table[partition];
    if (state === undefined || state.phase === 'unowned' || state.owner === null) continue;
    const owner = state.owner;
    if (input.inFlight.has(partition)) {
      current[partition] = state.next ?? owner;
      underway.add(partition);
      continue;
    }
    if (state.phase === 'revoking') {
      const next = state.next ?? null;
      if (live.has(owner) && next !== null && next !== owner && live.has(next)) {
        // A previous term sent the revoke and did not finish: send it again (the worker answers it again).
        current[partition] = next;
        underway.add(partition);
        handoffs.push({ partition, from: owner, to: next });
        continue;
      }
      // The revoke may have been obeyed: whoever ends up with it needs a new epoch and an assign.
      if (live.has(owner)) needsNewEpoch.add(partition);
    } else if (input.repair?.has(partition) === true && live.has(owner)) {
      needsNewEpoch.add(partition);
    }
    current[partition] = owner;
  }

  const draining = new Set<string>();
  for (const [id, heartbeat] of live) if (heartbeat.draining || input.drains.has(id) || input.refused?.has(id) === true) draining.add(id);
  const plan = planAssignment({
    partitions: input.partitions,
    workers: [...live.values()].map((heartbeat) => ({ id: heartbeat.id, capacity: heartbeat.capacity })),
    current,
    draining,
    pins: input.pins,
  });

  const pinned = new Set(input.pins.map((pin) => pin.partition));
  const reassign: PartitionMove[] = [];
  const deferred: PartitionMove[] = [];
  for (const move of plan.moves) {
    if (underway.has(move.partition)) continue;
    const fromLive = move.from !== null && live.has(move.from);
    if (!fromLive) reassign.push(move);
    else if (move.to === null) deferred.push(move);
    else if (input.mode === 'frozen' && !pinned.has(move.partition)) deferred.push(move);
    else {
      handoffs.push(move);
      needsNewEpoch.delete(move.partition);
    }
  }
  for (const partition of needsNewEpoch) {
    const owner = current[partition] ?? null;
    reassign.push({ partition, from: owner, to: owner });
  }
  const byPartition = (a: PartitionMove, b: PartitionMove): number => a.partition - b.partition;
  return { plan, reassign: reassign.sort(byPartition), handoffs: handoffs.sort(byPartition), deferred };
}
