import { jetstream, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import {
  ClusterKeys,
  RedisKeys,
  parseSignal,
  partitionOf,
  type AssignmentTable,
  type EnrichedSignal,
  type ForwardReply,
  type ForwardRequest,
  type OrchestratorConfig,
} from '@at-orchestrator/contracts';
import {
  HealthServer,
  NatsLink,
  RedisLink,
  createRegistry,
  ensureJetStreamTopology,
  type HealthReport,
  type Logger,
  type Registry,
} from '@at-orchestrator/runtime';
import { DeadLetterPublisher } from './emit/dead-letters.js';
import { engineInput, shapeDecision, type DecisionContext, type DecisionJob } from './emit/decision-builder.js';
import { CorrelationLock } from './emit/correlation-lock.js';
import { DecisionEmitter } from './emit/decision-emitter.js';
import type { BatchDecider } from './engines/decider.js';
import { createDecider, createEngine, watchRules, type DecisionEngine } from './engines/index.js';
import { DecidedSet } from './fanin/decided-set.js';
import { FanInBuffer, type OpenCorrelation } from './fanin/fan-in-buffer.js';
import { AssignmentView } from './cluster/assignment-view.js';
import { SignalForwarder, type ForwardItem } from './cluster/forwarder.js';
import { WorkerMembership } from './cluster/worker-membership.js';
import { SignalConsumer } from './ingest/signal-consumer.js';
import { HELD_REDELIVERY_MS, jetStreamSource, type SignalSource } from './ingest/signal-source.js';
import { WorkerMetrics } from './metrics.js';
import { TokenBucket } from './rate-limiter.js';
import { CorrelationStore, type SignalToStore } from './state/correlation-store.js';

type Lifecycle = 'new' | 'starting' | 'running' | 'draining' | 'closed';

export interface WorkerOptions {
  config: OrchestratorConfig;
  log: Logger;
  /** Defaults to a fresh registry with process metrics. */
  registry?: Registry;
  /** Start the HTTP server (health, ready, metrics) on config.httpPort. Default true. */
  http?: boolean;
  /**
   * coordinated (default): partitions come from the coordinator leader (docs/cluster.md).
   * self: this worker takes every partition itself — for tests and tools that run one worker
   * without any coordinator; never run two such workers on one Redis.
   */
  ownership?: 'coordinated' | 'self';
  /** Called when the leader asks this worker to shut down (after a drain). */
  onShutdownRequested?: () => void;
  /**
   * Tests only: decision threads misbehave on the corr_ids of TEST_HOOKS (crash, throw, hang), so
   * that the worker's handling of a failing pool can be tested end to end. Never set from the
   * environment.
   */
  decisionThreadTestHooks?: boolean;
}

/** A valid signal on its way into fan-in, with the way to settle its source. */
interface Inbound {
  signal: EnrichedSignal;
  payload: string;
  partition: number;
  source: SignalSource;
}

/** Delay before a signal we cannot place now (partition moving or unowned) is redelivered. */
const RETRY_DELAY_MS = 250;

const MAX_BATCH = 512;
const DECIDED_CAPACITY = 200_000;
/**
 * Forwarded signals awaiting their owner's answer, at most, before the consumer waits for answers.
 * Bounded by messages, not requests: an owner that died answers nothing until the request times
 * out, and the signals of our own partitions must keep flowing meanwhile.
 */
const MAX_FORWARDED_IN_FLIGHT = 4_096;
/** Forward requests in flight to one owner at a time. */
const FORWARDS_PER_OWNER = 2;
/** Signals in one forward request, at most. */
const MAX_FORWARD_REQUEST = 1_024;

interface ForwardLane {
  inFlight: number;
  queue: Array<{ msg: JsMsg; item: ForwardItem }>;
}

/**
 * One worker of the data plane: ingest → fan-in → decide → guarded emit, for the partitions it owns.
 * Standing alone (this release) it owns every partition; the coordinator hands partitions over in
 * the cluster (see docs/architecture.md).
 */
export class OrchestratorWorker {
  readonly metrics: WorkerMetrics;
  readonly registry: Registry;
  private readonly config: OrchestratorConfig;
  private readonly log: Logger;
  private readonly engine: DecisionEngine;
  private readonly decider: BatchDecider;
  private rulesWatch: { close(): Promise<void> } | undefined;
  private readonly fanIn: FanInBuffer;
  private readonly decided = new DecidedSet(DECIDED_CAPACITY);
  private readonly bucket: TokenBucket;
  private readonly ctx: DecisionContext;
  private readonly startedAt = Date.now();

  private state: Lifecycle = 'new';
  private nats: NatsLink | undefined;
  private redis: RedisLink | undefined;
  private redlockLinks: RedisLink[] = [];
  private js: JetStreamClient | undefined;
  private store: CorrelationStore | undefined;
  private emitter: DecisionEmitter | undefined;
  private dlq: DeadLetterPublisher | undefined;
  private consumer: SignalConsumer | undefined;
  private http: HealthServer | undefined;
  private httpPort: number | undefined;

  /** partition → epoch at which this worker owns it. */
  private readonly owned = new Map<number, number>();
  /** partition → epoch of partitions being revoked: what was in flight still decides under it. */
  private readonly releasing = new Map<number, number>();
  /** corr_id → partition: to load from Redis again after a claim under an older epoch of ours was refused. */
  private readonly toResume = new Map<string, number>();
  /** partition → the revoke in progress for it: a revoke sent again waits for the same one. */
  private readonly revoking = new Map<number, Promise<void>>();
  private epochsClaimed = false;
  private readonly ownership: 'coordinated' | 'self';
  private readonly view = new AssignmentView();
  private membership: WorkerMembership | undefined;
  private forwarder: SignalForwarder | undefined;
  private readonly intakes = new Set<Promise<void>>();
  /** Forward requests awaiting an answer, and per owner what waits for the next request. */
  private readonly forwards = new Set<Promise<void>>();
  private readonly lanes = new Map<string, ForwardLane>();
  /** Signals queued or in a forward request (their JetStream messages not yet settled). */
  private forwardedInFlight = 0;
  private readonly readyQueue: Array<{ corr: OpenCorrelation; atDeadline: boolean }> = [];
  private readonly emits = new Set<Promise<void>>();
  private drainTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private capacityWaiters: Array<() => void> = [];
  private recovering: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly maxPendingDecisions: number;

  constructor(private readonly options: WorkerOptions) {
    this.config = options.config;
    this.log = options.log;
    this.registry =
      options.registry ?? createRegistry({ service: this.config.serviceName, role: 'worker', instance: this.config.workerId });
    this.metrics = new WorkerMetrics(this.registry, () => {
      const counts = new Map<number, number>();
      for (const c of this.fanIn.values()) counts.set(c.partition, (counts.get(c.partition) ?? 0) + 1);
      return counts;
    });
    this.engine = createEngine(this.config, {
      rulesFile: this.config.engines.rulesFile === '' ? undefined : this.config.engines.rulesFile,
      modelFile: this.config.engines.mlModelFile === '' ? undefined : this.config.engines.mlModelFile,
    });
    this.fanIn = new FanInBuffer(this.engine, this.config.minAgentsRequired, this.config.decisionTimeoutMs);
    this.bucket = new TokenBucket(this.config.rateLimitRps);
    this.maxPendingDecisions = this.config.rateLimitRps > 0 ? Math.max(64, Math.ceil(this.config.rateLimitRps)) : 8_192;
    this.decider = createDecider(this.config, this.engine, {
      log: this.log,
      registry: this.registry,
      testHooks: options.decisionThreadTestHooks === true,
      // Twice failed in a thread: each correlation closes with a timeout outcome (published) and a
      // dead letter records its signals and the reason.
      onBatchFailed: (inputs, reason) => {
        this.log.error({ reason, corr_ids: inputs.map((i) => i.corrId) }, 'decision engine failed twice on a batch: timeout outcomes');
        for (const input of inputs) void this.dlq?.sendCorrelation(input.corrId, 'engine_failed', reason, JSON.stringify(input.signals));
      },
    });
    this.ownership = options.ownership ?? 'coordinated';
    this.ctx = {
      orchestratorType: this.config.orchestratorType,
      minAgents: this.config.minAgentsRequired,
      workerId: this.config.workerId,
    };
  }

  /** The bound HTTP port (useful when HTTP_PORT=0 picked a free one). */
  get port(): number | undefined {
    return this.httpPort;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`worker cannot start from state ${this.state}`);
    this.state = 'starting';
    const { config, log } = this;

    if (this.options.http !== false) {
      this.http = new HealthServer(this, this.registry, log);
      this.httpPort = await this.http.start(config.httpPort);
    }

    this.nats = await NatsLink.connect({ servers: config.nats.servers, name: `${config.serviceName}:${config.workerId}`, log });
    await ensureJetStreamTopology(this.nats.nc, config, log);
    this.js = jetstream(this.nats.nc);

    this.redis = new RedisLink(config.redis.url, log, { name: `${config.serviceName}:${config.workerId}` });
    this.store = new CorrelationStore(this.redis.client, new RedisKeys(config.redis.keyPrefix), {
      stateSec: config.stateTtlSec,
      idempotencySec: config.idempotencyTtlSec,
    });
    // REDLOCK_URLS names independent masters for the correlation lock; by default the state Redis.
    this.redlockLinks = config.redis.redlockUrls.map((url, i) => new RedisLink(url, log, { name: `${config.serviceName}:${config.workerId}:redlock${i}` }));
    await Promise.all(this.redlockLinks.map((l) => l.start()));
    const lockOnStateClient = this.redlockLinks.length === 0;
    const lock = new CorrelationLock(
      lockOnStateClient ? [this.redis.client] : this.redlockLinks.map((l) => l.client),
      new RedisKeys(config.redis.keyPrefix),
      this.metrics,
      log,
      { sharesConnectionWithStore: lockOnStateClient },
    );
    this.emitter = new DecisionEmitter({
      js: this.js,
      store: this.store,
      lock,
      redisAvailable: () => this.redis?.available === true,
      metrics: this.metrics,
      log,
      workerId: config.workerId,
      onClosed: (job, outcome) => {
        if (outcome === 'fenced') this.onFencedDecision(job);
        this.wakeCapacity();
      },
    });
    this.dlq = new DeadLetterPublisher(this.js, this.metrics, log, config.workerId);
    this.rulesWatch = watchRules(config, this.engine, this.decider, { log, registry: this.registry });

    if (this.ownership === 'self') {
      // Epochs are taken (and open correlations resumed) once Redis is reachable; until then this
      // worker decides from memory.
      for (let p = 0; p < config.partitions; p++) this.owned.set(p, 0);
      this.metrics.partitionsOwned.set(this.owned.size);
    }
    this.redis.onAvailability((up) => {
      this.metrics.degraded.set(up ? 0 : 1);
      if (up) void this.recover();
    });
    const redisUp = await this.redis.start();
    this.metrics.degraded.set(redisUp ? 0 : 1);
    if (redisUp) await this.recover();
    else log.warn('redis unreachable at start: deciding from memory until it returns (degraded)');

    if (this.ownership === 'coordinated') await this.joinCluster();

    const tickMs = Math.max(5, Math.min(100, Math.floor(config.decisionTimeoutMs / 20)));
    this.tickTimer = setInterval(() => this.expireDeadlines(), tickMs);

    this.consumer = new SignalConsumer({
      js: this.js,
      stream: config.nats.stream,
      durable: config.nats.durable,
      maxInFlight: config.nats.maxInFlight,
      maxBatch: MAX_BATCH,
      log,
      handle: (batch) => this.processBatch(batch),
      capacity: () => this.capacity(),
    });
    this.consumer.start();
    this.state = 'running';
    log.info(
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

  // ---- health -------------------------------------------------------------------------------

  health(): HealthReport {
    const natsUp = this.nats?.connected === true;
    const redisUp = this.redis?.available === true;
    return {
      status: !natsUp ? 'unhealthy' : redisUp ? 'healthy' : 'degraded',
      orchestrator_type: this.config.orchestratorType,
      nats_connected: natsUp,
      redis_connected: redisUp,
      active_correlations: this.fanIn.size,
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
      worker_id: this.config.workerId,
      state: this.state,
      partitions_owned: this.owned.size,
      pending_decisions: this.readyQueue.length + (this.emitter?.pending ?? 0),
    };
  }

  ready(): { ready: boolean; reason?: string } {
    if (this.state !== 'running') return { ready: false, reason: this.state };
    if (this.nats?.connected !== true) return { ready: false, reason: 'nats disconnected' };
    return { ready: true };
  }

  // ---- ingest -------------------------------------------------------------------------------

  private async processBatch(msgs: JsMsg[]): Promise<void> {
    const { metrics } = this;
    metrics.batchSize.observe(msgs.length);
    const local: Inbound[] = [];
    const remote = new Map<string, Array<{ msg: JsMsg; item: ForwardItem }>>();
    for (const msg of msgs) {
      const parsed = parseSignal(msg.data, this.config.maxSignalBytes);
      if (!parsed.ok) {
        void this.dlq!.send(msg, parsed.reason, parsed.detail, parsed.corrId);
        continue;
      }
      const signal = parsed.signal;
      const partition = partitionOf(signal.corr_id, this.config.partitions);
      if (this.owned.has(partition)) {
        local.push({ signal, payload: parsed.text, partition, source: jetStreamSource(msg) });
        continue;
      }
      const owner = this.view.ownerOf(partition);
      if (owner === undefined || owner === this.config.workerId) {
        // Moving, unowned, or assigned to us but not yet taken over: hold it (redelivered shortly).
        metrics.forwardRetries.inc();
        msg.nak(RETRY_DELAY_MS);
        continue;
      }
      let list = remote.get(owner);
      if (list === undefined) remote.set(owner, (list = []));
      list.push({ msg, item: { partition, subject: msg.subject, payload: parsed.text } });
    }
    // Forwards are not awaited here: our own partitions need not wait for another worker's Redis
    // round trip, nor for the timeout of an owner that died. Each owner gets at most
    // FORWARDS_PER_OWNER requests at a time; what comes meanwhile waits and goes in the next one, so
    // requests grow with load as the batches do. Sources are settled on the owner's answer.
    for (const [owner, list] of remote) this.enqueueForward(owner, list);
    if (local.length > 0) await this.intake(local);
    while (this.forwardedInFlight >= MAX_FORWARDED_IN_FLIGHT && this.forwards.size > 0) await Promise.race(this.forwards);
  }

  private enqueueForward(owner: string, list: Array<{ msg: JsMsg; item: ForwardItem }>): void {
    let lane = this.lanes.get(owner);
    if (lane === undefined) this.lanes.set(owner, (lane = { inFlight: 0, queue: [] }));
    for (const entry of list) lane.queue.push(entry);
    this.forwardedInFlight += list.length;
    this.pumpLane(owner, lane);
  }

  private pumpLane(owner: string, lane: ForwardLane): void {
    while (lane.inFlight < FORWARDS_PER_OWNER && lane.queue.length > 0) {
      const taken = lane.queue.splice(0, MAX_FORWARD_REQUEST);
      this.forwardedInFlight -= taken.length;
      // The table may have moved on while these waited: those are given back and routed anew.
      const batch: typeof taken = [];
      for (const entry of taken) {
        if (this.view.ownerOf(entry.item.partition) === owner) batch.push(entry);
        else {
          this.metrics.forwardRetries.inc();
          entry.msg.nak(RETRY_DELAY_MS);
        }
      }
      if (batch.length === 0) continue;
      lane.inFlight += 1;
      this.forwardedInFlight += batch.length;
      const sent: Promise<void> = this.forward(owner, batch)
        .catch((err: unknown) => this.log.error({ err }, 'forward failed'))
        .finally(() => {
          lane.inFlight -= 1;
          this.forwardedInFlight -= batch.length;
          this.forwards.delete(sent);
          this.pumpLane(owner, lane);
          if (lane.inFlight === 0 && lane.queue.length === 0 && this.lanes.get(owner) === lane) this.lanes.delete(owner);
        });
      this.forwards.add(sent);
    }
  }

  private async forward(owner: string, list: Array<{ msg: JsMsg; item: ForwardItem }>): Promise<void> {
    this.metrics.signalsForwarded.inc(list.length);
    const verdicts = await this.forwarder!.send(
      owner,
      list.map((l) => l.item),
    );
    verdicts.forEach((v, i) => {
      const { msg } = list[i]!;
      if (v === 'stored') msg.ack();
      else if (v === 'held') msg.nak(HELD_REDELIVERY_MS);
      else {
        this.metrics.forwardRetries.inc();
        msg.nak(RETRY_DELAY_MS);
      }
    });
  }

  /** Signals another worker forwarded to us as the owner of their partitions. */
  private async onForwarded(req: ForwardRequest): Promise<ForwardReply> {
    const verdicts: ForwardReply['verdicts'] = req.signals.map(() => 'retry');
    const inbound: Inbound[] = [];
    req.signals.forEach((s, i) => {
      if (!this.owned.has(s.partition) || this.state !== 'running') return;
      const parsed = parseSignal(new TextEncoder().encode(s.payload), Number.MAX_SAFE_INTEGER);
      if (!parsed.ok) {
        // The sender validated it; a disagreement means mixed versions. Settle it rather than loop.
        this.log.warn({ reason: parsed.reason, detail: parsed.detail }, 'forwarded signal failed validation here; dropped');
        verdicts[i] = 'stored';
        return;
      }
      inbound.push({
        signal: parsed.signal,
        payload: s.payload,
        partition: s.partition,
        source: { holdable: false, ack: () => (verdicts[i] = 'stored'), nak: () => (verdicts[i] = 'retry'), hold: () => (verdicts[i] = 'held') },
      });
    });
    if (inbound.length > 0) await this.intake(inbound);
    return { verdicts, table_version: this.view.tableVersion };
  }

  /** Fan-in for signals of partitions we own: classify, store (one round trip), settle, find what is ready. */
  private intake(items: Inbound[]): Promise<void> {
    const p = this.doIntake(items);
    this.intakes.add(p);
    void p.finally(() => this.intakes.delete(p));
    return p;
  }

  private async doIntake(items: Inbound[]): Promise<void> {
    const now = Date.now();
    const pending: Array<{ source: SignalSource; corr: OpenCorrelation; agent: string; payload: string }> = [];
    const late: Array<{ corrId: string; agent: string; payload: string }> = [];
    const touched = new Set<OpenCorrelation>();

    for (const { signal, payload, partition, source } of items) {
      const corrId = signal.corr_id;
      const agent = signal.agent_name;
      // Counted where the signal is taken in (its partition's owner), once per delivery taken.
      this.metrics.signalsReceived.inc({ agent });
      let corr = this.fanIn.get(corrId);
      if (corr === undefined) {
        if (this.decided.has(corrId)) {
          this.lateOrDuplicate(source, corrId, agent, late, payload);
          continue;
        }
        corr = this.fanIn.create(corrId, partition, now);
      }
      if (!this.fanIn.add(corr, signal)) {
        this.duplicate(source, corr, agent);
        continue;
      }
      pending.push({ source, corr, agent, payload });
      touched.add(corr);
    }

    if (pending.length > 0) await this.persist(pending, late);
    if (late.length > 0) this.recordLate(late);

    for (const corr of touched) {
      if (this.fanIn.get(corr.corrId) === corr && this.fanIn.isReady(corr)) {
        this.fanIn.remove(corr.corrId);
        this.readyQueue.push({ corr, atDeadline: false });
      }
    }
    this.metrics.activeCorrelations.set(this.fanIn.size);
    this.drainReady();
  }

  /** Writes new signals to Redis (one pipelined round trip) and acks them; holds them when Redis is down. */
  private async persist(
    pending: Array<{ source: SignalSource; corr: OpenCorrelation; agent: string; payload: string }>,
    late: Array<{ corrId: string; agent: string; payload: string }>,
  ): Promise<void> {
    const { metrics } = this;
    // Self-owned partitions get their epochs once Redis is reachable; until then there is no epoch to write under.
    if (this.redis?.available === true && (this.ownership === 'coordinated' || this.epochsClaimed)) {
      const items: SignalToStore[] = pending.map((p) => ({
        corrId: p.corr.corrId,
        agent: p.agent,
        partition: p.corr.partition,
        payload: p.payload,
        deadlineMs: p.corr.deadlineMs,
        epoch: this.owned.get(p.corr.partition) ?? -1,
      }));
      metrics.stateOperations.inc({ operation: 'store' }, items.length);
      try {
        const verdicts = await this.store!.storeSignals(items);
        verdicts.forEach((v, i) => {
          const p = pending[i]!;
          if (v.kind === 'stored') {
            p.source.ack();
          } else if (v.kind === 'duplicate') {
            metrics.duplicateSignals.inc();
            p.source.ack();
          } else if (v.kind === 'fenced') {
            // The partition has a newer owner (we were paused past our lease): give the signal back.
            this.giveBackFenced(p.corr, items[i]!.epoch);
            p.source.nak(RETRY_DELAY_MS);
          } else {
            this.decidedBefore(p.corr, v.agents);
            this.lateOrDuplicate(p.source, p.corr.corrId, p.agent, late, p.payload);
          }
        });
        return;
      } catch (err) {
        metrics.stateFailures.inc({ operation: 'store' }, items.length);
        this.log.warn({ err, count: items.length }, 'storing signals failed; holding them in memory');
      }
    } else {
      metrics.stateFailures.inc({ operation: 'store' }, pending.length);
    }
    for (const p of pending) {
      p.corr.unsynced.set(p.agent, p.payload);
      // Settled only once the decision is published or Redis has it: a JetStream message is held
      // un-acked; a forwarded one is asked for again later (its sender cannot wait for us).
      if (p.source.holdable) p.corr.held.push(p.source);
      else p.source.hold();
    }
    this.updateHeldGauge();
  }

  private duplicate(source: SignalSource, corr: OpenCorrelation, agent: string): void {
    this.metrics.duplicateSignals.inc();
    if (corr.unsynced.has(agent)) {
      // The original is in memory only. Acking this delivery would ack the stream message the
      // original stands for: hold it instead (or have it asked for again).
      if (source.holdable) {
        corr.held.push(source);
        this.updateHeldGauge();
      } else {
        source.hold();
      }
      return;
    }
    source.ack();
  }

  private lateOrDuplicate(
    source: SignalSource,
    corrId: string,
    agent: string,
    late: Array<{ corrId: string; agent: string; payload: string }>,
    payload: string,
  ): void {
    if (this.decided.noteAgent(corrId, agent)) {
      this.metrics.duplicateSignals.inc();
    } else {
      this.metrics.lateSignals.inc();
      late.push({ corrId, agent, payload });
    }
    source.ack();
  }

  private recordLate(late: Array<{ corrId: string; agent: string; payload: string }>): void {
    if (this.redis?.available !== true) return;
    this.metrics.stateOperations.inc({ operation: 'record_late' }, late.length);
    this.store!.recordLate(late).catch((err: unknown) => {
      this.metrics.stateFailures.inc({ operation: 'record_late' }, late.length);
      this.log.debug({ err }, 'recording late signals failed');
    });
  }

  // ---- decide -------------------------------------------------------------------------------

  private expireDeadlines(): void {
    const expired = this.fanIn.takeExpired(Date.now());
    if (expired.length === 0) return;
    for (const corr of expired) this.readyQueue.push({ corr, atDeadline: true });
    this.metrics.activeCorrelations.set(this.fanIn.size);
    this.drainReady();
  }

  /** Decides what is ready, as fast as RATE_LIMIT_RPS allows, and hands the batch to the emitter. */
  private drainReady(ignoreRateLimit = false): void {
    if (this.readyQueue.length === 0 || this.emitter === undefined) return;
    const n = ignoreRateLimit ? this.readyQueue.length : this.bucket.take(this.readyQueue.length);
    if (n > 0) {
      const batch = this.readyQueue.splice(0, n);
      // From here on, a signal for these correlations is late (or a duplicate), never a new decision.
      for (const { corr } of batch) this.decided.add(corr.corrId, Object.keys(corr.signals));
      const emit = this.decideAndEmit(batch).catch((err: unknown) => this.log.error({ err }, 'emit failed'));
      this.emits.add(emit);
      void emit.finally(() => {
        this.emits.delete(emit);
        this.updateHeldGauge();
        this.wakeCapacity();
      });
    }
    if (this.readyQueue.length > 0 && this.drainTimer === undefined) {
      this.drainTimer = setTimeout(() => {
        this.drainTimer = undefined;
        this.drainReady();
      }, Math.max(1, this.bucket.msUntilNext()));
    }
    this.wakeCapacity();
  }

  private async decideAndEmit(batch: Array<{ corr: OpenCorrelation; atDeadline: boolean }>): Promise<void> {
    const results = await this.decider.decide(batch.map(({ corr, atDeadline }) => engineInput(corr, atDeadline)));
    const now = Date.now();
    // No epoch at all (-1) is a partition we no longer own: the claim is fenced and its new owner decides.
    const epochOf = (p: number): number => this.owned.get(p) ?? this.releasing.get(p) ?? -1;
    const jobs: DecisionJob[] = batch.map(({ corr, atDeadline }, i) => shapeDecision(this.engine, corr, results[i]!, atDeadline, this.ctx, epochOf(corr.partition), now));
    await this.emitter!.emit(jobs);
  }

  /** Backpressure: undefined when there is room, else a promise that resolves when there is. */
  private capacity(): Promise<void> | undefined {
    const pending = this.readyQueue.length + (this.emitter?.pending ?? 0);
    if (pending < this.maxPendingDecisions || this.state !== 'running') return undefined;
    return new Promise((resolve) => this.capacityWaiters.push(resolve));
  }

  private wakeCapacity(): void {
    if (this.capacityWaiters.length === 0) return;
    const pending = this.readyQueue.length + (this.emitter?.pending ?? 0);
    if (pending >= this.maxPendingDecisions && this.state === 'running') return;
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const w of waiters) w();
  }

  // ---- Redis recovery -----------------------------------------------------------------------

  /** Runs when Redis becomes available: take epochs, resume open correlations, write what is only in memory. */
  private recover(): Promise<void> {
    this.recovering ??= this.doRecover().finally(() => {
      this.recovering = undefined;
    });
    return this.recovering;
  }

  private async doRecover(): Promise<void> {
    const store = this.store!;
    try {
      if (this.ownership === 'coordinated') {
        // Epochs belong to the leader; partitions assigned while Redis was away are resumed on assign.
      } else if (!this.epochsClaimed) {
        const partitions = [...this.owned.keys()];
        const epochs = await store.bumpEpochs(partitions);
        for (const [p, e] of epochs) this.owned.set(p, e);
        this.epochsClaimed = true;
        await this.resume(partitions);
      } else {
        const restored = await store.restoreEpochs(this.owned);
        if (restored > 0) this.log.warn({ restored }, 'redis had lost partition epochs; restored ours');
      }
      await this.syncUnsynced();
      await this.resumeRefused();
      await this.emitter?.syncAfterRecovery();
    } catch (err) {
      this.log.warn({ err }, 'redis recovery incomplete; will retry when redis is next available');
    }
  }

  /**
   * Loads the open correlations of partitions from Redis, deadlines included (only those `only`
   * names, when given). A partition no longer ours by the time Redis answered is left alone.
   */
  private async resume(partitions: number[], only?: ReadonlySet<string>): Promise<void> {
    const loaded = await this.store!.loadOpen(partitions, only);
    const stored = loaded.filter((s) => this.owned.has(s.partition));
    let resumed = 0;
    const encoder = new TextEncoder();
    for (const s of stored) {
      let corr = this.fanIn.get(s.corrId);
      if (corr === undefined) {
        if (this.decided.has(s.corrId)) continue;
        const firstSeen = s.deadlineMs - this.config.decisionTimeoutMs;
        corr = this.fanIn.create(s.corrId, s.partition, firstSeen, s.deadlineMs);
        resumed += 1;
      }
      for (const payload of Object.values(s.signals)) {
        const parsed = parseSignal(encoder.encode(payload), Number.MAX_SAFE_INTEGER);
        if (parsed.ok) this.fanIn.add(corr, parsed.signal as EnrichedSignal);
      }
      corr.claimedNotPublished = s.claimedNotPublished;
      if (s.claimedNotPublished || this.fanIn.isReady(corr)) {
        this.fanIn.remove(corr.corrId);
        this.readyQueue.push({ corr, atDeadline: !this.fanIn.isReady(corr) });
      }
    }
    this.metrics.activeCorrelations.set(this.fanIn.size);
    if (stored.length > 0) this.log.info({ resumed, loaded: stored.length }, 'resumed open correlations from redis');
    this.drainReady();
  }

  /** Writes signals held only in memory to Redis, then settles their source messages. */
  private async syncUnsynced(): Promise<void> {
    const written = await this.writeUnsynced([...this.fanIn.values()], (p) => this.owned.get(p));
    if (written.signals > 0) this.log.info(written, 'signals held in memory written to redis');
  }

  /**
   * Writes what open correlations hold only in memory under the epoch `epochOf` gives their
   * partition (none: not written), and settles each correlation's held sources by what Redis
   * answered: acked once stored (or decided before), given back when fenced, since then the signal
   * belongs to the partition's new owner and must reach it by redelivery.
   */
  private async writeUnsynced(corrs: OpenCorrelation[], epochOf: (partition: number) => number | undefined): Promise<{ signals: number; correlations: number }> {
    const items: SignalToStore[] = [];
    const owners: Array<{ corr: OpenCorrelation; from: number; to: number; epoch: number }> = [];
    for (const corr of corrs) {
      const epoch = epochOf(corr.partition);
      if (corr.unsynced.size === 0 || epoch === undefined) continue;
      const from = items.length;
      for (const [agent, payload] of corr.unsynced) {
        items.push({ corrId: corr.corrId, agent, partition: corr.partition, payload, deadlineMs: corr.deadlineMs, epoch });
      }
      owners.push({ corr, from, to: items.length, epoch });
    }
    if (items.length === 0) return { signals: 0, correlations: 0 };
    this.metrics.stateOperations.inc({ operation: 'store' }, items.length);
    const verdicts = await this.store!.storeSignals(items);
    for (const { corr, from, to, epoch } of owners) {
      const mine = verdicts.slice(from, to);
      const done = mine.find((v) => v.kind === 'done');
      if (mine.some((v) => v.kind === 'fenced')) {
        this.giveBackFenced(corr, epoch);
        continue;
      }
      corr.unsynced.clear();
      for (const m of corr.held) m.ack();
      corr.held.length = 0;
      // Decided before (while it is still ours to close): what we held is late.
      if (done !== undefined && this.fanIn.get(corr.corrId) === corr) this.decidedBefore(corr, done.agents);
    }
    this.updateHeldGauge();
    return { signals: items.length, correlations: owners.length };
  }

  /**
   * A store under `epoch` was refused: the partition has a newer owner. The correlation leaves the
   * fan-in and what it held goes back to JetStream, which brings it to that owner.
   */
  private giveBackFenced(corr: OpenCorrelation, epoch: number): void {
    this.metrics.fencedWrites.inc();
    if (this.fanIn.get(corr.corrId) === corr) this.fanIn.remove(corr.corrId);
    for (const h of corr.held) h.nak(RETRY_DELAY_MS);
    corr.held.length = 0;
    this.losePartition(corr.partition, epoch, 'fenced store');
  }

  /** Redis says the correlation was decided before (by us before a restart, or by a previous owner). */
  private decidedBefore(corr: OpenCorrelation, agents: string[]): void {
    if (this.fanIn.get(corr.corrId) === corr) this.fanIn.remove(corr.corrId);
    if (!this.decided.has(corr.corrId)) this.decided.add(corr.corrId, agents);
  }

  private updateHeldGauge(): void {
    let held = 0;
    for (const c of this.fanIn.values()) held += c.held.length;
    this.metrics.heldMessages.set(held);
  }

  // ---- cluster ------------------------------------------------------------------------------

  private async joinCluster(): Promise<void> {
    const { config, log } = this;
    this.forwarder = new SignalForwarder(this.nats!.nc, config.workerId, log);
    this.forwarder.serve((req) => this.onForwarded(req));
    this.membership = new WorkerMembership({
      nc: this.nats!.nc,
      redis: this.redis!.client,
      redisAvailable: () => this.redis?.available === true,
      keys: new ClusterKeys(config.redis.keyPrefix),
      workerId: config.workerId,
      capacity: config.cluster.workerCapacity,
      heartbeatMs: config.cluster.heartbeatIntervalMs,
      leaseMs: config.cluster.workerLeaseMs,
      log,
      handlers: {
        assign: (partitions) => this.assign(partitions),
        revoke: (partitions) => this.revoke(partitions),
        shutdown: () => {
          log.info('leader asked this worker to shut down (drained)');
          this.options.onShutdownRequested?.();
        },
        table: (table) => this.onTable(table),
        heartbeat: () => ({ load: this.fanIn.size, owned: [...this.owned.keys()], draining: this.state === 'draining' }),
      },
    });
    await this.membership.start();
    // Restarted with the same WORKER_ID (a pod keeps its name): take back what the table says is ours.
    const table = await this.membership.loadTable().catch(() => undefined);
    if (table !== undefined) {
      this.view.apply(table);
      const mine = table.partitions.filter((p) => p.owner === config.workerId && p.phase === 'owned');
      if (mine.length > 0) await this.assign(mine.map((p) => ({ partition: p.partition, epoch: p.epoch })));
    }
  }

  /** The leader gives us partitions at new epochs: resume their open correlations from Redis. */
  private async assign(partitions: Array<{ partition: number; epoch: number }>): Promise<number[]> {
    // Any other epoch, lower too: after Redis lost its data a new leader's partition epochs start again.
    const fresh = partitions.filter((p) => this.owned.get(p.partition) !== p.epoch);
    for (const p of fresh) this.owned.set(p.partition, p.epoch);
    this.metrics.partitionsOwned.set(this.owned.size);
    if (fresh.length > 0) {
      if (this.redis?.available !== true) throw new Error('redis unavailable: cannot resume partitions');
      await this.resume(fresh.map((p) => p.partition));
      this.log.info({ partitions: fresh.map((p) => p.partition), epochs: fresh.map((p) => p.epoch) }, 'partitions assigned');
    }
    return partitions.map((p) => p.partition);
  }

  /**
   * Cooperative revoke: stop taking signals for these partitions, finish what is in flight (our
   * claims still carry the current epoch, which the leader only bumps after we answer), leave the
   * open correlations in Redis for the next owner, answer "released".
   */
  private async revoke(partitions: number[]): Promise<number[]> {
    // Asked again (a new leader resends it): answer when the first one is done, not before.
    await Promise.allSettled(partitions.flatMap((p) => this.revoking.get(p) ?? []));
    const set = new Set(partitions.filter((p) => this.owned.has(p)));
    if (set.size === 0) return partitions;
    const done = this.release(set);
    for (const p of set) this.revoking.set(p, done);
    try {
      await done;
    } finally {
      for (const p of set) if (this.revoking.get(p) === done) this.revoking.delete(p);
    }
    return partitions;
  }

  private async release(set: Set<number>): Promise<void> {
    const started = Date.now();
    const epochs = new Map([...set].map((p) => [p, this.owned.get(p)!]));
    for (const [p, epoch] of epochs) {
      this.releasing.set(p, epoch);
      this.owned.delete(p);
    }
    this.metrics.partitionsOwned.set(this.owned.size);
    try {
      // Work already accepted for these partitions finishes under our epoch.
      await Promise.allSettled([...this.intakes]);
      const mine = this.readyQueue.filter((r) => set.has(r.corr.partition));
      if (mine.length > 0) {
        for (let i = this.readyQueue.length - 1; i >= 0; i--) if (set.has(this.readyQueue[i]!.corr.partition)) this.readyQueue.splice(i, 1);
        for (const r of mine) this.decided.add(r.corr.corrId, Object.keys(r.corr.signals));
        const emit = this.decideAndEmit(mine);
        this.emits.add(emit);
        void emit.finally(() => this.emits.delete(emit));
      }
      await Promise.allSettled([...this.emits]);
      await this.flushPartitions(set, epochs);
    } finally {
      for (const p of set) if (this.releasing.get(p) === epochs.get(p)) this.releasing.delete(p);
    }
    this.log.info({ partitions: [...set], took_ms: Date.now() - started }, 'partitions released');
  }

  /**
   * Drops open correlations of partitions from memory; what is only in memory is written under
   * `epochs` (a partition without one is not written) or given back to JetStream. A partition we
   * own again (the leader gave it back while a revoke waited) is not ours to flush. The rest leave
   * the fan-in at once, before any await: should a partition come back to us meanwhile, its assign
   * resumes it from Redis into fresh correlations, which this flush must not remove.
   */
  private async flushPartitions(partitions: Set<number>, epochs: Map<number, number>): Promise<void> {
    const leaving = [...this.fanIn.values()].filter((c) => partitions.has(c.partition) && !this.owned.has(c.partition));
    for (const c of leaving) this.fanIn.remove(c.corrId);
    this.metrics.activeCorrelations.set(this.fanIn.size);
    if (this.redis?.available === true) {
      try {
        await this.writeUnsynced(leaving, (p) => epochs.get(p));
      } catch (err) {
        this.log.warn({ err }, 'could not write held signals before release; returning them to JetStream');
      }
    }
    for (const c of leaving) {
      for (const h of c.held) h.nak();
      c.held.length = 0;
    }
    this.updateHeldGauge();
  }

  /**
   * A claim under `job.epoch` was refused. Usually the partition has a newer owner, which resumes the
   * correlation from Redis. But the leader may have given the partition back to us at a newer epoch
   * while the claim was on its way (it waits for a lock on another Redis), and our assign resumed the
   * partition without this correlation, then still ours in flight: so we load the partition's open
   * correlations again, from Redis, where an owner in between may have added signals.
   */
  private onFencedDecision(job: DecisionJob): void {
    this.decided.delete(job.corr.corrId);
    const current = this.owned.get(job.corr.partition);
    if (current === undefined || current <= job.epoch) return;
    if (this.toResume.size === 0) queueMicrotask(() => void this.resumeRefused());
    this.toResume.set(job.corr.corrId, job.corr.partition);
  }

  /**
   * Loads the correlations of refused claims again (see onFencedDecision): only those, since others
   * of the partition may be queued for a decision right now. Kept for the next Redis recovery when
   * Redis cannot answer.
   */
  private async resumeRefused(): Promise<void> {
    if (this.toResume.size === 0) return;
    const refused = new Map(this.toResume);
    this.toResume.clear();
    try {
      await this.resume([...new Set(refused.values())], new Set(refused.keys()));
    } catch (err) {
      for (const [corrId, partition] of refused) this.toResume.set(corrId, partition);
      this.log.warn({ err, correlations: refused.size }, 'could not load refused correlations again; will retry when redis is next available');
    }
  }

  /**
   * A write under `epoch` was fenced: the partition has a newer owner. Only the epoch the write was
   * made under is given up; a fenced answer that arrives after the leader gave the partition back to
   * us at a newer epoch says nothing about that newer ownership.
   */
  private losePartition(partition: number, epoch: number, why: string): void {
    if (this.owned.get(partition) !== epoch || this.ownership === 'self') return;
    this.owned.delete(partition);
    this.metrics.partitionsOwned.set(this.owned.size);
    this.log.warn({ partition, epoch, why }, 'partition lost to a newer owner');
    void this.flushPartitions(new Set([partition]), new Map());
  }

  /**
   * Routing follows the newest table, and so does gaining a partition whose `assign` never reached
   * us. Losing one does not: a partition is given up only when the leader revokes it or a write under
   * our epoch is refused (fenced) — the fence, not the broadcast, keeps a paused worker from acting
   * on partitions it lost.
   */
  private onTable(table: AssignmentTable): void {
    if (!this.view.apply(table) || this.state !== 'running') return;
    const missed = table.partitions
      .filter((p) => p.owner === this.config.workerId && p.phase === 'owned' && (this.owned.get(p.partition) ?? -1) < p.epoch)
      .map((p) => ({ partition: p.partition, epoch: p.epoch }));
    if (missed.length > 0) {
      this.assign(missed).catch((err: unknown) => this.log.warn({ err }, 'could not take partitions the table gives us'));
    }
  }

  // ---- shutdown -----------------------------------------------------------------------------

  private async shutdown(): Promise<void> {
    if (this.state === 'new') {
      this.state = 'closed';
      return;
    }
    this.state = 'draining';
    this.wakeCapacity();
    this.log.info('worker draining: stopping intake');
    await this.consumer?.stop();
    // A finished request sends what queued behind it, so wait until the lanes are empty.
    while (this.forwards.size > 0) await Promise.allSettled([...this.forwards]);
    this.forwarder?.close();
    await Promise.allSettled([...this.intakes]);
    // Publish everything that is ready now; open correlations stay in Redis for the next owner.
    this.drainReady(true);
    await Promise.allSettled([...this.emits]);
    await this.emitter?.idle();
    this.emitter?.close();
    await this.rulesWatch?.close();
    await this.decider.close();
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    if (this.drainTimer !== undefined) clearTimeout(this.drainTimer);
    let returned = 0;
    for (const corr of this.fanIn.values()) {
      for (const m of corr.held) {
        m.nak();
        returned += 1;
      }
      corr.held.length = 0;
    }
    if (returned > 0) this.log.warn({ returned }, 'signals not yet in redis returned to JetStream for redelivery');
    // Removing the heartbeat lets the leader hand our partitions on at once.
    await this.membership?.close();
    await this.nats?.close();
    await this.redis?.close();
    await Promise.all(this.redlockLinks.map((l) => l.close()));
    await this.http?.close();
    this.state = 'closed';
    this.log.info('worker closed');
  }
}
