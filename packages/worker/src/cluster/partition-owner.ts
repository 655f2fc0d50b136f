import type { AssignmentTable } from '@at-orchestrator/contracts';
import type { Gauge, Logger } from '@at-orchestrator/runtime';
import type { CorrelationStore } from '../state/correlation-store.js';
import type { AssignmentView } from './assignment-view.js';
import { decisionEpochOf, nextPartitionState, ownedEpochOf, type PartitionEvent, type PartitionState } from './partition-state.js';

/** What taking and giving up partitions asks of the data plane (wired by the worker). */
export interface PartitionWork {
  /** Loads the open correlations of partitions from Redis (only the corr_ids in `only`, when given). */
  resume(partitions: number[], only?: ReadonlySet<string>): Promise<void>;
  /** Finishes work already accepted for partitions being released: intake, ready decisions, emits. */
  finish(partitions: ReadonlySet<number>): Promise<void>;
  /** Drops the open correlations of partitions no longer ours; writes what is only in memory under `epochs`. */
  flush(partitions: ReadonlySet<number>, epochs: ReadonlyMap<number, number>): Promise<void>;
  redisAvailable(): boolean;
  /** Whether the worker still takes new work (a table is acted on only while running). */
  running(): boolean;
}

export interface PartitionOwnerOptions {
  workerId: string;
  /**
   * coordinated: partitions come from the leader. self: this worker holds every one of `partitions`
   * itself, at epochs it takes in Redis once Redis is reachable (tests and tools; never two on one Redis).
   */
  mode: 'coordinated' | 'self';
  partitions: number;
  view: AssignmentView;
  store: Pick<CorrelationStore, 'bumpEpochs' | 'restoreEpochs'>;
  work: PartitionWork;
  gauge: Gauge;
  log: Logger;
}

/**
 * Which partitions this worker owns, at which epoch: the only place that decides it. Each partition
 * moves through the states of partition-state.ts on the leader's assign and revoke, the table's
 * broadcasts, and Redis's fenced answers.
 *
 * Gaining follows commands and the newest table; losing does not follow the table: a partition is
 * given up only when the leader revokes it or a write under our epoch is refused — the fence, not the
 * broadcast, keeps a paused worker from acting on partitions it lost.
 */
export class PartitionOwner {
  private readonly states = new Map<number, PartitionState>();
  /** partition → the release in progress: a revoke sent again answers when the first one is done. */
  private readonly releases = new Map<number, Promise<void>>();
  /** corr_id → partition: claims refused under an older epoch of ours, to load again from Redis. */
  private readonly refused = new Map<string, number>();
  private epochsTaken: boolean;

  constructor(private readonly o: PartitionOwnerOptions) {
    this.epochsTaken = o.mode === 'coordinated';
    if (o.mode === 'self') {
      // Decided from memory at epoch 0 until Redis gives real epochs (takeEpochs).
      for (let p = 0; p < o.partitions; p++) this.states.set(p, { phase: 'owned', epoch: 0 });
      this.o.gauge.set(this.ownedCount);
    }
  }

  /** False while self-owned partitions have no epochs yet: nothing can be written under epoch 0. */
  get canWrite(): boolean {
    return this.epochsTaken;
  }

  get ownedCount(): number {
    let n = 0;
    for (const s of this.states.values()) if (s.phase !== 'releasing') n += 1;
    return n;
  }

  owned(): number[] {
    return [...this.states].filter(([, s]) => s.phase !== 'releasing').map(([p]) => p);
  }

  state(partition: number): PartitionState | undefined {
    return this.states.get(partition);
  }

  /** The epoch new signals of the partition are stored under; undefined when we do not own it. */
  ownedEpoch(partition: number): number | undefined {
    return ownedEpochOf(this.states.get(partition));
  }

  /** The epoch a decision is claimed under; -1 (refused by the fence) when the partition is not ours. */
  decisionEpoch(partition: number): number {
    return decisionEpochOf(this.states.get(partition));
  }

  /** The leader gives us partitions at new epochs: resume their open correlations from Redis. */
  async assign(partitions: ReadonlyArray<{ partition: number; epoch: number }>): Promise<number[]> {
    const fresh = partitions.filter((p) => this.ownedEpoch(p.partition) !== p.epoch);
    // Refused before anything changes: a partition taken without its open correlations would decide
    // them again from scratch. The leader, or the next table once Redis is back, gives it again.
    if (fresh.length > 0 && !this.o.work.redisAvailable()) throw new Error('redis unavailable: cannot resume partitions');
    for (const p of fresh) this.apply(p.partition, { type: 'assign', epoch: p.epoch });
    if (fresh.length > 0) {
      await this.o.work.resume(fresh.map((p) => p.partition));
      this.o.log.info({ partitions: fresh.map((p) => p.partition), epochs: fresh.map((p) => p.epoch) }, 'partitions assigned');
    }
    return partitions.map((p) => p.partition);
  }

  /**
   * Cooperative revoke: stop taking signals for these partitions, finish what is in flight (our
   * claims still carry the current epoch, which the leader only bumps after we answer), leave the
   * open correlations in Redis for the next owner, answer "released".
   */
  async revoke(partitions: number[]): Promise<number[]> {
    // Nothing to wait for: the release starts in this tick, so a repeat sent right after waits for it.
    const earlier = partitions.flatMap((p) => this.releases.get(p) ?? []);
    if (earlier.length > 0) await Promise.allSettled(earlier);
    const epochs = new Map<number, number>();
    for (const p of partitions) {
      const s = this.states.get(p);
      if (s?.phase === 'owned') epochs.set(p, s.epoch);
    }
    if (epochs.size === 0) return partitions;
    for (const p of epochs.keys()) this.apply(p, { type: 'revoke' });
    const done = this.release(epochs);
    for (const p of epochs.keys()) this.releases.set(p, done);
    try {
      await done;
    } finally {
      for (const p of epochs.keys()) if (this.releases.get(p) === done) this.releases.delete(p);
    }
    return partitions;
  }

  /**
   * A write under `epoch` was fenced. Only that epoch is given up: a fenced answer that arrives after
   * the leader gave the partition back to us at a newer epoch says nothing about that ownership.
   */
  fenced(partition: number, epoch: number, why: string): void {
    if (this.o.mode === 'self') return;
    const before = this.ownedEpoch(partition);
    this.apply(partition, { type: 'fenced', epoch });
    if (before === undefined || this.ownedEpoch(partition) !== undefined) return;
    this.o.log.warn({ partition, epoch, why }, 'partition lost to a newer owner');
    void this.o.work.flush(new Set([partition]), new Map());
  }

  /**
   * A claim under `epoch` was refused. Usually the partition has a newer owner, which resumes the
   * correlation from Redis. But the leader may have given it back to us at a newer epoch while the
   * claim was on its way, and our assign resumed the partition without this correlation (then in
   * flight): so it is loaded again from Redis, where an owner in between may have added signals.
   */
  claimRefused(corrId: string, partition: number, epoch: number): void {
    const current = this.ownedEpoch(partition);
    if (current === undefined || current <= epoch) return;
    if (this.refused.size === 0) queueMicrotask(() => void this.resumeRefused());
    this.refused.set(corrId, partition);
  }

  /** Loads the refused correlations again; kept for the next Redis recovery when Redis cannot answer. */
  async resumeRefused(): Promise<void> {
    if (this.refused.size === 0) return;
    const refused = new Map(this.refused);
    this.refused.clear();
    try {
      await this.o.work.resume([...new Set(refused.values())], new Set(refused.keys()));
    } catch (err) {
      for (const [corrId, partition] of refused) this.refused.set(corrId, partition);
      this.o.log.warn({ err, correlations: refused.size }, 'could not load refused correlations again; will retry when redis is next available');
    }
  }

  /** Routing follows the newest table, and so does gaining a partition whose `assign` never reached us. */
  onTable(table: AssignmentTable): void {
    if (!this.o.view.apply(table) || !this.o.work.running()) return;
    const missed = table.partitions
      .filter((p) => p.owner === this.o.workerId && p.phase === 'owned' && (this.ownedEpoch(p.partition) ?? -1) < p.epoch)
      .map((p) => ({ partition: p.partition, epoch: p.epoch }));
    if (missed.length > 0) {
      this.assign(missed).catch((err: unknown) => this.o.log.warn({ err }, 'could not take partitions the table gives us'));
    }
  }

  /** Restarted with the same WORKER_ID (a pod keeps its name): take back what the table says is ours. */
  async rejoin(table: AssignmentTable | undefined): Promise<void> {
    if (table === undefined) return;
    this.o.view.apply(table);
    const mine = table.partitions.filter((p) => p.owner === this.o.workerId && p.phase === 'owned');
    if (mine.length > 0) await this.assign(mine.map((p) => ({ partition: p.partition, epoch: p.epoch })));
  }

  /**
   * Self-owned partitions take their epochs once Redis is reachable (and resume their open
   * correlations); later, epochs Redis lost are written back. Leader-owned epochs belong to the leader.
   */
  async takeEpochs(): Promise<void> {
    if (this.o.mode === 'coordinated') return;
    const mine = new Map<number, number>();
    for (const p of this.owned()) mine.set(p, this.ownedEpoch(p)!);
    if (this.epochsTaken) {
      const restored = await this.o.store.restoreEpochs(mine);
      if (restored > 0) this.o.log.warn({ restored }, 'redis had lost partition epochs; restored ours');
      return;
    }
    const epochs = await this.o.store.bumpEpochs([...mine.keys()]);
    for (const [p, e] of epochs) this.apply(p, { type: 'assign', epoch: e });
    this.epochsTaken = true;
    await this.o.work.resume([...mine.keys()]);
  }

  private async release(epochs: Map<number, number>): Promise<void> {
    const started = Date.now();
    const set = new Set(epochs.keys());
    try {
      await this.o.work.finish(set);
      // A partition the leader gave back while we waited is not ours to flush.
      const leaving = new Set([...set].filter((p) => this.ownedEpoch(p) === undefined));
      await this.o.work.flush(leaving, epochs);
    } finally {
      for (const [p, epoch] of epochs) this.apply(p, { type: 'released', epoch });
    }
    this.o.log.info({ partitions: [...set], took_ms: Date.now() - started }, 'partitions released');
  }

  private apply(partition: number, event: PartitionEvent): void {
    const next = nextPartitionState(this.states.get(partition), event);
    if (next === undefined) this.states.delete(partition);
    else this.states.set(partition, next);
    this.o.gauge.set(this.ownedCount);
  }
}
