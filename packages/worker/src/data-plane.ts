import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { RedisKeys, type OrchestratorConfig } from '@at-orchestrator/contracts';
import { ControlRefusals, type Logger, type NatsLink, type Redis, type RedisLink, type Registry } from '@at-orchestrator/runtime';
import type { AssignmentView } from './cluster/assignment-view.js';
import { ForwardLanes } from './cluster/forward-lanes.js';
import { SignalForwarder } from './cluster/forwarder.js';
import { PartitionOwner } from './cluster/partition-owner.js';
import { CorrelationLock } from './emit/correlation-lock.js';
import { DeadLetterPublisher } from './emit/dead-letters.js';
import { DecisionEmitter } from './emit/decision-emitter.js';
import { JetStreamPublisher } from './emit/jetstream-publisher.js';
import type { BatchDecider } from './engines/decider.js';
import { watchRules, type DecisionEngine } from './engines/index.js';
import type { Correlations } from './fanin/correlations.js';
import { MaxDeliveriesWatch } from './ingest/max-deliveries.js';
import { SignalRouter } from './ingest/signal-router.js';
import { AckBatch } from './ingest/signal-source.js';
import type { WorkerMetrics } from './metrics.js';
import { CorrelationSync } from './pipeline/correlation-sync.js';
import { DecisionQueue } from './pipeline/decision-queue.js';
import { Intake } from './pipeline/intake.js';
import { TokenBucket } from './rate-limiter.js';
import { CorrelationStore } from './state/correlation-store.js';

/** The units of a worker's data plane, built over its open connections. */
export interface DataPlane {
  js: JetStreamClient;
  store: CorrelationStore;
  emitter: DecisionEmitter;
  dlq: DeadLetterPublisher;
  owner: PartitionOwner;
  queue: DecisionQueue;
  intake: Intake;
  sync: CorrelationSync;
  lanes: ForwardLanes;
  router: SignalRouter;
  /** Coordinated workers only: requests to and from the owners of other partitions. */
  forwarder: SignalForwarder | undefined;
  /** Counts and logs control messages refused for want of a valid seal (forwards, commands, tables). */
  refusals: ControlRefusals;
  /** Dead-letters what exceeded MAX_DELIVER (started by the worker). */
  poison: MaxDeliveriesWatch;
  rulesWatch: { close(): Promise<void> } | undefined;
}

export interface DataPlaneDeps {
  config: OrchestratorConfig;
  log: Logger;
  registry: Registry;
  metrics: WorkerMetrics;
  engine: DecisionEngine;
  decider: BatchDecider;
  correlations: Correlations;
  view: AssignmentView;
  nats: NatsLink;
  redis: RedisLink;
  /** Independent masters for the correlation lock (REDLOCK_URLS); none: no lock (the epoch fence decides). */
  redlock: Array<RedisLink<Redis>>;
  ownership: 'coordinated' | 'self';
  /** Whether the worker takes new work (false while starting and draining). */
  running: () => boolean;
  /** Whether intake and resumes wait for room under the bounds (default: running; never while draining). */
  accepting?: () => boolean;
}

/**
 * Builds the data plane and wires its units together; no I/O. Lower units learn of higher ones only
 * through the callbacks passed here: a fenced claim reaches the partition owner through the emitter's
 * `onClosed`, a fenced store through `Correlations`' `onFenced` (set by the worker).
 */
export function assembleDataPlane(d: DataPlaneDeps): DataPlane {
  const { config, log, metrics, correlations, view, running } = d;
  const js = jetstream(d.nats.nc);
  const keys = new RedisKeys(config.redis.keyPrefix, config.partitions);
  const redisClient = d.redis.client;
  const store = new CorrelationStore(redisClient, keys, { stateSec: config.stateTtlSec, idempotencySec: config.idempotencyTtlSec });
  // The epoch fence in the claim keeps a decision single; a lock adds no safety to it
  // (docs/architecture.md, "Why no lock by default"). Only operators who name lock masters get one.
  const lock = d.redlock.length === 0 ? undefined : new CorrelationLock(d.redlock.map((l) => l.client), keys, metrics, log);
  const redisAvailable = (): boolean => d.redis.available;
  // Built below; the emitter's callback runs only once decisions flow, after both exist.
  let queue: DecisionQueue | undefined;
  let owner: PartitionOwner | undefined;
  // One reply subscription for every PubAck rather than a request per decision (jetstream-publisher.ts).
  const publisher = new JetStreamPublisher(d.nats.nc);
  const acks = new AckBatch();
  const emitter = new DecisionEmitter({
    publisher,
    store,
    lock,
    redisAvailable,
    metrics,
    log,
    workerId: config.workerId,
    // Done-markers kept while Redis is down: as many as open correlations may be (docs/security.md).
    maxUnsyncedDone: config.ingest.maxOpenCorrelations,
    preclaimMaxAgeMs: config.cluster.heartbeatIntervalMs / 2,
    afterPublish: () => acks.flush(),
    onClosed: (job, outcome) => {
      if (outcome === 'fenced') {
        correlations.decided.delete(job.corr.corrId);
        owner?.claimRefused(job.corr.corrId, job.corr.partition, job.epoch);
      }
      queue?.wake();
    },
  });
  const decisions = new DecisionQueue({
    correlations,
    engine: d.engine,
    decider: d.decider,
    sink: emitter,
    ctx: { orchestratorType: config.orchestratorType, minAgents: config.minAgentsRequired, workerId: config.workerId },
    bucket: new TokenBucket(config.rateLimitRps),
    maxPending: config.rateLimitRps > 0 ? Math.max(64, Math.ceil(config.rateLimitRps)) : 8_192,
    maxOpen: config.ingest.maxOpenCorrelations,
    onPause: (bound) => metrics.intakePaused.inc({ bound }),
    decisionEpoch: (p) => owner?.decisionEpoch(p) ?? -1,
    accepting: d.accepting ?? running,
    log,
  });
  queue = decisions;
  const sync = new CorrelationSync({
    correlations,
    queue: decisions,
    store,
    redisAvailable,
    ownedEpoch: (p) => owner?.ownedEpoch(p),
    decisionTimeoutMs: config.decisionTimeoutMs,
    maxOpen: config.ingest.maxOpenCorrelations,
    metrics,
    log,
  });
  let intake: Intake | undefined;
  const partitions = new PartitionOwner({
    workerId: config.workerId,
    mode: d.ownership,
    partitions: config.partitions,
    view,
    store,
    gauge: metrics.partitionsOwned,
    log,
    work: {
      resume: (ps, only) => sync.resume(ps, only),
      finish: async (ps) => {
        await intake?.settled();
        decisions.takePartitions(ps);
        await decisions.settled();
        // The next owner must find them published, not pending (it would publish them again).
        await emitter.flushMarks();
      },
      flush: (ps, epochs) => sync.flush(ps, epochs),
      redisAvailable,
      running,
    },
  });
  owner = partitions;
  intake = new Intake({
    correlations,
    queue: decisions,
    store,
    redisAvailable,
    epochs: partitions,
    maxAgentsPerCorrelation: config.ingest.maxAgentsPerCorrelation,
    workerId: config.workerId,
    metrics,
    log,
  });
  const refusals = new ControlRefusals(d.registry, log);
  const forwarder = d.ownership === 'coordinated' ? new SignalForwarder(d.nats.nc, config.workerId, log, { clusterSecrets: config.security.clusterSecrets, refusals }) : undefined;
  const lanes = new ForwardLanes({
    send: (to, items) => (forwarder === undefined ? Promise.resolve(items.map(() => 'retry' as const)) : forwarder.send(to, items)),
    ownerOf: (p) => view.ownerOf(p),
    metrics,
    log,
  });
  const dlq = new DeadLetterPublisher(js, metrics, log, config.workerId, () => d.nats.nc.info?.max_payload ?? 1024 * 1024);
  const router = new SignalRouter({
    workerId: config.workerId,
    partitions: config.partitions,
    maxSignalBytes: config.maxSignalBytes,
    allowedAgents: config.ingest.allowedAgents,
    capacity: () => decisions.capacity(),
    owns: (p) => partitions.ownedEpoch(p) !== undefined,
    ownerOf: (p) => view.ownerOf(p),
    tableVersion: () => view.tableVersion,
    running,
    intake,
    lanes,
    dlq,
    acks,
    metrics,
    log,
  });
  const rulesWatch = watchRules(config, d.engine, d.decider, { log, registry: d.registry });
  const poison = new MaxDeliveriesWatch({ nc: d.nats.nc, stream: config.nats.stream, durable: config.nats.durable, maxDeliver: config.nats.maxDeliver, dlq, log });
  return { js, store, emitter, dlq, owner: partitions, queue: decisions, intake, sync, lanes, router, forwarder, refusals, poison, rulesWatch };
}
