import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { ConfigError, type OrchestratorConfig } from '@at-orchestrator/contracts';
import {
  ControlRefusals,
  ControlSealer,
  ControlVerifier,
  HealthServer,
  NatsLink,
  type HttpRoute,
  RedisLink,
  stateRedisTarget,
  createRegistry,
  type HealthReport,
  type HealthSource,
  type Logger,
  type Registry,
} from '@at-orchestrator/runtime';
import { ConsoleFeed } from './console/console-feed.js';
import { CONSOLE_PREFIX, ConsoleServer } from './console/console-server.js';
import { CoordinatorPresenceBoard } from './console/presence.js';
import { CoordinatorKeys } from './coordinator-keys.js';
import { LeaderLease } from './election/leader-lease.js';
import { sleep } from './handoff/handoff-runner.js';
import { LeaderTerm } from './term/leader-term.js';
import { CoordinatorMetrics } from './metrics.js';

export interface CoordinatorOptions {
  readonly config: OrchestratorConfig;
  readonly log: Logger;
  /** The process registry (a worker embedding a coordinator passes its own); a new one otherwise. */
  readonly registry?: Registry;
  /**
   * Serve /health, /ready, /metrics and /console on HTTP_PORT (default true). false when embedded in a
   * worker: the worker's HTTP server then mounts `consoleRoute`, and `serveConsoleOn` names its port.
   */
  readonly http?: boolean;
  /** Aborting it closes the coordinator (stepping down), as close() does. */
  readonly signal?: AbortSignal;
}

/**
 * idle → (start) → standby ⇄ leading → (close) → closing → closed.
 * A standby tries for the lease every LEADER_LEASE_MS/3; a leader renews as often and steps down at
 * once when a renewal fails or is late.
 */
export type CoordinatorState = 'idle' | 'standby' | 'leading' | 'closing' | 'closed';

export interface CloseOptions {
  /**
   * Delete the leader lease (if still ours) so that a standby takes over at once (default true).
   * false leaves it to expire, as if the process had died.
   */
  readonly releaseLease?: boolean;
}

/**
 * A coordinator replica: leader election through a Redis lease, and while leading, membership,
 * assignment, handoff and the control API (LeaderTerm). Runs standalone (`at-orchestrator coordinator`)
 * or embedded in a worker process; several replicas may run, one leads.
 */
export class Coordinator implements HealthSource {
  readonly id: string;
  readonly registry: Registry;
  private readonly config: OrchestratorConfig;
  private readonly log: Logger;
  private readonly keys: CoordinatorKeys;
  private readonly metrics: CoordinatorMetrics;
  private readonly abort = new AbortController();
  private stateNow: CoordinatorState = 'idle';
  private nats: NatsLink | undefined;
  private redis: RedisLink | undefined;
  private lease: LeaderLease | undefined;
  private http: HealthServer | undefined;
  private consoleFeed: ConsoleFeed | undefined;
  private consoleServer: ConsoleServer | undefined;
  private presence: CoordinatorPresenceBoard | undefined;
  private consoleUrlNow: string | null = null;
  private term: LeaderTerm | undefined;
  /** When the last successful renewal (or the acquisition) was sent: the lease runs from then. */
  private leaseFrom = 0;
  private knownLeader: string | null = null;
  private starting: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly startedAt = Date.now();
  private httpPortNow: number | undefined;
  private stepDownReason: string | undefined;
  /** Seal commands and tables; kept across terms, like the operator verifier's replay window. */
  private readonly sealer: ControlSealer;
  private readonly operatorVerifier: ControlVerifier;
  private readonly refusals: ControlRefusals;

  constructor(private readonly options: CoordinatorOptions) {
    this.config = options.config;
    this.id = options.config.cluster.coordinatorId;
    const { clusterSecrets, operatorToken } = options.config.security;
    // Workers obey only sealed commands and tables (docs/security.md): a coordinator without the
    // secret could lead but never be obeyed.
    if (clusterSecrets.length === 0) {
      throw new ConfigError('CLUSTER_SECRET is not set: a coordinator needs the cluster secret that seals control messages (at least 16 characters, the same on every worker and coordinator)');
    }
    this.sealer = new ControlSealer(clusterSecrets, this.id);
    this.operatorVerifier = new ControlVerifier(operatorToken === undefined ? [] : [operatorToken]);
    this.log = options.log.child({ coordinator_id: this.id });
    this.keys = new CoordinatorKeys(options.config.redis.keyPrefix, options.config.partitions);
    this.registry = options.registry ?? createRegistry({ service: options.config.serviceName, role: 'coordinator', instance: this.id });
    this.metrics = new CoordinatorMetrics(this.registry);
    this.refusals = new ControlRefusals(this.registry, this.log);
    this.metrics.clearLeaderGauges();
    options.signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  get state(): CoordinatorState {
    return this.stateNow;
  }

  /** The leader epoch while leading, else undefined. */
  get leaderEpoch(): number | undefined {
    return this.term?.leaderEpoch;
  }

  /** The leader's id as last seen (ours while leading), or null when unknown. */
  get leader(): string | null {
    return this.term !== undefined ? this.id : this.knownLeader;
  }

  /** The HTTP port (when serving HTTP). */
  get httpPort(): number | undefined {
    return this.httpPortNow;
  }

  /** Where operators reach this coordinator's console (CONSOLE_URL, else http://<hostname>:<port>/console); null without HTTP. */
  get consoleUrl(): string | null {
    return this.consoleUrlNow;
  }

  /**
   * The console, for an embedding process's HTTP server to mount (it answers 503 until this
   * coordinator is connected). A standalone coordinator serves it itself.
   */
  readonly consoleRoute: HttpRoute = {
    prefix: CONSOLE_PREFIX,
    handle: async (req, res, path) => {
      if (this.consoleServer === undefined) {
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'the coordinator is not connected yet' }));
        return;
      }
      await this.consoleServer.handle(req, res, path);
    },
  };

  /** The port an embedding process serves `consoleRoute` on: sets consoleUrl (CONSOLE_URL wins). */
  serveConsoleOn(port: number): void {
    this.consoleUrlNow = this.config.consoleUrl ?? `http://${hostname()}:${port}/console`;
  }

  /** For tests and diagnostics: the state and how far the leader's loop got. */
  stats(): { state: CoordinatorState; leaderEpoch: number | null; tableVersion: number | null; ticks: number; paused: boolean | null } {
    const term = this.term;
    return {
      state: this.stateNow,
      leaderEpoch: term?.leaderEpoch ?? null,
      tableVersion: term?.tableVersion ?? null,
      ticks: term?.ticks ?? 0,
      paused: term?.paused ?? null,
    };
  }

  /**
   * Connects (NATS must be reachable; Redis may come later: the replica stands by until it is),
   * serves HTTP if asked, makes one attempt at the lease and resolves; the election then runs in the
   * background until close(). Rejects (closed) when NATS cannot be reached or the port is taken.
   */
  start(): Promise<void> {
    if (this.stateNow !== 'idle') return Promise.reject(new Error(`coordinator ${this.id} cannot start from state ${this.stateNow}`));
    this.stateNow = 'standby';
    this.starting = this.connectAndElect();
    return this.starting;
  }

  /** Steps down (releasing the lease unless told not to), stops, disconnects. Idempotent. */
  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= (async () => {
      const wasStarted = this.stateNow !== 'idle';
      this.stateNow = 'closing';
      this.abort.abort();
      await this.starting?.catch(() => undefined);
      await this.loop;
      const term = this.term;
      if (term !== undefined) {
        this.term = undefined;
        await term.close();
        if (options.releaseLease !== false && this.lease !== undefined) {
          const released = await this.lease.release(term.leaderEpoch).catch(() => false);
          this.log.info({ released, leader_epoch: term.leaderEpoch }, 'stepped down');
        }
      }
      this.metrics.clearLeaderGauges();
      await this.disconnect();
      this.stateNow = 'closed';
      if (wasStarted) this.log.info('coordinator closed');
    })();
    return this.closing;
  }

  private async connectAndElect(): Promise<void> {
    try {
      this.nats = await NatsLink.connect({ servers: this.config.nats.servers, auth: this.config.nats.auth, name: `coordinator-${this.id}`, log: this.log });
      this.redis = new RedisLink(stateRedisTarget(this.config.redis), this.log, {
        name: `coordinator-${this.id}`,
        access: this.config.redis,
        // A command slower than a third of the lease would make renewals late: fail it instead.
        commandTimeoutMs: Math.max(250, Math.floor(this.config.cluster.leaderLeaseMs / 3)),
      });
      const redisUp = await this.redis.start();
      if (!redisUp) this.log.warn('redis unreachable at start: standing by until it is');
      this.lease = new LeaderLease(this.redis.client, this.keys, this.id, this.config.cluster.leaderLeaseMs);
      this.presence = new CoordinatorPresenceBoard(this.redis.client, this.keys, this.id, this.config.cluster.leaderLeaseMs);
      const presence = this.presence;
      this.consoleFeed = new ConsoleFeed({ nc: this.nats.nc, coordinatorId: this.id, coordinators: () => presence.list(), log: this.log });
      this.consoleServer = new ConsoleServer({ nc: this.nats.nc, feed: this.consoleFeed, log: this.log });
      if (this.options.http !== false) {
        this.http = new HealthServer(this, this.registry, this.log, [this.consoleServer]);
        this.httpPortNow = await this.http.start(this.config.httpPort);
        this.serveConsoleOn(this.httpPortNow);
        // A standalone coordinator keeps the charts' history; an embedded one asks only while a page is open.
        this.consoleFeed.start();
      }
    } catch (err) {
      await this.disconnect();
      this.stateNow = 'closed';
      throw err;
    }
    if (this.abort.signal.aborted) return; // closed while starting: close() disconnects
    await this.electOnce();
    this.loop = this.electionLoop();
    this.log.info({ state: this.stateNow, leader: this.leader, lease_ms: this.config.cluster.leaderLeaseMs }, 'coordinator started');
  }

  private async disconnect(): Promise<void> {
    await this.consoleFeed?.close();
    this.consoleServer?.close();
    if (this.redis?.available === true) await this.presence?.withdraw().catch(() => undefined);
    await this.http?.close();
    await this.nats?.close().catch(() => undefined);
    await this.redis?.close();
  }

  health(): HealthReport {
    const nats = this.nats?.connected ?? false;
    const redis = this.redis?.available ?? false;
    const term = this.term;
    return {
      status: nats && redis ? 'healthy' : nats || redis ? 'degraded' : 'unhealthy',
      role: this.stateNow === 'leading' ? 'leader' : this.stateNow,
      coordinator_id: this.id,
      leader: this.leader,
      leader_epoch: term?.leaderEpoch ?? null,
      table_version: term?.tableVersion ?? null,
      paused: term?.paused ?? null,
      nats_connected: nats,
      redis_connected: redis,
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
    };
  }

  ready(): { ready: boolean; reason?: string } {
    if (this.stateNow !== 'standby' && this.stateNow !== 'leading') return { ready: false, reason: this.stateNow };
    if (this.nats?.connected !== true) return { ready: false, reason: 'nats disconnected' };
    if (this.redis?.available !== true) return { ready: false, reason: 'redis unavailable' };
    return { ready: true };
  }

  private async electionLoop(): Promise<void> {
    const every = Math.max(50, Math.floor(this.config.cluster.leaderLeaseMs / 3));
    while (!this.abort.signal.aborted) {
      await sleep(every, this.abort.signal);
      if (this.abort.signal.aborted) break;
      await this.electOnce();
    }
  }

  /** One round: a standby tries for the lease, a leader renews it (or steps down). Never throws. */
  private async electOnce(): Promise<void> {
    if (this.redis?.available === true) void this.presence?.announce(this.consoleUrlNow ?? '').catch(() => undefined);
    try {
      if (this.term === undefined) await this.tryToLead();
      else await this.renew(this.term);
    } catch (err) {
      this.log.error({ err }, 'election round failed');
    }
  }

  private async tryToLead(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined || this.redis?.available !== true) {
      this.knownLeader = null;
      return;
    }
    const sentAt = performance.now();
    let result;
    try {
      result = await lease.tryAcquire();
    } catch (err) {
      this.log.debug({ err }, 'leader lease attempt failed');
      return;
    }
    if (!result.acquired) {
      if (this.knownLeader !== result.holder) this.log.info({ leader: result.holder }, 'standing by');
      this.knownLeader = result.holder;
      return;
    }
    if (this.abort.signal.aborted) {
      await lease.release(result.epoch).catch(() => false);
      return;
    }
    this.leaseFrom = sentAt;
    const term = new LeaderTerm({
      config: this.config,
      log: this.log.child({ leader_epoch: result.epoch }),
      nats: this.nats!,
      redis: this.redis.client,
      keys: this.keys,
      metrics: this.metrics,
      coordinatorId: this.id,
      leaderEpoch: result.epoch,
      sealer: this.sealer,
      operatorVerifier: this.operatorVerifier,
      refusals: this.refusals,
      onLost: (reason) => void this.stepDown(term, reason),
      consoleUrl: () => this.consoleUrlNow,
    });
    this.term = term;
    if (!this.abort.signal.aborted) this.stateNow = 'leading';
    this.stepDownReason = undefined;
    try {
      await term.start();
    } catch (err) {
      this.log.warn({ err }, 'could not start leading (loading the table failed); standing by');
      await this.stepDown(term, 'table not loaded');
      await lease.release(result.epoch).catch(() => false);
      return;
    }
    if (this.term !== term) return; // lost while starting
    this.metrics.isLeader.set(1);
    this.metrics.leaderEpoch.set(result.epoch);
    this.log.info({ leader_epoch: result.epoch, table_version: term.tableVersion }, 'coordinator leading');
  }

  private async renew(term: LeaderTerm): Promise<void> {
    const lease = this.lease!;
    const leaseMs = this.config.cluster.leaderLeaseMs;
    // A renewal that comes too late (event loop stalled, process paused) must not extend a lease
    // another replica may already hold.
    if (performance.now() - this.leaseFrom >= leaseMs) {
      await this.stepDown(term, 'lease ran out before it could be renewed');
      return;
    }
    const sentAt = performance.now();
    let renewed = false;
    let error: unknown;
    try {
      renewed = await lease.renew(term.leaderEpoch);
    } catch (err) {
      error = err;
    }
    if (this.term !== term) return;
    if (renewed && performance.now() - this.leaseFrom < leaseMs) {
      this.leaseFrom = sentAt;
      return;
    }
    await this.stepDown(term, error === undefined ? 'lease lost to another coordinator' : `lease renewal failed: ${error instanceof Error ? error.message : String(error)}`);
  }

  private async stepDown(term: LeaderTerm, reason: string): Promise<void> {
    if (this.term !== term) return;
    this.term = undefined;
    if (this.stateNow === 'leading') this.stateNow = 'standby';
    this.metrics.clearLeaderGauges();
    if (this.stepDownReason !== reason) this.log.warn({ reason, leader_epoch: term.leaderEpoch }, 'stepped down');
    this.stepDownReason = reason;
    this.knownLeader = null;
    await term.close();
  }
}
