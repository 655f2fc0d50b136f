import type { Logger } from '@at-orchestrator/runtime';
import { describePlan, formatPlan, type PartitionMove } from '../assignment/index.js';
import type { CoordinatorKeys } from '../coordinator-keys.js';
import type { Reconciliation } from '../handoff/reconcile.js';
import type { OperatorSettings } from '../term/operator-settings.js';
import { ControlError, type LeaderControl } from './control-api.js';
import type { DrainData, MoveData, PartitionsData, PauseData, PlanData, RebalanceData, StatusData, WorkerState, WorkersData } from './control-data.js';
import type { TermCommands, TermView } from './term-view.js';

export interface TermControlOptions {
  readonly term: TermView;
  readonly commands: TermCommands;
  readonly settings: OperatorSettings;
  readonly lag: { read(): Promise<StatusData['lag']> };
  /** For naming the heartbeat key a missing worker lacks. */
  readonly keys: CoordinatorKeys;
  readonly log: Logger;
  /** WORKER_LEASE_MS: a heartbeat's age is its lease minus what is left of it. */
  readonly workerLeaseMs: number;
  /** Where operators reach this leader's console (status.console_url); null when it serves none. */
  readonly consoleUrl: () => string | null;
}

/**
 * The operator's control API of one leader term: answers status, workers, partitions and plan from
 * the term's view, and carries out rebalance, drain, move, pause and resume. Every answer first
 * checks that the term still leads.
 */
export class TermControl implements LeaderControl {
  readonly coordinatorId: string;
  readonly leaderEpoch: number;
  private readonly term: TermView;
  private readonly settings: OperatorSettings;

  constructor(private readonly options: TermControlOptions) {
    this.term = options.term;
    this.settings = options.settings;
    this.coordinatorId = options.term.coordinatorId;
    this.leaderEpoch = options.term.leaderEpoch;
  }

  async status(): Promise<StatusData> {
    this.assertLeading();
    const { term, settings } = this;
    const table = term.table;
    const counts = { owned: 0, revoking: 0, unowned: 0 };
    for (const state of table) counts[state.phase] += 1;
    const workers = [...term.ownerCounts()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([id, partitions]) => {
      const heartbeat = term.live.get(id)?.heartbeat;
      return {
        id,
        state: this.workerStatus(id),
        partitions,
        load: heartbeat?.load ?? null,
        capacity: heartbeat?.capacity ?? null,
        version: heartbeat?.version ?? null,
        protocol: heartbeat?.protocol ?? null,
        refused: term.live.get(id)?.refusal?.message ?? null,
      };
    });
    return {
      coordinator: this.coordinatorId,
      leader_epoch: this.leaderEpoch,
      table_version: term.tableVersion,
      partitions: table.length,
      paused: settings.paused,
      frozen: settings.paused ? 'paused by an operator' : term.natsConnected ? null : 'leader has no NATS connection',
      counts,
      handoffs_in_flight: term.handoffsInFlight,
      workers,
      lag: await this.options.lag.read(),
      console_url: this.options.consoleUrl(),
    };
  }

  async workers(): Promise<WorkersData> {
    this.assertLeading();
    const { term, settings } = this;
    const ids = new Set([...term.live.keys(), ...term.ownerCounts().keys()]);
    const partitionsOf = new Map<string, number[]>();
    for (const state of term.table) {
      if (state.owner === null) continue;
      const list = partitionsOf.get(state.owner) ?? [];
      list.push(state.partition);
      partitionsOf.set(state.owner, list);
    }
    const workers = [...ids].sort().map((id) => {
      const live = term.live.get(id);
      const heartbeat = live?.heartbeat;
      const stats = heartbeat?.stats;
      return {
        id,
        state: this.workerStatus(id),
        drain_requested: settings.drains.has(id),
        capacity: heartbeat?.capacity ?? null,
        load: heartbeat?.load ?? null,
        version: heartbeat?.version ?? null,
        protocol: heartbeat?.protocol ?? null,
        refused: live?.refusal?.message ?? null,
        started_at: heartbeat?.started_at ?? null,
        lease_left_ms: live?.leaseLeftMs ?? null,
        partitions: partitionsOf.get(id) ?? [],
        reported_owned: heartbeat?.owned ?? [],
        pinned: settings.pins.filter((pin) => pin.worker === id).map((pin) => pin.partition),
        heartbeat_age_ms: live === undefined || live.leaseLeftMs < 0 ? null : Math.max(0, this.options.workerLeaseMs - live.leaseLeftMs),
        open_correlations: heartbeat?.load ?? null,
        decided: stats?.decided ?? null,
        forwarded: stats?.forwarded ?? null,
        fenced_writes: stats?.fenced ?? null,
        dead_letters: stats?.dead_letters ?? null,
        latency_buckets: stats?.latency ?? null,
      };
    });
    return { workers };
  }

  async partitions(): Promise<PartitionsData> {
    this.assertLeading();
    const pins = new Map(this.settings.pins.map((pin) => [pin.partition, pin.worker]));
    const open = this.openByPartition();
    return {
      table_version: this.term.tableVersion,
      partitions: this.term.table.map((state) => {
        // The owner's own report only: a worker that held it before may still report what it gives back.
        const figures = state.owner === null ? undefined : open.get(state.owner)?.get(state.partition);
        const reported = state.owner !== null && open.get(state.owner) !== undefined;
        return {
          partition: state.partition,
          owner: state.owner,
          epoch: state.epoch,
          phase: state.phase,
          next: state.next ?? null,
          pinned_to: pins.get(state.partition) ?? null,
          open: figures?.[0] ?? (reported ? 0 : null),
          oldest_open_ms: figures?.[1] ?? null,
        };
      }),
    };
  }

  async plan(): Promise<PlanData> {
    this.assertLeading();
    const decision = this.term.preview();
    return {
      paused: this.settings.paused,
      moves: movesOf(decision),
      deferred: decision.deferred,
      workers: describePlan(decision.plan),
      unapplied_pins: decision.plan.unappliedPins,
      text: formatPlan(decision.plan),
    };
  }

  async rebalance(): Promise<RebalanceData> {
    this.assertLeading();
    const decision = await this.options.commands.rebalance();
    if (decision === undefined) throw notLeader();
    return { paused: this.settings.paused, moves: movesOf(decision), deferred: decision.deferred };
  }

  async drain(worker: string): Promise<DrainData> {
    this.assertLeading();
    const { settings } = this;
    const live = await redisCall(() => this.term.readLive());
    if (!live.has(worker)) throw this.noSuchWorker(worker);
    const already = settings.drains.has(worker);
    const others = [...live.values()].filter(
      ({ heartbeat, refusal }) => heartbeat.id !== worker && !heartbeat.draining && !settings.drains.has(heartbeat.id) && refusal === undefined,
    );
    if (!already && others.length === 0) {
      throw new ControlError('NO_ELIGIBLE_WORKER', `cannot drain ${worker}: no other live worker could take its partitions`);
    }
    await redisCall(() => settings.drain(worker));
    this.options.log.info({ worker, paused: settings.paused }, 'drain requested');
    this.options.commands.requestTick();
    return { worker, partitions: this.term.holds(worker), already_draining: already, paused: settings.paused };
  }

  async move(partition: number, worker: string): Promise<MoveData> {
    this.assertLeading();
    const partitions = this.term.partitionCount;
    if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) {
      throw new ControlError('NO_SUCH_PARTITION', `no such partition ${partition}: partitions are 0 to ${partitions - 1}`);
    }
    const live = await redisCall(() => this.term.readLive());
    const target = live.get(worker);
    if (target === undefined) throw this.noSuchWorker(worker);
    if (target.heartbeat.draining || this.settings.drains.has(worker)) {
      throw new ControlError('WORKER_DRAINING', `cannot move partition ${partition} to ${worker}: it is draining`);
    }
    if (target.refusal !== undefined) throw new ControlError('WORKER_REFUSED', `cannot move partition ${partition} to ${worker}: ${target.refusal.message}`);
    await redisCall(() => this.settings.pin(partition, worker));
    const state = this.term.table[partition];
    this.options.log.info({ partition, worker, from: state?.owner ?? null }, 'partition pinned');
    this.options.commands.requestTick();
    return { partition, worker, from: state?.owner ?? null, epoch: state?.epoch ?? 0 };
  }

  async pause(): Promise<PauseData> {
    this.assertLeading();
    await redisCall(() => this.settings.pause());
    this.options.log.info('rebalancing paused by an operator');
    return { paused: true };
  }

  async resume(): Promise<PauseData> {
    this.assertLeading();
    await redisCall(() => this.settings.resume());
    this.options.log.info('rebalancing resumed by an operator');
    this.options.commands.requestTick();
    return { paused: false };
  }

  /** worker → partition → [open, oldest age ms], from the workers' last heartbeats (workers that report them). */
  private openByPartition(): Map<string, Map<number, [number, number]>> {
    const byWorker = new Map<string, Map<number, [number, number]>>();
    for (const [id, { heartbeat }] of this.term.live) {
      if (heartbeat.stats === undefined) continue;
      const figures = new Map<number, [number, number]>();
      for (const [partition, open, oldest] of heartbeat.stats.partitions) figures.set(partition, [open, oldest]);
      byWorker.set(id, figures);
    }
    return byWorker;
  }

  private workerStatus(id: string): WorkerState {
    const live = this.term.live.get(id);
    if (live === undefined) return 'gone';
    if (live.refusal !== undefined) return 'refused';
    return live.heartbeat.draining || this.settings.drains.has(id) ? 'draining' : 'live';
  }

  private assertLeading(): void {
    if (!this.term.leading) throw notLeader();
  }

  private noSuchWorker(worker: string): ControlError {
    return new ControlError('NO_SUCH_WORKER', `no such worker ${JSON.stringify(worker)}: no live heartbeat at ${this.options.keys.worker(worker)}`);
  }
}

/** A failed Redis call changed nothing: said so as UNAVAILABLE, so the operator knows to retry. */
async function redisCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ControlError) throw err;
    throw new ControlError('UNAVAILABLE', `Redis is unreachable, nothing changed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function movesOf(decision: Reconciliation): PartitionMove[] {
  return [...decision.handoffs, ...decision.reassign.filter((move) => move.from !== move.to)].sort((a, b) => a.partition - b.partition);
}

function notLeader(): ControlError {
  return new ControlError('NOT_LEADER', 'this coordinator stepped down while answering; ask again');
}
