import { z } from 'zod';

/**
 * The cluster protocol between coordinators, workers and the CLI: NATS subjects, Redis keys and
 * the control messages. See docs/cluster.md for the handoff state machine.
 */

/**
 * The cluster protocol's version: what coordinators and workers must agree on to work together (the
 * control messages, the Redis keys and scripts they share, the forward protocol, the fencing rules).
 * A leader assigns partitions only to workers that speak its protocol (docs/cluster.md, "Rolling
 * upgrades"). Raise it with any change that a process of the previous version could misread; a
 * change both sides tolerate (a new optional field) keeps it. ORCHESTRATOR_VERSION is not checked.
 */
export const CLUSTER_PROTOCOL: number = 2;
// Protocol 2: decisions are published on orchestrator.decided.* and republished by the decisions
// stream (a worker of protocol 1 publishes on orchestrated.* itself), and the Redis keys a script uses
// together share a hash tag by partition (Redis Cluster). Neither side may run beside the other.
/**
 * The protocol of a heartbeat, table or command that states none: the builds before the check, which
 * all speak protocol 1. A leader of protocol 1 accepts them; a leader of any later protocol refuses them.
 */
export const UNSTATED_CLUSTER_PROTOCOL = 1;

export const ClusterSubjects = {
  /** Leader → one worker: assign / revoke partitions (request/reply). */
  worker: (workerId: string) => `orchestrator.ctl.worker.${workerId}`,
  /** Leader → everyone: the full assignment table, on every change and periodically. */
  assignment: 'orchestrator.ctl.assignment',
  /** CLI → leader: operator commands (request/reply). Only the leader listens. */
  leader: 'orchestrator.ctl.leader',
  /** Worker → owner of a partition: a batch of forwarded signals (request/reply). */
  forward: (workerId: string) => `orchestrator.fwd.${workerId}`,
} as const;

/**
 * The cluster-wide keys: heartbeats and the worker index, the leader lease and epoch, the assignment
 * table. They all carry ONE hash tag, `{cluster}`, on purpose: the scripts and transactions that use
 * them together (the lease check before a table write, a heartbeat with its index entry) stay in one
 * slot of a Redis Cluster (docs/cluster.md, "Key layout").
 */
export class ClusterKeys {
  /** `<prefix>:{cluster}`: what every cluster-wide key starts with. */
  readonly base: string;
  constructor(readonly prefix = 'orchestrator') {
    this.base = `${prefix}:{cluster}`;
  }
  /** A worker's heartbeat (JSON WorkerHeartbeat), with a PX lease: it expires when the worker dies. */
  worker(workerId: string): string {
    return `${this.base}:worker:${workerId}`;
  }
  /**
   * The ids of workers that have heartbeated (a set, added to with every heartbeat). Membership reads
   * this index and then each id's heartbeat key, never scanning the keyspace: the keyspace holds a
   * done-marker per decision for an hour, and a SCAN over it grew with the decision rate.
   */
  workers(): string {
    return `${this.base}:workers`;
  }
  /** The coordinator leader lease: value = coordinator id, PX lease. */
  leader(): string {
    return `${this.base}:leader`;
  }
  /** Moved on by every new leader: the leader's fencing token. */
  leaderEpoch(): string {
    return `${this.base}:leader:epoch`;
  }
  /** Hash partition → JSON PartitionState: the assignment the leader maintains. */
  assignment(): string {
    return `${this.base}:assignment`;
  }
  /** "1" while rebalancing is paused by an operator. */
  paused(): string {
    return `${this.base}:paused`;
  }
}

export const WorkerHeartbeat = z.object({
  id: z.string(),
  capacity: z.number().positive(),
  /** Open correlations in memory, as a load figure for the status page. */
  load: z.number().nonnegative(),
  version: z.string(),
  /** CLUSTER_PROTOCOL of the worker; absent from workers older than the protocol check (UNSTATED_CLUSTER_PROTOCOL). */
  protocol: z.number().int().nonnegative().optional(),
  draining: z.boolean(),
  started_at: z.string(),
  /** Partitions the worker itself believes it owns (for status and lag). */
  owned: z.array(z.number().int()),
  /** Figures for the console and `workers` (absent from workers older than the console). */
  stats: z
    .object({
      /** Since the worker started: decisions published, signals forwarded, decisions fenced. */
      decided: z.number().nonnegative(),
      forwarded: z.number().nonnegative(),
      fenced: z.number().nonnegative(),
      /** Dead letters sent since start, by reason. */
      dead_letters: z.record(z.string(), z.number().nonnegative()),
      /** Cumulative decision-latency counts per DECISION_LATENCY_BUCKETS bound (seconds), then +Inf. */
      latency: z.array(z.number().nonnegative()),
      /** [partition, open correlations, age of the oldest in ms] for each partition with any open. */
      partitions: z.array(z.tuple([z.number().int(), z.number().int().nonnegative(), z.number().nonnegative()])),
    })
    .optional(),
});
export type WorkerHeartbeat = z.infer<typeof WorkerHeartbeat>;

/** Upper bounds (seconds) of the decision-latency histogram, shared by the metric and the heartbeat. */
export const DECISION_LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** A coordinator's presence (CoordinatorKeys.presence), refreshed with every election round. */
export const CoordinatorPresence = z.object({
  id: z.string(),
  console_url: z.string(),
  version: z.string(),
  started_at: z.string(),
});
export type CoordinatorPresence = z.infer<typeof CoordinatorPresence>;

export const PartitionPhase = z.enum(['owned', 'revoking', 'unowned']);
export const PartitionState = z.object({
  partition: z.number().int().nonnegative(),
  owner: z.string().nullable(),
  epoch: z.number().int().nonnegative(),
  phase: PartitionPhase,
  /** While revoking: who gets it next. */
  next: z.string().nullable().optional(),
});
export type PartitionState = z.infer<typeof PartitionState>;

export const AssignmentTable = z.object({
  version: z.number().int().nonnegative(),
  leader: z.string().nullable(),
  leader_epoch: z.number().int().nonnegative(),
  /** The leader's CLUSTER_PROTOCOL; absent from leaders older than the protocol check. */
  protocol: z.number().int().nonnegative().optional(),
  partitions: z.array(PartitionState),
});
export type AssignmentTable = z.infer<typeof AssignmentTable>;

/** The sending leader's CLUSTER_PROTOCOL, in every command; absent from leaders older than the protocol check. */
const commandProtocol = z.number().int().nonnegative().optional();
export const WorkerCommand = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('assign'),
    leader_epoch: z.number().int(),
    protocol: commandProtocol,
    partitions: z.array(z.object({ partition: z.number().int(), epoch: z.number().int() })),
  }),
  z.object({ type: z.literal('revoke'), leader_epoch: z.number().int(), protocol: commandProtocol, partitions: z.array(z.number().int()) }),
  /** Drain: the worker stops once it owns nothing (exit 0). */
  z.object({ type: z.literal('shutdown'), leader_epoch: z.number().int(), protocol: commandProtocol }),
]);
export type WorkerCommand = z.infer<typeof WorkerCommand>;

export const WorkerCommandReply = z.object({
  ok: z.boolean(),
  /** For assign: partitions now owned; for revoke: partitions released. */
  partitions: z.array(z.number().int()),
  error: z.string().optional(),
});
export type WorkerCommandReply = z.infer<typeof WorkerCommandReply>;

/** A forwarded batch: signals whose partition the receiver owns (per the sender's view). */
export const ForwardRequest = z.object({
  from: z.string(),
  signals: z.array(z.object({ partition: z.number().int(), subject: z.string(), payload: z.string() })),
});
export type ForwardRequest = z.infer<typeof ForwardRequest>;

/**
 * Per signal: stored (ack the source); retry (not the owner, moving, failed: redeliver soon); held
 * (the owner has it in memory only while Redis is down: redeliver later, so the source stays un-acked
 * until the decision is published or Redis has the signal).
 */
export const ForwardVerdict = z.enum(['stored', 'retry', 'held']);
export const ForwardReply = z.object({ verdicts: z.array(ForwardVerdict), table_version: z.number().int() });
export type ForwardReply = z.infer<typeof ForwardReply>;

export const LEADER_COMMANDS = ['status', 'workers', 'partitions', 'plan', 'rebalance', 'drain', 'move', 'pause', 'resume'] as const;
export const LeaderRequest = z.object({
  cmd: z.enum(LEADER_COMMANDS),
  worker: z.string().optional(),
  partition: z.number().int().optional(),
});
export type LeaderRequest = z.infer<typeof LeaderRequest>;

export const LeaderReply = z.union([
  z.object({ ok: z.literal(true), leader: z.string(), leader_epoch: z.number().int(), data: z.unknown() }),
  z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) }),
]);
export type LeaderReply = z.infer<typeof LeaderReply>;
