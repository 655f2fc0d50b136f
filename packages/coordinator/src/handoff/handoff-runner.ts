import { performance } from 'node:perf_hooks';
import type { NatsConnection } from '@nats-io/nats-core';
import { OrchestratorError, type PartitionState, type WorkerCommand } from '@at-orchestrator/contracts';
import type { ControlSealer, Logger } from '@at-orchestrator/runtime';
import type { PartitionMove } from '../assignment/index.js';
import type { CoordinatorMetrics, HandoffOutcome } from '../metrics.js';
import type { AssignmentStore } from '../table/assignment-store.js';
import { sendWorkerCommand, type CommandOutcome } from './worker-commands.js';

export interface HandoffRunnerOptions {
  readonly nc: NatsConnection;
  /** Seals every command with the cluster secret (docs/security.md). */
  readonly sealer: ControlSealer;
  readonly store: AssignmentStore;
  readonly metrics: CoordinatorMetrics;
  readonly log: Logger;
  readonly leaderEpoch: number;
  /** How long an old owner has to release a partition before the handoff is forced. */
  readonly revokeTimeoutMs: number;
  /** Aborted when the term ends: nothing more is written or sent. */
  readonly signal: AbortSignal;
  /** After every committed change (the term broadcasts the table). */
  readonly onChange: () => void;
  /** A commit was refused because this coordinator no longer leads. */
  readonly onFenced: (err: OrchestratorError) => void;
}

interface RevokeBatch {
  readonly from: string;
  readonly partitions: readonly number[];
  /** Aborted when the old owner's heartbeat disappears: no point waiting for its answer. */
  readonly ownerGone: AbortController;
}

/**
 * Carries out the moves a tick decided, following the handoff protocol (docs/cluster.md):
 *
 * - reassign: owner gone (or none): a new partition epoch (commit-assignment.lua), owner = new worker,
 *   `assign` it.
 * - hand off: live A → B: phase `revoking` (next = B), broadcast, `revoke` to A (one request per old
 *   owner); on A's answer, or REVOKE_TIMEOUT_MS after the request (forced), a new epoch, owner = B,
 *   broadcast, `assign` to B (one request per new owner).
 *
 * Every write goes through the fenced commit, so a term that ended writes nothing. Requests to workers
 * run in the background; `settle()` waits for them.
 */
export class HandoffRunner {
  /** Partition → the revoke batch moving it. */
  private readonly inFlightBatches = new Map<number, RevokeBatch>();
  private readonly batches = new Set<RevokeBatch>();
  private readonly tasks = new Set<Promise<void>>();

  constructor(private readonly options: HandoffRunnerOptions) {}

  get inFlight(): ReadonlySet<number> {
    return new Set(this.inFlightBatches.keys());
  }

  /** Whether a revoke to this worker is still open. */
  revoking(workerId: string): boolean {
    for (const batch of this.batches) if (batch.from === workerId) return true;
    return false;
  }

  /** Commits a new epoch for each move (owner = `to`, unowned when null) and sends the assigns. */
  async reassign(moves: readonly PartitionMove[], live: ReadonlySet<string>): Promise<void> {
    if (moves.length === 0) return;
    const states = await this.options.store.commit(
      moves.map((move) => ({ partition: move.partition, owner: move.to, phase: move.to === null ? 'unowned' : 'owned', bump: true }) as const),
    );
    const { metrics, log } = this.options;
    let orphaned = 0;
    let moved = 0;
    for (const move of moves) {
      if (move.from === move.to) continue;
      moved += 1;
      if (move.from !== null && !live.has(move.from)) orphaned += 1;
    }
    metrics.rebalanceMoves.inc(moved);
    metrics.handoffs.inc({ outcome: 'orphaned' }, orphaned);
    log.info(
      { partitions: moves.length, orphaned, moves: summarise(moves), table_version: this.options.store.version },
      'partitions reassigned at new epochs',
    );
    this.options.onChange();
    this.track(this.assign(states, undefined));
  }

  /** Marks the partitions revoking, broadcasts, then runs one revoke batch per old owner. */
  async handOff(moves: readonly PartitionMove[]): Promise<void> {
    const handoffs = moves.filter((move) => move.from !== null && move.to !== null && !this.inFlightBatches.has(move.partition));
    if (handoffs.length === 0) return;
    await this.options.store.commit(
      handoffs.map((move) => ({ partition: move.partition, owner: move.from, phase: 'revoking', next: move.to ?? undefined, bump: false }) as const),
    );
    this.options.log.info({ partitions: handoffs.length, moves: summarise(handoffs), table_version: this.options.store.version }, 'handoffs started');
    this.options.onChange();
    for (const [from, group] of groupBy(handoffs, (move) => move.from ?? '')) {
      const batch: RevokeBatch = { from, partitions: group.map((move) => move.partition), ownerGone: new AbortController() };
      this.batches.add(batch);
      for (const move of group) this.inFlightBatches.set(move.partition, batch);
      this.track(this.runBatch(batch, group));
    }
  }

  /** Each tick: revokes to workers whose heartbeat is gone end at once (their partitions are orphans). */
  ownersGone(live: ReadonlySet<string>): void {
    for (const batch of this.batches) if (!live.has(batch.from)) batch.ownerGone.abort();
  }

  /** Sends `shutdown` to a drained worker (background). */
  shutdown(workerId: string): void {
    this.track(
      (async () => {
        const outcome = await this.command(workerId, { type: 'shutdown', leader_epoch: this.options.leaderEpoch });
        if (outcome.kind === 'reply' && outcome.reply.ok) this.options.log.info({ worker: workerId }, 'drained worker told to shut down');
        else this.failed('shutdown', workerId, outcome);
      })(),
    );
  }

  /** Waits for the background requests (they end quickly once the term's signal aborts). */
  async settle(): Promise<void> {
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  private async runBatch(batch: RevokeBatch, moves: readonly PartitionMove[]): Promise<void> {
    const { signal, revokeTimeoutMs, log, metrics } = this.options;
    const sentAt = performance.now();
    const either = AbortSignal.any([signal, batch.ownerGone.signal]);
    try {
      const outcome = await this.command(batch.from, { type: 'revoke', leader_epoch: this.options.leaderEpoch, partitions: [...batch.partitions] }, either);
      if (signal.aborted) return; // the term is over: the next leader resumes this revocation
      let result: HandoffOutcome;
      if (outcome.kind === 'reply' && outcome.reply.ok) result = 'graceful';
      else if (batch.ownerGone.signal.aborted) result = 'orphaned';
      else {
        this.failed('revoke', batch.from, outcome);
        // Forced only after the full timeout, even when nobody listened: the old owner may still be
        // working (its NATS connection down) and deserves its time to flush.
        await sleep(sentAt + revokeTimeoutMs - performance.now(), either);
        if (signal.aborted) return;
        result = batch.ownerGone.signal.aborted ? 'orphaned' : 'forced';
      }
      const states = await this.options.store.commit(
        moves.map((move) => ({ partition: move.partition, owner: move.to, phase: 'owned', bump: true }) as const),
      );
      metrics.handoffs.inc({ outcome: result }, moves.length);
      metrics.rebalanceMoves.inc(moves.length);
      const level = result === 'graceful' ? 'info' : 'warn';
      log[level](
        { from: batch.from, outcome: result, partitions: batch.partitions, revoke_ms: Math.round(performance.now() - sentAt), table_version: this.options.store.version },
        `handoff ${result}`,
      );
      this.release(batch);
      this.options.onChange();
      await this.assign(states, sentAt);
    } catch (err) {
      if (err instanceof OrchestratorError && err.code === 'FENCED') this.options.onFenced(err);
      else if (!signal.aborted) log.warn({ err, from: batch.from, partitions: batch.partitions }, 'handoff interrupted; the next tick resumes it');
    } finally {
      this.release(batch);
    }
  }

  /** Sends `assign` to every new owner (one request each); observes handoff durations when timed. */
  private async assign(states: readonly PartitionState[], sentAt: number | undefined): Promise<void> {
    const owned = states.filter((state) => state.owner !== null);
    await Promise.all(
      [...groupBy(owned, (state) => state.owner ?? '')].map(async ([owner, group]) => {
        const outcome = await this.command(owner, {
          type: 'assign',
          leader_epoch: this.options.leaderEpoch,
          partitions: group.map((state) => ({ partition: state.partition, epoch: state.epoch })),
        });
        if (!(outcome.kind === 'reply' && outcome.reply.ok)) {
          // It stays the owner in the table: it resumes from the broadcast (or the table when it starts),
          // and if its heartbeat is gone the next tick reassigns the partitions.
          this.failed('assign', owner, outcome);
        }
        if (sentAt !== undefined && outcome.kind !== 'aborted') {
          const seconds = (performance.now() - sentAt) / 1000;
          for (let i = 0; i < group.length; i++) this.options.metrics.handoffDuration.observe(seconds);
          // The partitions' pause: no owner took signals for them from revoke sent to assign acknowledged.
          this.options.log.info({ to: owner, partitions: group.map((st) => st.partition), pause_ms: Math.round(seconds * 1000) }, 'handoff complete');
        }
      }),
    );
  }

  private command(workerId: string, command: WorkerCommand, signal = this.options.signal): Promise<CommandOutcome> {
    return sendWorkerCommand(this.options.nc, this.options.sealer, workerId, command, this.options.revokeTimeoutMs, signal);
  }

  private failed(command: WorkerCommand['type'], workerId: string, outcome: CommandOutcome): void {
    if (outcome.kind === 'aborted') return;
    this.options.metrics.commandFailures.inc({ command });
    const why = outcome.kind === 'reply' ? `answered not ok: ${outcome.reply.error ?? 'no reason given'}` : outcome.kind === 'failed' ? outcome.reason : outcome.kind;
    this.options.log.warn({ worker: workerId, command, outcome: outcome.kind }, `worker ${workerId} did not acknowledge ${command} (${why})`);
  }

  private release(batch: RevokeBatch): void {
    if (!this.batches.delete(batch)) return;
    for (const partition of batch.partitions) {
      if (this.inFlightBatches.get(partition) === batch) this.inFlightBatches.delete(partition);
    }
  }

  private track(task: Promise<void>): void {
    const tracked = task.catch((err: unknown) => this.options.log.error({ err }, 'coordinator background task failed'));
    this.tasks.add(tracked);
    void tracked.finally(() => this.tasks.delete(tracked));
  }
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list === undefined) groups.set(k, [item]);
    else list.push(item);
  }
  return groups;
}

/** "3:w1→w2 7:gone→w4" for logs, at most 20 moves. */
function summarise(moves: readonly PartitionMove[]): string {
  const shown = moves.slice(0, 20).map((move) => `${move.partition}:${move.from ?? '-'}→${move.to ?? '-'}`);
  return moves.length > 20 ? `${shown.join(' ')} …(+${moves.length - 20})` : shown.join(' ');
}

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted === true) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
