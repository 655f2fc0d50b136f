import { CLUSTER_PROTOCOL, ClusterSubjects, OrchestratorError, type OrchestratorConfig, type PartitionState, type WorkerHeartbeat } from '@at-orchestrator/contracts';
import type { ControlRefusals, ControlSealer, ControlVerifier, Logger, NatsLink, RedisClient } from '@at-orchestrator/runtime';
import { ControlServer } from '../control/control-api.js';
import { IngestLag } from '../control/ingest-lag.js';
import { TermControl } from '../control/term-control.js';
import type { TermCommands, TermView } from '../control/term-view.js';
import type { CoordinatorKeys } from '../coordinator-keys.js';
import { HandoffRunner } from '../handoff/handoff-runner.js';
import { reconcile, type ReconcileMode, type Reconciliation } from '../handoff/reconcile.js';
import { Membership, type LiveWorker } from '../membership/membership.js';
import type { CoordinatorMetrics } from '../metrics.js';
import { AssignmentStore } from '../table/assignment-store.js';
import { OperatorSettings } from './operator-settings.js';

const encoder = new TextEncoder();

/** The full table goes out at least this often, so that a worker that missed a change catches up. */
export const BROADCAST_EVERY_MS = 2_000;
/**
 * Redis Cluster: every this many ticks the leader takes every partition's slot again and compares
 * the epoch keys with the table (AssignmentStore.checkSlots), so that a bump or a raise lost in a
 * partition master's failover is repaired while it leads, not only by the next term.
 */
export const SLOT_CHECK_EVERY_TICKS = 3;
/** How often the leader reads the ingest backlog for its gauges. */
const LAG_EVERY_MS = 5_000;

export interface LeaderTermOptions {
  readonly config: OrchestratorConfig;
  readonly log: Logger;
  readonly nats: NatsLink;
  readonly redis: RedisClient;
  readonly keys: CoordinatorKeys;
  readonly metrics: CoordinatorMetrics;
  readonly coordinatorId: string;
  readonly leaderEpoch: number;
  /** Seals commands and tables with the cluster secret; workers refuse what is not sealed. */
  readonly sealer: ControlSealer;
  /** Checks operator requests against OPERATOR_TOKEN (kept by the coordinator across terms, for replays). */
  readonly operatorVerifier: ControlVerifier;
  readonly refusals: ControlRefusals;
  /** The term found out it no longer leads (a fenced write): the coordinator steps down. */
  readonly onLost: (reason: string) => void;
  /** This coordinator's console address (status.console_url), or null when it serves none (yet). */
  readonly consoleUrl: () => string | null;
}

/**
 * One term of leadership, from winning the lease to stepping down: loads the table the previous
 * leader left, then every HEARTBEAT_INTERVAL_MS reads membership and the operator's settings,
 * reconciles and hands partitions off; its control API (TermControl) answers operators meanwhile.
 * Everything it writes is fenced by (coordinator id, leader epoch), so a term that ended can no
 * longer change anything.
 */
export class LeaderTerm implements TermView, TermCommands {
  readonly coordinatorId: string;
  readonly leaderEpoch: number;
  private readonly abort = new AbortController();
  private readonly store: AssignmentStore;
  private readonly membership: Membership;
  private readonly settings: OperatorSettings;
  private readonly runner: HandoffRunner;
  private readonly control: ControlServer;
  private liveWorkers = new Map<string, LiveWorker>();
  private repair = new Set<number>();
  private readonly shutdownSentAt = new Map<string, number>();
  private lastBroadcast = 0;
  private tickCount = 0;
  private readonly lag: IngestLag;
  private lagReadAt = 0;
  private lagReading = false;
  private queue: Promise<unknown> = Promise.resolve();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
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
    const { config, log } = options;
    this.store = new AssignmentStore(options.redis, options.keys, config.partitions, options, log);
    this.membership = new Membership(options.redis, options.keys, log, {
      protocol: CLUSTER_PROTOCOL,
      onRefused: () => options.metrics.workersRefused.inc({ reason: 'protocol' }),
    });
    this.settings = new OperatorSettings(options.redis, options.keys, config.partitions, log);
    this.runner = new HandoffRunner({
      nc: options.nats.nc,
      sealer: options.sealer,
      store: this.store,
      metrics: options.metrics,
      log,
      leaderEpoch: options.leaderEpoch,
      revokeTimeoutMs: config.cluster.revokeTimeoutMs,
      signal: this.abort.signal,
      onChange: () => this.broadcast(),
      onFenced: (err) => this.lost(err.message),
    });
    this.lag = new IngestLag(options.nats.nc, config.nats.stream, config.nats.durable);
    const termControl = new TermControl({
      term: this,
      commands: this,
      settings: this.settings,
      lag: this.lag,
      keys: options.keys,
      log,
      workerLeaseMs: config.cluster.workerLeaseMs,
      consoleUrl: options.consoleUrl,
    });
    this.control = new ControlServer(options.nats.nc, termControl, log, {
      verifier: options.operatorVerifier,
      refusals: options.refusals,
      tokenConfigured: config.security.operatorToken !== undefined,
    });
  }

  get tableVersion(): number {
    return this.store.version;
  }

  get ticks(): number {
    return this.tickCount;
  }

  get paused(): boolean {
    return this.settings.paused;
  }

  // ── TermView: what the control API reads ────────────────────────────────────────────────────

  get leading(): boolean {
    return !this.abort.signal.aborted;
  }

  get partitionCount(): number {
    return this.options.config.partitions;
  }

  get table(): readonly PartitionState[] {
    return this.store.table;
  }

  get live(): ReadonlyMap<string, LiveWorker> {
    return this.liveWorkers;
  }

  get natsConnected(): boolean {
    return this.options.nats.connected;
  }

  get handoffsInFlight(): number {
    return this.runner.inFlight.size;
  }

  preview(): Reconciliation {
    return this.reconcile('auto');
  }

  readLive(): Promise<ReadonlyMap<string, LiveWorker>> {
    return this.membership.live();
  }

  holds(workerId: string): number {
    let n = 0;
    for (const state of this.store.table) if (state.owner === workerId || state.next === workerId) n += 1;
    return n;
  }

  ownerCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const id of this.liveWorkers.keys()) counts.set(id, 0);
    for (const state of this.store.table) if (state.owner !== null) counts.set(state.owner, (counts.get(state.owner) ?? 0) + 1);
    return counts;
  }

  // ── lifecycle and the loop ──────────────────────────────────────────────────────────────────

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

  requestTick(): void {
    this.wake?.();
  }

  rebalance(): Promise<Reconciliation | undefined> {
    return this.exclusive(() => this.tick('auto'));
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
      // An early wake ends the wait itself: its timer and abort listener go with it, not at the interval.
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.abort.signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, interval);
        this.abort.signal.addEventListener('abort', done, { once: true });
        this.wake = done;
        if (this.abort.signal.aborted) done();
      });
      this.wake = undefined;
    }
  }

  /** Serialises ticks and operator rebalances. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async tick(override: ReconcileMode | undefined): Promise<Reconciliation | undefined> {
    const [live, operator] = await Promise.all([this.membership.live(), this.settings.read()]);
    if (this.abort.signal.aborted) return undefined;
    this.liveWorkers = live;
    // A drained worker that left is done with: should its id come back and be drained, it is told at once.
    for (const id of await this.settings.adopt(operator, live)) this.shutdownSentAt.delete(id);
    const liveIds = new Set(live.keys());
    this.runner.ownersGone(liveIds);
    if (this.store.perSlot && (this.tickCount + 1) % SLOT_CHECK_EVERY_TICKS === 0) await this.checkSlots();

    const inGrace = Date.now() < this.graceUntil && this.store.table.some((state) => state.owner !== null && !liveIds.has(state.owner));
    const mode: ReconcileMode = override ?? (inGrace || this.settings.paused || !this.options.nats.connected ? 'frozen' : 'auto');
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

  /** Redis Cluster: owned partitions whose epoch key lost a write get a new epoch (`repair`). */
  private async checkSlots(): Promise<void> {
    const disagree = (await this.store.checkSlots()).filter((partition) => !this.repair.has(partition));
    if (disagree.length === 0) return;
    this.options.log.warn({ partitions: disagree }, 'partition epochs disagree with the table (a write lost in a failover?); their owners get a new epoch');
    for (const partition of disagree) this.repair.add(partition);
  }

  private reconcile(mode: ReconcileMode): Reconciliation {
    const heartbeats = new Map<string, WorkerHeartbeat>();
    const refused = new Set<string>();
    for (const [id, worker] of this.liveWorkers) {
      heartbeats.set(id, worker.heartbeat);
      if (worker.refusal !== undefined) refused.add(id);
    }
    return reconcile({
      partitions: this.options.config.partitions,
      table: this.store.table,
      live: heartbeats,
      drains: this.settings.drains,
      refused,
      pins: this.settings.pins,
      inFlight: this.runner.inFlight,
      repair: this.repair,
      mode,
    });
  }

  /** A drained worker that owns nothing (and is not being revoked) is told to shut down. */
  private finishDrains(): void {
    const resendAfterMs = this.options.config.cluster.revokeTimeoutMs;
    for (const id of this.settings.drains) {
      if (!this.liveWorkers.has(id) || this.holds(id) > 0 || this.runner.revoking(id)) continue;
      const sentAt = this.shutdownSentAt.get(id);
      if (sentAt !== undefined && Date.now() - sentAt < resendAfterMs) continue;
      this.shutdownSentAt.set(id, Date.now());
      this.runner.shutdown(id);
    }
  }

  /** Publishes the full table (after every change and every BROADCAST_EVERY_MS). */
  private broadcast(): void {
    if (this.abort.signal.aborted) return;
    this.updateGauges();
    this.lastBroadcast = Date.now();
    try {
      const body = encoder.encode(JSON.stringify({ ...this.store.snapshot(), protocol: CLUSTER_PROTOCOL }));
      this.options.nats.nc.publish(ClusterSubjects.assignment, body, { headers: this.options.sealer.seal('assignment', ClusterSubjects.assignment, body) });
    } catch (err) {
      this.options.log.debug({ err }, 'assignment broadcast not sent');
    }
  }

  private updateGauges(): void {
    const { metrics } = this.options;
    metrics.workersLive.set(this.liveWorkers.size);
    metrics.tableVersion.set(this.store.version);
    metrics.partitionsAssigned.reset();
    for (const [owner, count] of this.ownerCounts()) metrics.partitionsAssigned.set({ worker: owner }, count);
    const phases = { owned: 0, revoking: 0, unowned: 0 };
    for (const state of this.store.table) phases[state.phase] += 1;
    for (const [phase, count] of Object.entries(phases)) metrics.partitionsByPhase.set({ phase }, count);
    this.readLagNow();
  }

  /** The backlog gauges, read in the background at most every LAG_EVERY_MS (a JetStream request each). */
  private readLagNow(): void {
    if (this.lagReading || Date.now() - this.lagReadAt < LAG_EVERY_MS) return;
    this.lagReading = true;
    this.lagReadAt = Date.now();
    void this.lag.read().then((lag) => {
      this.lagReading = false;
      if (this.abort.signal.aborted) return;
      const { metrics } = this.options;
      if (lag === null) {
        metrics.ingestPending.reset();
        metrics.ingestAckPending.reset();
        return;
      }
      metrics.ingestPending.set(lag.pending);
      metrics.ingestAckPending.set(lag.ack_pending);
    });
  }

  private lost(reason: string): void {
    if (this.abort.signal.aborted) return;
    this.options.onLost(reason);
  }
}
