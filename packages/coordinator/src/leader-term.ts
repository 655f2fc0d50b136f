import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { Redis } from 'ioredis';
import { ClusterSubjects, OrchestratorError, type OrchestratorConfig, type WorkerHeartbeat } from '@at-orchestrator/contracts';
import type { Logger, NatsLink } from '@at-orchestrator/runtime';
import { describePlan, formatPlan, type PartitionMove, type PartitionPin } from './assignment/index.js';
import { ControlError, ControlServer, type LeaderControl } from './control/control-api.js';
import type { DrainData, MoveData, PartitionsData, PauseData, PlanData, RebalanceData, StatusData, WorkerState, WorkersData } from './control/control-data.js';
import type { CoordinatorKeys } from './coordinator-keys.js';
import { HandoffRunner, sleep } from './handoff/handoff-runner.js';
import { reconcile, type ReconcileMode, type Reconciliation } from './handoff/reconcile.js';
import { Membership, type LiveWorker } from './membership/membership.js';
import type { CoordinatorMetrics } from './metrics.js';
import { AssignmentStore } from './table/assignment-store.js';

/** The full table goes out at least this often, so that a worker that missed a change catches up. */
export const BROADCAST_EVERY_MS = 2_000;

export interface LeaderTermOptions {
  readonly config: OrchestratorConfig;
  readonly log: Logger;
  readonly nats: NatsLink;
  readonly redis: Redis;
  readonly keys: CoordinatorKeys;
  readonly metrics: CoordinatorMetrics;
  readonly coordinatorId: string;
  readonly leaderEpoch: number;
  /** The term found out it no longer leads (a fenced write): the coordinator steps down. */
  readonly onLost: (reason: string) => void;
}

/** What the operator controls (in Redis, so that the next leader keeps them). */
interface OperatorState {
  readonly paused: boolean;
  readonly drains: ReadonlySet<string>;
  readonly pins: readonly PartitionPin[];
}

/**
 * One term of leadership, from winning the lease to stepping down: loads the table the previous
 * leader left, then every HEARTBEAT_INTERVAL_MS reads membership and the operator's settings,
 * reconciles and hands partitions off; answers the control API meanwhile. Everything it writes is
 * fenced by (coordinator id, leader epoch), so a term that ended can no longer change anything.
 */
export class LeaderTerm implements LeaderControl {
  readonly coordinatorId: string;
  readonly leaderEpoch: number;
  private readonly abort = new AbortController();
  private readonly store: AssignmentStore;
  private readonly membership: Membership;
  private readonly runner: HandoffRunner;
  private readonly control: ControlServer;
  private live = new Map<string, LiveWorker>();
  private operator: OperatorState = { paused: false, drains: new Set(), pins: [] };
  private repair = new Set<number>();
  private readonly shutdownSentAt = new Map<string, number>();
  private lastBroadcast = 0;
  private tickCount = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private jsm: Promise<JetStreamManager> | undefined;
  private lastTickError = '';
  /**
   * Until then a missing heartbeat is not yet proof of death: after a Redis outage or a failover the
   * workers may not have written theirs since. While an owner in the table is missing, the new term
   * waits one worker lease before it moves anything away from it, and makes no voluntary move (the
   * quotas would be computed without it). With every owner visible there is no doubt and no wait.
   */
  private graceUntil = 0;

  constructor(private readonly options: LeaderTermOptions) {
    this.coordinatorId = options.coordinatorId;
    this.leaderEpoch = options.leaderEpoch;
    const log = options.log;
    this.store = new AssignmentStore(options.redis, options.keys, options.config.partitions, options, log);
    this.membership = new Membership(options.redis, options.keys, log);
    this.runner = new HandoffRunner({
      nc: options.nats.nc,
      store: this.store,
      metrics: options.metrics,
      log,
      leaderEpoch: options.leaderEpoch,
      revokeTimeoutMs: options.config.cluster.revokeTimeoutMs,
      signal: this.abort.signal,
      onChange: () => this.broadcast(),
      onFenced: (err) => this.lost(err.message),
    });
    this.control = new ControlServer(options.nats.nc, this, log);
  }

  get tableVersion(): number {
    return this.store.version;
  }

  get ticks(): number {
    return this.tickCount;
  }

  get paused(): boolean {
    return this.operator.paused;
  }

  /** Loads the table and starts leading (first tick at once). */
  async start(): Promise<void> {
    const loaded = await this.store.load();
    if (loaded.repaired.length > 0) this.options.log.info({ partitions: loaded.repaired.length }, 'assignment table initialised for partitions it did not hold');
    if (loaded.inconsistent.length > 0) {
      this.options.log.warn({ partitions: loaded.inconsistent }, 'partition epochs disagree with the table; their owners get a new epoch');
      this.repair = new Set(loaded.inconsistent);
    }
    this.graceUntil = Date.now() + this.options.config.cluster.workerLeaseMs;
    this.control.start();
    this.broadcast();
    this.loop = this.run();
  }

  /** Ends the term: stops ticking and answering, abandons open handoffs (the next leader resumes them). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.abort.abort();
      this.wake?.();
      await this.control.close();
      await this.loop;
      await this.queue.catch(() => undefined);
      await this.runner.settle();
    })();
    return this.closing;
  }

  /** Asks for a tick now instead of at the next interval. */
  requestTick(): void {
    this.wake?.();
  }

  private async run(): Promise<void> {
    const interval = this.options.config.cluster.heartbeatIntervalMs;
    while (!this.abort.signal.aborted) {
      try {
        await this.exclusive(() => this.tick(undefined));
        this.lastTickError = '';
      } catch (err) {
        if (err instanceof OrchestratorError && err.code === 'FENCED') {
          this.lost(err.message);
          return;
        }
        // Redis or NATS trouble: the assignment stays as it is until a tick succeeds.
        const message = err instanceof Error ? err.message : String(err);
        if (message !== this.lastTickError) this.options.log.warn({ err }, 'coordinator tick failed; assignment frozen until the next one succeeds');
        this.lastTickError = message;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        void sleep(interval, this.abort.signal).then(resolve);
      });
      this.wake = undefined;
    }
  }

  /** Serialises ticks and operator commands. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async tick(override: ReconcileMode | undefined): Promise<Reconciliation | undefined> {
    const [live, operator] = await Promise.all([this.membership.live(), this.readOperatorState()]);
    if (this.abort.signal.aborted) return undefined;
    this.live = live;
    this.operator = await this.forgetGoneWorkers(operator, live);
    const liveIds = new Set(live.keys());
    this.runner.ownersGone(liveIds);

    const inGrace = Date.now() < this.graceUntil && this.store.table.some((state) => state.owner !== null && !liveIds.has(state.owner));
    const mode: ReconcileMode = override ?? (inGrace || this.operator.paused || !this.options.nats.connected ? 'frozen' : 'auto');
    const decision = this.reconcile(mode);
    const reassign = inGrace ? decision.reassign.filter((move) => move.from === null || liveIds.has(move.from)) : decision.reassign;
    if (reassign.length > 0) {
      await this.runner.reassign(reassign, liveIds);
      for (const move of reassign) this.repair.delete(move.partition);
    }
    if (decision.handoffs.length > 0) await this.runner.handOff(decision.handoffs);
    this.finishDrains();

    this.tickCount += 1;
    this.updateGauges();
    if (Date.now() - this.lastBroadcast >= BROADCAST_EVERY_MS) this.broadcast();
    return decision;
  }

  private reconcile(mode: ReconcileMode): Reconciliation {
    const heartbeats = new Map<string, WorkerHeartbeat>();
    for (const [id, worker] of this.live) heartbeats.set(id, worker.heartbeat);
    return reconcile({
      partitions: this.options.config.partitions,
      table: this.store.table,
      live: heartbeats,
      drains: this.operator.drains,
      pins: this.operator.pins,
      inFlight: this.runner.inFlight,
      repair: this.repair,
      mode,
    });
  }

  private async readOperatorState(): Promise<OperatorState> {
    const { keys, redis } = this.options;
    const results = (await redis.pipeline().get(keys.paused()).smembers(keys.draining()).hgetall(keys.pins()).exec()) ?? [];
    const [paused, drains, pins] = results.map(([err, value]) => {
      if (err) throw err;
      return value;
    }) as [string | null, string[], Record<string, string>];
    const partitions = this.options.config.partitions;
    const pinList: PartitionPin[] = [];
    for (const [field, worker] of Object.entries(pins)) {
      const partition = Number(field);
      if (Number.isInteger(partition) && partition >= 0 && partition < partitions && worker !== '') pinList.push({ partition, worker });
    }
    return { paused: paused === '1', drains: new Set(drains), pins: pinList };
  }

  /** Drains and pins naming workers whose heartbeat is gone are done with: removed (Redis too). */
  private async forgetGoneWorkers(operator: OperatorState, live: ReadonlyMap<string, LiveWorker>): Promise<OperatorState> {
    const goneDrains = [...operator.drains].filter((id) => !live.has(id));
    const gonePins = operator.pins.filter((pin) => !live.has(pin.worker));
    if (goneDrains.length === 0 && gonePins.length === 0) return operator;
    const { keys, redis, log } = this.options;
    const tx = redis.multi();
    if (goneDrains.length > 0) tx.srem(keys.draining(), ...goneDrains);
    if (gonePins.length > 0) tx.hdel(keys.pins(), ...gonePins.map((pin) => String(pin.partition)));
    await tx.exec();
    for (const id of goneDrains) {
      this.shutdownSentAt.delete(id);
      log.info({ worker: id }, 'drained worker is gone');
    }
    if (gonePins.length > 0) log.info({ pins: gonePins }, 'pins onto workers that are gone removed');
    return {
      paused: operator.paused,
      drains: new Set([...operator.drains].filter((id) => live.has(id))),
      pins: operator.pins.filter((pin) => live.has(pin.worker)),
    };
  }

  /** A drained worker that owns nothing (and is not being revoked) is told to shut down. */
  private finishDrains(): void {
    const resendAfterMs = this.options.config.cluster.revokeTimeoutMs;
    for (const id of this.operator.drains) {
      if (!this.live.has(id) || this.holds(id) > 0 || this.runner.revoking(id)) continue;
      const sentAt = this.shutdownSentAt.get(id);
      if (sentAt !== undefined && Date.now() - sentAt < resendAfterMs) continue;
      this.shutdownSentAt.set(id, Date.now());
      this.runner.shutdown(id);
    }
  }

  /** Partitions a worker owns or is about to own (revoking onto it). */
  private holds(workerId: string): number {
    let n = 0;
    for (const state of this.store.table) if (state.owner === workerId || state.next === workerId) n += 1;
    return n;
  }

  /** Publishes the full table (after every change and every BROADCAST_EVERY_MS). */
  private broadcast(): void {
    if (this.abort.signal.aborted) return;
    this.updateGauges();
    this.lastBroadcast = Date.now();
    try {
      this.options.nats.nc.publish(ClusterSubjects.assignment, JSON.stringify(this.store.snapshot()));
    } catch (err) {
      this.options.log.debug({ err }, 'assignment broadcast not sent');
    }
  }

  private updateGauges(): void {
    const { metrics } = this.options;
    metrics.workersLive.set(this.live.size);
    metrics.tableVersion.set(this.store.version);
    metrics.partitionsAssigned.reset();
    for (const [owner, count] of this.ownerCounts()) metrics.partitionsAssigned.set({ worker: owner }, count);
  }

  /** Partitions per owner in the table (a revoking partition still counts for its old owner). */
  private ownerCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const id of this.live.keys()) counts.set(id, 0);
    for (const state of this.store.table) if (state.owner !== null) counts.set(state.owner, (counts.get(state.owner) ?? 0) + 1);
    return counts;
  }

  private lost(reason: string): void {
    if (this.abort.signal.aborted) return;
    this.options.onLost(reason);
  }

  // ── control API (LeaderControl) ─────────────────────────────────────────────────────────────

  async status(): Promise<StatusData> {
    this.assertLeading();
    const table = this.store.table;
    const counts = { owned: 0, revoking: 0, unowned: 0 };
    for (const state of table) counts[state.phase] += 1;
    const owners = this.ownerCounts();
    const workers = [...owners].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([id, partitions]) => {
      const heartbeat = this.live.get(id)?.heartbeat;
      return {
        id,
        state: this.workerStatus(id),
        partitions,
        load: heartbeat?.load ?? null,
        capacity: heartbeat?.capacity ?? null,
        version: heartbeat?.version ?? null,
      };
    });
    return {
      coordinator: this.coordinatorId,
      leader_epoch: this.leaderEpoch,
      table_version: this.store.version,
      partitions: table.length,
      paused: this.operator.paused,
      frozen: this.operator.paused ? 'paused by an operator' : this.options.nats.connected ? null : 'leader has no NATS connection',
      counts,
      handoffs_in_flight: this.runner.inFlight.size,
      workers,
      lag: await this.consumerLag(),
    };
  }

  async workers(): Promise<WorkersData> {
    this.assertLeading();
    const ids = new Set([...this.live.keys(), ...this.ownerCounts().keys()]);
    const partitionsOf = new Map<string, number[]>();
    for (const state of this.store.table) {
      if (state.owner === null) continue;
      const list = partitionsOf.get(state.owner) ?? [];
      list.push(state.partition);
      partitionsOf.set(state.owner, list);
    }
    const workers = [...ids].sort().map((id) => {
      const live = this.live.get(id);
      const heartbeat = live?.heartbeat;
      return {
        id,
        state: this.workerStatus(id),
        drain_requested: this.operator.drains.has(id),
        capacity: heartbeat?.capacity ?? null,
        load: heartbeat?.load ?? null,
        version: heartbeat?.version ?? null,
        started_at: heartbeat?.started_at ?? null,
        lease_left_ms: live?.leaseLeftMs ?? null,
        partitions: partitionsOf.get(id) ?? [],
        reported_owned: heartbeat?.owned ?? [],
        pinned: this.operator.pins.filter((pin) => pin.worker === id).map((pin) => pin.partition),
      };
    });
    return { workers };
  }

  async partitions(): Promise<PartitionsData> {
    this.assertLeading();
    const pins = new Map(this.operator.pins.map((pin) => [pin.partition, pin.worker]));
    return {
      table_version: this.store.version,
      partitions: this.store.table.map((state) => ({
        partition: state.partition,
        owner: state.owner,
        epoch: state.epoch,
        phase: state.phase,
        next: state.next ?? null,
        pinned_to: pins.get(state.partition) ?? null,
      })),
    };
  }

  async plan(): Promise<PlanData> {
    this.assertLeading();
    const decision = this.reconcile('auto');
    return {
      paused: this.operator.paused,
      moves: movesOf(decision),
      deferred: decision.deferred,
      workers: describePlan(decision.plan),
      unapplied_pins: decision.plan.unappliedPins,
      text: formatPlan(decision.plan),
    };
  }

  async rebalance(): Promise<RebalanceData> {
    this.assertLeading();
    const decision = await this.exclusive(() => this.tick('auto'));
    if (decision === undefined) throw notLeader();
    return { paused: this.operator.paused, moves: movesOf(decision), deferred: decision.deferred };
  }

  async drain(worker: string): Promise<DrainData> {
    this.assertLeading();
    const live = await this.redisCall(() => this.membership.live());
    if (!live.has(worker)) throw noSuchWorker(worker, this.options.keys.worker(worker));
    const already = this.operator.drains.has(worker);
    const others = [...live.values()].filter(({ heartbeat }) => heartbeat.id !== worker && !heartbeat.draining && !this.operator.drains.has(heartbeat.id));
    if (!already && others.length === 0) {
      throw new ControlError('NO_ELIGIBLE_WORKER', `cannot drain ${worker}: no other live worker could take its partitions`);
    }
    const pinned = this.operator.pins.filter((pin) => pin.worker === worker);
    const { keys, redis } = this.options;
    await this.redisCall(async () => {
      const tx = redis.multi().sadd(keys.draining(), worker);
      if (pinned.length > 0) tx.hdel(keys.pins(), ...pinned.map((pin) => String(pin.partition)));
      await tx.exec();
    });
    this.operator = {
      ...this.operator,
      drains: new Set([...this.operator.drains, worker]),
      pins: this.operator.pins.filter((pin) => pin.worker !== worker),
    };
    this.options.log.info({ worker, paused: this.operator.paused }, 'drain requested');
    this.requestTick();
    return { worker, partitions: this.holds(worker), already_draining: already, paused: this.operator.paused };
  }

  async move(partition: number, worker: string): Promise<MoveData> {
    this.assertLeading();
    const partitions = this.options.config.partitions;
    if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) {
      throw new ControlError('NO_SUCH_PARTITION', `no such partition ${partition}: partitions are 0 to ${partitions - 1}`);
    }
    const live = await this.redisCall(() => this.membership.live());
    const target = live.get(worker);
    if (target === undefined) throw noSuchWorker(worker, this.options.keys.worker(worker));
    if (target.heartbeat.draining || this.operator.drains.has(worker)) {
      throw new ControlError('WORKER_DRAINING', `cannot move partition ${partition} to ${worker}: it is draining`);
    }
    const { keys, redis } = this.options;
    await this.redisCall(() => redis.hset(keys.pins(), String(partition), worker));
    this.operator = {
      ...this.operator,
      pins: [...this.operator.pins.filter((pin) => pin.partition !== partition), { partition, worker }],
    };
    const state = this.store.table[partition];
    this.options.log.info({ partition, worker, from: state?.owner ?? null }, 'partition pinned');
    this.requestTick();
    return { partition, worker, from: state?.owner ?? null, epoch: state?.epoch ?? 0 };
  }

  async pause(): Promise<PauseData> {
    this.assertLeading();
    const { keys, redis } = this.options;
    await this.redisCall(() => redis.set(keys.paused(), '1'));
    this.operator = { ...this.operator, paused: true };
    this.options.log.info('rebalancing paused by an operator');
    return { paused: true };
  }

  async resume(): Promise<PauseData> {
    this.assertLeading();
    const { keys, redis } = this.options;
    await this.redisCall(() => redis.del(keys.paused()));
    this.operator = { ...this.operator, paused: false };
    this.options.log.info('rebalancing resumed by an operator');
    this.requestTick();
    return { paused: false };
  }

  private workerStatus(id: string): WorkerState {
    const live = this.live.get(id);
    if (live === undefined) return 'gone';
    return live.heartbeat.draining || this.operator.drains.has(id) ? 'draining' : 'live';
  }

  private assertLeading(): void {
    if (this.abort.signal.aborted) throw notLeader();
  }

  private async redisCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ControlError) throw err;
      throw new ControlError('UNAVAILABLE', `Redis is unreachable, nothing changed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Pending and unacknowledged messages of the shared ingest consumer, or null when unknown. */
  private async consumerLag(): Promise<{ stream: string; durable: string; pending: number; ack_pending: number } | null> {
    const { stream, durable } = this.options.config.nats;
    try {
      this.jsm ??= jetstreamManager(this.options.nats.nc, { checkAPI: false, timeout: 1_000 });
      const info = await (await this.jsm).consumers.info(stream, durable);
      return { stream, durable, pending: info.num_pending, ack_pending: info.num_ack_pending };
    } catch {
      this.jsm = undefined;
      return null;
    }
  }
}

function movesOf(decision: Reconciliation): PartitionMove[] {
  return [...decision.handoffs, ...decision.reassign.filter((move) => move.from !== move.to)].sort((a, b) => a.partition - b.partition);
}

function noSuchWorker(worker: string, key: string): ControlError {
  return new ControlError('NO_SUCH_WORKER', `no such worker ${JSON.stringify(worker)}: no live heartbeat at ${key}`);
}

function notLeader(): ControlError {
  return new ControlError('NOT_LEADER', 'this coordinator stepped down while answering; ask again');
}
