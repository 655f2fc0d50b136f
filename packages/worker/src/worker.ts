import { ClusterKeys, ConfigError, type OrchestratorConfig } from '@at-orchestrator/contracts';
import { HealthServer, NatsLink, RedisLink, createRegistry, ensureJetStreamTopology, stateRedisTarget, type HealthReport, type HttpRoute, type Logger, type Redis, type Registry } from '@at-orchestrator/runtime';
import { AssignmentView } from './cluster/assignment-view.js';
import { heartbeatStats } from './cluster/heartbeat-stats.js';
import { WorkerMembership } from './cluster/worker-membership.js';
import { assembleDataPlane, type DataPlane } from './data-plane.js';
import type { BatchDecider } from './engines/decider.js';
import { createDecider, createEngine, type DecisionEngine } from './engines/index.js';
import { Correlations } from './fanin/correlations.js';
import { DecidedSet } from './fanin/decided-set.js';
import { FanInBuffer } from './fanin/fan-in-buffer.js';
import { SignalConsumer, pullExpiryFor } from './ingest/signal-consumer.js';
import { WorkerMetrics } from './metrics.js';
import { RedisGate } from './state/redis-gate.js';

/**
 * Where a worker is in its life:
 * - idle: constructed, `start()` not called;
 * - starting: connecting, resuming partitions, joining the cluster;
 * - running: pulling and deciding;
 * - draining: `close()` called: no new signals; what was received is decided or handed back;
 * - stopped: connections closed (also after a failed start once `close()` ran);
 * - failed: `start()` threw; call `close()` to release what it had opened.
 */
export type WorkerState = 'idle' | 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

export interface WorkerOptions {
  config: OrchestratorConfig;
  log: Logger;
  /** Defaults to a fresh registry with process metrics. */
  registry?: Registry;
  /** Start the HTTP server (health, ready, metrics) on config.httpPort. Default true. */
  http?: boolean;
  /** More paths for that server (an embedded coordinator's /console). */
  httpRoutes?: readonly HttpRoute[];
  /**
   * coordinated (default): partitions come from the coordinator leader (docs/cluster.md).
   * self: this worker takes every partition itself — for tests and tools that run one worker
   * without any coordinator; never run two such workers on one Redis.
   */
  ownership?: 'coordinated' | 'self';
  /** Called when the leader asks this worker to shut down (after a drain). */
  onShutdownRequested?: () => void;
  /**
   * Called when a configuration problem shows only once running: a Redis first reached after start
   * whose maxmemory-policy can evict (docs/security.md). Without it the worker closes itself.
   */
  onConfigRefused?: (err: ConfigError) => void;
  /**
   * Tests only: decision threads misbehave on the corr_ids of TEST_HOOKS (crash, throw, hang), so
   * that the worker's handling of a failing pool can be tested end to end. Never set from the
   * environment.
   */
  decisionThreadTestHooks?: boolean;
}

const MAX_BATCH = 512;
const DECIDED_CAPACITY = 200_000;

/**
 * One worker of the data plane: ingest → fan-in → decide → guarded emit, for the partitions it owns
 * (docs/architecture.md). This class only builds the units, starts them in order and stops them in
 * the reverse order; each concern lives in its own unit.
 */
export class OrchestratorWorker {
  readonly metrics: WorkerMetrics;
  readonly registry: Registry;
  private readonly config: OrchestratorConfig;
  private readonly log: Logger;
  private readonly engine: DecisionEngine;
  private readonly decider: BatchDecider;
  private readonly correlations: Correlations;
  private readonly view = new AssignmentView();
  private readonly startedAt = Date.now();

  private stateNow: WorkerState = 'idle';
  private http: HealthServer | undefined;
  private httpPort: number | undefined;
  private nats: NatsLink | undefined;
  private redis: RedisLink | undefined;
  private redlockLinks: Array<RedisLink<Redis>> = [];
  private plane: DataPlane | undefined;
  private membership: WorkerMembership | undefined;
  private consumer: SignalConsumer | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: WorkerOptions) {
    const { config, log } = options;
    // Commands, tables and forwards are sealed with it (docs/security.md): without one the worker
    // could neither prove nor check anything, so it does not start.
    if ((options.ownership ?? 'coordinated') === 'coordinated' && config.security.clusterSecrets.length === 0) {
      throw new ConfigError('CLUSTER_SECRET is not set: a coordinated worker needs the cluster secret that seals control messages (at least 16 characters, the same on every worker and coordinator)');
    }
    this.config = config;
    this.log = log;
    this.registry = options.registry ?? createRegistry({ service: config.serviceName, role: 'worker', instance: config.workerId });
    const readings = {
      openPerPartition: () => this.correlations.countByPartition(),
      held: () => this.correlations.heldCount(),
      active: () => this.correlations.open.size,
    };
    this.metrics = new WorkerMetrics(this.registry, readings, {
      known: [...new Set([...config.requiredAgents, ...config.ingest.allowedAgents, 'momentum', 'risk'])],
      maxOthers: config.ingest.maxAgentLabels,
    });
    this.engine = createEngine(config, {
      rulesFile: config.engines.rulesFile === '' ? undefined : config.engines.rulesFile,
      modelFile: config.engines.mlModelFile === '' ? undefined : config.engines.mlModelFile,
    });
    this.correlations = new Correlations({
      open: new FanInBuffer(this.engine, config.minAgentsRequired, config.decisionTimeoutMs),
      decided: new DecidedSet(DECIDED_CAPACITY),
      metrics: this.metrics,
      onFenced: (partition, epoch) => this.plane?.owner.fenced(partition, epoch, 'fenced store'),
    });
    this.decider = createDecider(config, this.engine, {
      log,
      registry: this.registry,
      testHooks: options.decisionThreadTestHooks === true,
      // Twice failed in a thread: each correlation closes with a timeout outcome (published) and a
      // dead letter records its signals and the reason.
      onBatchFailed: (inputs, reason) => {
        log.error({ reason, corr_ids: inputs.map((i) => i.corrId) }, 'decision engine failed twice on a batch: timeout outcomes');
        for (const input of inputs) void this.plane?.dlq.sendCorrelation(input.corrId, 'engine_failed', reason, JSON.stringify(input.signals));
      },
    });
  }

  get state(): WorkerState {
    return this.stateNow;
  }

  /** The bound HTTP port (useful when HTTP_PORT=0 picked a free one). */
  get port(): number | undefined {
    return this.httpPort;
  }

  async start(): Promise<void> {
    if (this.stateNow !== 'idle') throw new Error(`worker cannot start from state ${this.stateNow}`);
    this.stateNow = 'starting';
    try {
      await this.open();
    } catch (err) {
      this.stateNow = 'failed';
      throw err;
    }
    this.stateNow = 'running';
    const { config } = this;
    this.log.info(
      {
        worker_id: config.workerId,
        profile: config.profile,
        orchestrator_type: config.orchestratorType,
        partitions: config.partitions,
        required_agents: config.requiredAgents,
        min_agents: config.minAgentsRequired,
        decision_timeout_ms: config.decisionTimeoutMs,
      },
      'worker started',
    );
  }

  /**
   * Graceful stop: stop pulling, finish what was received, publish every decision that is ready,
   * give unstored messages back to JetStream, close connections. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  health(): HealthReport {
    const natsUp = this.nats?.connected === true;
    const redisUp = this.redis?.available === true;
    return {
      status: !natsUp ? 'unhealthy' : redisUp ? 'healthy' : 'degraded',
      orchestrator_type: this.config.orchestratorType,
      nats_connected: natsUp,
      redis_connected: redisUp,
      active_correlations: this.correlations.open.size,
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
      worker_id: this.config.workerId,
      state: this.stateNow,
      partitions_owned: this.plane?.owner.ownedCount ?? 0,
      pending_decisions: this.plane?.queue.pending ?? 0,
      // How full each bound is: intake stops pulling when one is full (docs/security.md).
      bounds: {
        open_correlations: { used: this.correlations.open.size, max: this.config.ingest.maxOpenCorrelations },
        unsynced_done_markers: { used: this.plane?.emitter.unsyncedCount ?? 0, max: this.config.ingest.maxOpenCorrelations },
        unpublished_decisions: { used: this.plane?.emitter.unpublishedCount ?? 0 },
        decided_remembered: { used: this.correlations.decided.size, max: DECIDED_CAPACITY },
      },
    };
  }

  ready(): { ready: boolean; reason?: string } {
    if (this.stateNow !== 'running') return { ready: false, reason: this.stateNow };
    if (this.nats?.connected !== true) return { ready: false, reason: 'nats disconnected' };
    return { ready: true };
  }

  /** Connections first, then the data plane over them; Redis recovery; the cluster; intake last. */
  private async open(): Promise<void> {
    const { config, log } = this;
    const name = `${config.serviceName}:${config.workerId}`;
    if (this.options.http !== false) {
      this.http = new HealthServer(this, this.registry, log, this.options.httpRoutes);
      this.httpPort = await this.http.start(config.httpPort);
    }
    this.nats = await NatsLink.connect({ servers: config.nats.servers, auth: config.nats.auth, name, log });
    await ensureJetStreamTopology(this.nats.nc, config, log);
    this.redis = new RedisLink(stateRedisTarget(config.redis), log, { name, access: config.redis });
    // REDLOCK_URLS names independent masters for the correlation lock; by default the state Redis.
    this.redlockLinks = config.redis.redlockUrls.map(
      (url, i) => new RedisLink<Redis>(url, log, { name: `${name}:redlock${i}`, access: config.redis, variable: 'REDLOCK_URLS' }),
    );
    await Promise.all(this.redlockLinks.map((l) => l.start()));
    const plane = (this.plane = assembleDataPlane({
      config,
      log,
      registry: this.registry,
      metrics: this.metrics,
      engine: this.engine,
      decider: this.decider,
      correlations: this.correlations,
      view: this.view,
      nats: this.nats,
      redis: this.redis,
      redlock: this.redlockLinks,
      ownership: this.options.ownership ?? 'coordinated',
      running: () => this.stateNow === 'running',
      // Resuming partitions at start (self-owned epochs, a restarted worker's rejoin) waits for room
      // under MAX_OPEN_CORRELATIONS like a takeover while running; only draining never waits.
      accepting: () => this.stateNow === 'starting' || this.stateNow === 'running',
    }));
    // Deadlines are checked before anything is resumed: a resume waiting for room needs the open
    // correlations to time out, or it would wait forever.
    plane.queue.start(Math.max(5, Math.min(100, Math.floor(config.decisionTimeoutMs / 20))));

    const redis = this.redis;
    await new RedisGate({
      redis,
      degraded: this.metrics.degraded,
      recover: () =>
        plane.sync.recover({
          takeEpochs: () => plane.owner.takeEpochs(),
          resumeRefused: () => plane.owner.resumeRefused(),
          syncDoneMarkers: () => plane.emitter.syncAfterRecovery(),
        }),
      onRefused: (err) => this.refuseConfig(err),
      log,
    }).start();

    if ((this.options.ownership ?? 'coordinated') === 'coordinated') await this.joinCluster(this.nats, redis, plane);
    this.consumer = new SignalConsumer({
      js: plane.js,
      stream: config.nats.stream,
      durable: config.nats.durable,
      maxInFlight: config.nats.maxInFlight,
      maxBatch: MAX_BATCH,
      log,
      handle: (batch) => plane.router.route(batch),
      capacity: (inHand) => plane.queue.capacity(inHand),
      pullExpiresMs: pullExpiryFor(this.nats.nc.info),
    });
    await plane.poison.start();
    this.consumer.start();
  }

  private refuseConfig(err: ConfigError): void {
    this.log.fatal(err.message);
    if (this.options.onConfigRefused !== undefined) this.options.onConfigRefused(err);
    else void this.close();
  }

  private async joinCluster(nats: NatsLink, redis: RedisLink, plane: DataPlane): Promise<void> {
    const { config, log } = this;
    plane.forwarder?.serve((req) => plane.router.takeForwarded(req));
    this.membership = new WorkerMembership({
      nc: nats.nc,
      redis: redis.client,
      redisAvailable: () => redis.available,
      keys: new ClusterKeys(config.redis.keyPrefix),
      workerId: config.workerId,
      capacity: config.cluster.workerCapacity,
      heartbeatMs: config.cluster.heartbeatIntervalMs,
      leaseMs: config.cluster.workerLeaseMs,
      log,
      clusterSecrets: config.security.clusterSecrets,
      refusals: plane.refusals,
      handlers: {
        assign: (partitions) => plane.owner.assign(partitions),
        revoke: (partitions) => plane.owner.revoke(partitions),
        shutdown: () => {
          log.info('leader asked this worker to shut down (drained)');
          this.options.onShutdownRequested?.();
        },
        table: (table) => plane.owner.onTable(table),
        heartbeat: async () => ({
          load: this.correlations.open.size,
          owned: plane.owner.owned(),
          draining: this.stateNow === 'draining',
          stats: await heartbeatStats(this.metrics, this.correlations),
        }),
      },
    });
    // No decision from memory after a stop or stall past our lease: meanwhile our partitions may have
    // become another worker's, and a claim that Redis cannot answer fences nothing (DecisionQueue.gate,
    // and the emit path for a claim that fails). A Redis outage the worker lives through does not stop it.
    const membership = this.membership;
    const mayDecide = (): boolean => membership.mayDecideFromMemory();
    plane.queue.gate(mayDecide);
    plane.emitter.gate(mayDecide);
    await this.membership.start();
    await plane.owner.rejoin(await this.membership.loadTable().catch(() => undefined));
  }

  /** The shutdown order: intake, forwards, decisions, engines, held sources, then connections. */
  private async shutdown(): Promise<void> {
    if (this.stateNow === 'idle') {
      this.stateNow = 'stopped';
      return;
    }
    this.stateNow = 'draining';
    const plane = this.plane;
    plane?.queue.wake();
    this.log.info('worker draining: stopping intake');
    await this.consumer?.stop();
    await plane?.lanes.drain();
    plane?.forwarder?.close();
    await plane?.intake.settled();
    // Publish everything that is ready now; open correlations stay in Redis for the next owner.
    plane?.queue.drain(true);
    await plane?.queue.settled();
    await plane?.emitter.idle();
    plane?.emitter.close();
    await plane?.rulesWatch?.close();
    await this.decider.close();
    plane?.queue.close();
    const returned = this.correlations.returnAllHeld();
    if (returned > 0) this.log.warn({ returned }, 'signals not yet in redis returned to JetStream for redelivery');
    // Removing the heartbeat lets the leader hand our partitions on at once.
    await this.membership?.close();
    await plane?.poison.close();
    await this.nats?.close();
    await this.redis?.close();
    await Promise.all(this.redlockLinks.map((l) => l.close()));
    await this.http?.close();
    this.stateNow = 'stopped';
    this.log.info('worker closed');
  }
}
