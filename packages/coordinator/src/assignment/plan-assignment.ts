import { ConfigError } from '@at-orchestrator/contracts';
import { rendezvousWeight, workerHashKey, murmur3x86_32 } from './murmur3.js';
import { decideQuotas, scaleCapacities, type QuotaCandidate } from './quotas.js';

/**
 * The partition count is fixed for a cluster's life and each partition costs a pull consumer, so a count
 * above this is a typo; the bound also keeps a plan's arrays small.
 */
export const MAX_PARTITIONS = 65_536;

/** A live worker (its heartbeat has not expired). */
export interface WorkerCapacity {
  readonly id: string;
  /** Relative capacity, finite and > 0; default 1. Only ratios between workers matter. */
  readonly capacity?: number;
}

/** An operator's `move <partition> <worker>`: the partition stays on that worker while the pin is kept. */
export interface PartitionPin {
  readonly partition: number;
  readonly worker: string;
}

export interface AssignmentInput {
  /** P, the number of hash partitions: an integer from 1 to MAX_PARTITIONS. */
  readonly partitions: number;
  /** The live workers, in any order. */
  readonly workers: readonly WorkerCapacity[];
  /**
   * The assignment in force: index = partition, value = owner id, or null/undefined when unowned.
   * An owner that is not among `workers` is treated as gone. Shorter than `partitions` (or absent)
   * means the missing partitions are unowned.
   */
  readonly current?: readonly (string | null | undefined)[];
  /** Live workers being drained: they end with 0 partitions. Ids of workers no longer live are ignored. */
  readonly draining?: Iterable<string>;
  /** Pinned partitions (operator moves). A pin onto a gone or draining worker is reported, not applied. */
  readonly pins?: readonly PartitionPin[];
}

/** One partition changing hands. `from` is the owner recorded in `current` (possibly a gone worker). */
export interface PartitionMove {
  readonly partition: number;
  readonly from: string | null;
  /** Null only when no worker may own partitions (none live, or every live one draining). */
  readonly to: string | null;
}

export interface WorkerQuota {
  readonly workerId: string;
  readonly capacity: number;
  readonly draining: boolean;
  /** Partitions pinned onto this worker (applied pins only). */
  readonly pinned: number;
  /** Pinned at or beyond its proportional share: holds exactly its pins, and the rest is split without it. */
  readonly saturatedByPins: boolean;
  /** Partitions it holds in the target assignment. */
  readonly quota: number;
}

export interface UnappliedPin extends PartitionPin {
  readonly reason: 'worker-not-live' | 'worker-draining';
}

export interface AssignmentPlan {
  readonly partitions: number;
  /** index = partition → owner; null only when no worker may own partitions. */
  readonly target: readonly (string | null)[];
  /** Partitions whose owner changes, by ascending partition; equal to diffAssignment(current, target). */
  readonly moves: readonly PartitionMove[];
  /** Every live worker, sorted by id. */
  readonly quotas: readonly WorkerQuota[];
  readonly unappliedPins: readonly UnappliedPin[];
}

/** Seed of the worker-id hash that breaks ties for remainder seats (any fixed value; this one is 2^32/φ). */
const SEAT_SEED = 0x9e3779b9;
const EMPTY_KEY = new Uint8Array(0);

/**
 * Plans the sticky, balanced assignment of `partitions` hash partitions to the live workers.
 *
 * Pure and deterministic: the same inputs, with workers, drains and pins in any order, give the same
 * plan on every replica. Throws ConfigError (code CONFIG_INVALID) when an input is malformed; the
 * message names the field. See docs/assignment.md for the algorithm and its guarantees.
 */
export function planAssignment(input: AssignmentInput): AssignmentPlan {
  const partitions = validatePartitions(input.partitions);
  const workers = validateWorkers(input.workers);
  const current = validateCurrent(input.current, partitions);
  const liveIds = new Set(workers.map((worker) => worker.id));
  const draining = new Set<string>();
  for (const id of input.draining ?? []) if (liveIds.has(id)) draining.add(id);
  const { pinOwner, unappliedPins } = resolvePins(input.pins ?? [], partitions, liveIds, draining);

  // Workers that may own partitions, sorted by id (validateWorkers sorted them): the index order is the
  // final tie-break everywhere below.
  const eligible = workers.filter((worker) => !draining.has(worker.id));
  const eligibleIndex = new Map(eligible.map((worker, i) => [worker.id, i]));
  const target: (string | null)[] = new Array<string | null>(partitions).fill(null);

  const pinned = eligible.map(() => 0);
  let decisions: { quota: number; saturatedByPins: boolean }[] = [];
  if (eligible.length > 0) {
    const keys = eligible.map((worker) => workerHashKey(worker.id));
    // Pinned partitions go to their pin; every other partition stays, for now, with its current owner
    // if that owner may own partitions.
    const held: number[][] = eligible.map(() => []);
    for (let p = 0; p < partitions; p++) {
      const pinnedTo = pinOwner[p];
      if (pinnedTo !== undefined) {
        const i = eligibleIndex.get(pinnedTo);
        if (i !== undefined) pinned[i] = (pinned[i] ?? 0) + 1;
        target[p] = pinnedTo;
        continue;
      }
      const owner = current[p];
      const i = owner == null ? undefined : eligibleIndex.get(owner);
      if (i !== undefined) held[i]?.push(p);
    }

    const scaled = scaleCapacities(eligible.map((worker) => worker.capacity));
    const candidates: QuotaCandidate[] = eligible.map((worker, i) => ({
      id: worker.id,
      scaledCapacity: scaled[i] ?? 1n,
      pinned: pinned[i] ?? 0,
      keepable: (pinned[i] ?? 0) + (held[i]?.length ?? 0),
      seatWeight: murmur3x86_32(keys[i] ?? EMPTY_KEY, SEAT_SEED),
    }));
    decisions = decideQuotas(candidates, partitions);

    // Each worker keeps what it holds up to its quota; the rest, with every unowned partition, is dealt.
    const room = eligible.map((worker, i) => {
      const allowance = (decisions[i]?.quota ?? 0) - (pinned[i] ?? 0);
      const kept = keepWithinAllowance(held[i] ?? [], allowance, keys[i] ?? EMPTY_KEY);
      for (const p of kept) target[p] = worker.id;
      return allowance - kept.length;
    });
    dealOrphans(target, eligible, keys, room);
  }

  const quotas: WorkerQuota[] = workers.map((worker) => {
    const i = eligibleIndex.get(worker.id);
    const decision = i === undefined ? undefined : decisions[i];
    return {
      workerId: worker.id,
      capacity: worker.capacity,
      draining: draining.has(worker.id),
      pinned: i === undefined ? 0 : (pinned[i] ?? 0),
      saturatedByPins: decision?.saturatedByPins ?? false,
      quota: decision?.quota ?? 0,
    };
  });

  return { partitions, target, moves: diffAssignment(current, target), quotas, unappliedPins };
}

/**
 * What a worker keeps of the unpinned partitions it holds: all of them if they fit its allowance (quota
 * minus pins), else the `allowance` with the highest rendezvous weight for it. It gives up the ones it
 * is least "natural" for, so the assignment drifts towards the pure rendezvous one rather than away.
 */
function keepWithinAllowance(held: readonly number[], allowance: number, key: Uint8Array): readonly number[] {
  if (held.length <= allowance) return held;
  return held
    .map((partition) => ({ partition, weight: rendezvousWeight(partition, key) }))
    .sort((a, b) => b.weight - a.weight || a.partition - b.partition)
    .slice(0, Math.max(0, allowance))
    .map(({ partition }) => partition);
}

/**
 * Gives every unowned partition of `target` (never owned, owner gone or draining, or given up) to a
 * worker with room left, in ascending partition order: to the one with the highest rendezvous weight
 * for it, equal weights to the smaller id (`eligible` is sorted by id). Σ room = number of orphans.
 */
function dealOrphans(
  target: (string | null)[],
  eligible: readonly { id: string }[],
  keys: readonly Uint8Array[],
  room: number[],
): void {
  const open = eligible.map((_, i) => i).filter((i) => (room[i] ?? 0) > 0);
  for (let p = 0; p < target.length && open.length > 0; p++) {
    if (target[p] !== null) continue;
    let best = -1;
    let bestWeight = -1;
    let bestSlot = -1;
    for (let slot = 0; slot < open.length; slot++) {
      const i = open[slot] ?? 0;
      const weight = rendezvousWeight(p, keys[i] ?? EMPTY_KEY);
      if (weight > bestWeight) {
        best = i;
        bestWeight = weight;
        bestSlot = slot;
      }
    }
    target[p] = eligible[best]?.id ?? null;
    room[best] = (room[best] ?? 0) - 1;
    if (room[best] === 0) open.splice(bestSlot, 1);
  }
}

/**
 * The moves that turn `current` into `target`, by ascending partition. Entries missing from either
 * array, and undefined entries, count as unowned.
 */
export function diffAssignment(
  current: readonly (string | null | undefined)[],
  target: readonly (string | null | undefined)[],
): PartitionMove[] {
  const moves: PartitionMove[] = [];
  const length = Math.max(current.length, target.length);
  for (let partition = 0; partition < length; partition++) {
    const from = current[partition] ?? null;
    const to = target[partition] ?? null;
    if (from !== to) moves.push({ partition, from, to });
  }
  return moves;
}

function validatePartitions(partitions: number): number {
  if (!Number.isSafeInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
    throw new ConfigError(
      `assignment: partitions must be an integer from 1 to ${MAX_PARTITIONS}, got ${String(partitions)}`,
    );
  }
  return partitions;
}

/** Validated workers with their capacity filled in, sorted by id (UTF-16 code units, not locale). */
function validateWorkers(workers: readonly WorkerCapacity[]): { id: string; capacity: number }[] {
  const seen = new Set<string>();
  const result = workers.map((worker) => {
    const { id } = worker;
    if (typeof id !== 'string' || id.length === 0) {
      throw new ConfigError(`assignment: a worker id must be a non-empty string, got ${JSON.stringify(id)}`);
    }
    if (seen.has(id)) throw new ConfigError(`assignment: worker id ${JSON.stringify(id)} appears twice`);
    seen.add(id);
    const capacity = worker.capacity ?? 1;
    if (typeof capacity !== 'number' || !Number.isFinite(capacity) || capacity <= 0) {
      throw new ConfigError(
        `assignment: worker ${JSON.stringify(id)} capacity must be a finite number > 0, got ${String(capacity)}`,
      );
    }
    return { id, capacity };
  });
  return result.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function validateCurrent(
  current: readonly (string | null | undefined)[] | undefined,
  partitions: number,
): (string | null)[] {
  const given = current ?? [];
  if (given.length > partitions) {
    throw new ConfigError(
      `assignment: current assignment has ${given.length} entries but there are only ${partitions} partitions`,
    );
  }
  const result = new Array<string | null>(partitions).fill(null);
  given.forEach((owner, p) => {
    if (owner == null) return;
    if (typeof owner !== 'string') {
      throw new ConfigError(`assignment: current owner of partition ${p} must be a worker id or null`);
    }
    result[p] = owner;
  });
  return result;
}

function resolvePins(
  pins: readonly PartitionPin[],
  partitions: number,
  liveIds: ReadonlySet<string>,
  draining: ReadonlySet<string>,
): { pinOwner: (string | undefined)[]; unappliedPins: UnappliedPin[] } {
  const requested = new Map<number, string>();
  for (const { partition, worker } of pins) {
    if (!Number.isSafeInteger(partition) || partition < 0 || partition >= partitions) {
      throw new ConfigError(
        `assignment: pinned partition must be an integer from 0 to ${partitions - 1}, got ${String(partition)}`,
      );
    }
    if (typeof worker !== 'string' || worker.length === 0) {
      throw new ConfigError(`assignment: partition ${partition} is pinned to an empty worker id`);
    }
    const earlier = requested.get(partition);
    if (earlier !== undefined && earlier !== worker) {
      throw new ConfigError(
        `assignment: partition ${partition} is pinned to both ${JSON.stringify(earlier)} and ${JSON.stringify(worker)}`,
      );
    }
    requested.set(partition, worker);
  }
  const pinOwner = new Array<string | undefined>(partitions).fill(undefined);
  const unappliedPins: UnappliedPin[] = [];
  for (const [partition, worker] of [...requested].sort((a, b) => a[0] - b[0])) {
    if (!liveIds.has(worker)) unappliedPins.push({ partition, worker, reason: 'worker-not-live' });
    else if (draining.has(worker)) unappliedPins.push({ partition, worker, reason: 'worker-draining' });
    else pinOwner[partition] = worker;
  }
  return { pinOwner, unappliedPins };
}
