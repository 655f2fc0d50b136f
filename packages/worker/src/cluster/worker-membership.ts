import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import {
  AssignmentTable,
  CLUSTER_PROTOCOL,
  ClusterKeys,
  UNSTATED_CLUSTER_PROTOCOL,
  ClusterSubjects,
  ORCHESTRATOR_VERSION,
  PartitionState,
  WorkerCommand,
  type WorkerCommandReply,
  type WorkerHeartbeat,
} from '@at-orchestrator/contracts';
import { ControlVerifier, type ControlRefusals, type Logger, type RedisClient } from '@at-orchestrator/runtime';

export interface MembershipHandlers {
  assign(partitions: Array<{ partition: number; epoch: number }>): Promise<number[]>;
  revoke(partitions: number[]): Promise<number[]>;
  shutdown(): void;
  table(table: AssignmentTable): void;
  /** What the heartbeat reports. */
  heartbeat(): Promise<Pick<WorkerHeartbeat, 'load' | 'owned' | 'draining' | 'stats'>>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The worker's side of the cluster protocol (docs/cluster.md): heartbeats into Redis with a lease,
 * answers the leader's assign / revoke / shutdown commands, follows the assignment broadcasts.
 * Every command and table must carry a valid seal (docs/security.md, "The control plane"), checked
 * before anything in it is read: a leader epoch is public, so only a verified message may raise ours.
 * Commands from a leader older than the newest verified one are refused. A leader speaking another
 * cluster protocol is reported (an error, once per leader term): its messages are still obeyed when
 * they parse — that leader refuses to assign this worker partitions, and giving partitions up is safe.
 */
export class WorkerMembership {
  private timer: NodeJS.Timeout | undefined;
  private subs: Subscription[] = [];
  private highestLeaderEpoch = 0;
  /** Leader epochs whose protocol mismatch was reported. */
  private readonly mismatchReported = new Set<number>();
  private readonly startedAt = new Date().toISOString();
  private closed = false;
  private readonly verifier: ControlVerifier;
  /** performance.now() when the last heartbeat Redis acknowledged was sent; its key lives at least leaseMs from then. */
  private lastBeatSentAt = Number.NEGATIVE_INFINITY;
  /** performance.now() when the heartbeat timer last ran, whether Redis answered or not. */
  private lastTickAt = performance.now();
  /** The process was stopped or stalled past its lease since its last acknowledged heartbeat. */
  private stalled = false;

  constructor(
    private readonly o: {
      nc: NatsConnection;
      redis: RedisClient;
      redisAvailable: () => boolean;
      keys: ClusterKeys;
      workerId: string;
      capacity: number;
      heartbeatMs: number;
      leaseMs: number;
      log: Logger;
      handlers: MembershipHandlers;
      /** CLUSTER_SECRET first, then CLUSTER_SECRET_PREVIOUS during a rollover. */
      clusterSecrets: readonly string[];
      refusals: ControlRefusals;
    },
  ) {
    this.verifier = new ControlVerifier(o.clusterSecrets);
  }

  async start(): Promise<void> {
    const { nc, workerId, log, handlers } = this.o;
    this.subs.push(
      nc.subscribe(ClusterSubjects.worker(workerId), {
        callback: (err, msg) => {
          if (err !== null) return;
          if (!this.verified('worker-command', msg)) {
            // Answered, so that a leader with the wrong secret says why; the reply carries no state.
            msg.respond(encoder.encode(JSON.stringify({ ok: false, partitions: [], error: 'refused: the command carries no valid seal' } satisfies WorkerCommandReply)));
            return;
          }
          void this.onCommand(msg.data).then(
            (reply) => msg.respond(encoder.encode(JSON.stringify(reply))),
            (e: unknown) => {
              log.error({ err: e }, 'cluster command failed');
              msg.respond(encoder.encode(JSON.stringify({ ok: false, partitions: [], error: String((e as Error).message) } satisfies WorkerCommandReply)));
            },
          );
        },
      }),
      nc.subscribe(ClusterSubjects.assignment, {
        callback: (err, msg) => {
          if (err !== null) return;
          if (!this.verified('assignment', msg)) return;
          try {
            const table = AssignmentTable.parse(msg.json());
            this.checkProtocol(table.protocol, table.leader_epoch, table.leader);
            this.highestLeaderEpoch = Math.max(this.highestLeaderEpoch, table.leader_epoch);
            handlers.table(table);
          } catch (e) {
            log.warn({ err: e }, 'ignoring a malformed assignment table');
          }
        },
      }),
    );
    await nc.flush();
    this.lastTickAt = performance.now();
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.o.heartbeatMs);
  }

  /**
   * Whether our heartbeat key is certainly still in Redis, so that no leader can have given our
   * partitions to another worker: true until WORKER_LEASE_MS after the last heartbeat Redis
   * acknowledged was *sent* (Redis set its PX later, so it expires later), less a tenth of the lease
   * for the time between this check and a publish and for clocks that run at slightly different
   * rates. The monotonic clock keeps counting while the process is stopped (SIGSTOP) or stalled, so a
   * worker woken after its lease answers false at once, until its next heartbeat is written. What it
   * guards: a decision published without a claim (Redis unreachable, or the claim failed) is fenced by
   * nothing else (DecisionQueue.gate).
   */
  holdsLease(now = performance.now()): boolean {
    return now < this.lastBeatSentAt + this.o.leaseMs - this.o.leaseMs / 10;
  }

  /**
   * Whether this worker may decide, and publish a decision no claim fenced, from what it holds in
   * memory (DecisionQueue.gate, the emit path's unclaimed publishes). Yes while it holds its lease.
   * Past it, yes only if the process ran all along — its heartbeat timer kept firing while Redis did not
   * answer: Redis is down (or unreachable from here), the assignment is frozen while the leader cannot
   * reach it either, and the Nats-Msg-Id window keeps decisions single (invariant 4: the cluster keeps
   * deciding through a Redis outage). No once the process was stopped or stalled past its lease
   * (SIGSTOP, a long pause): meanwhile a leader may have given its partitions to another worker, so it
   * decides nothing from memory until a heartbeat is acknowledged again and its claims carry the fence
   * (`test/redis-failover-fencing.int.test.ts`: woken during a Redis failover).
   */
  mayDecideFromMemory(now = performance.now()): boolean {
    if (this.holdsLease(now)) return true;
    return !this.stalled && now - this.lastTickAt < this.stallMs();
  }

  /** A gap between two heartbeat ticks this long means the process did not run: a tenth less than the lease. */
  private stallMs(): number {
    return this.o.leaseMs - this.o.leaseMs / 10;
  }

  /** The table as stored in Redis, for a worker (re)starting before the next broadcast. */
  async loadTable(): Promise<AssignmentTable | undefined> {
    if (!this.o.redisAvailable()) return undefined;
    const raw = await this.o.redis.hgetall(this.o.keys.assignment());
    const partitions: PartitionState[] = [];
    for (const value of Object.values(raw)) {
      const parsed = PartitionState.safeParse(JSON.parse(value));
      if (parsed.success) partitions.push(parsed.data);
    }
    if (partitions.length === 0) return undefined;
    return { version: 0, leader: null, leader_epoch: 0, partitions };
  }

  /** Stops heartbeating and removes the heartbeat, so the leader reassigns at once. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    for (const s of this.subs) s.unsubscribe();
    if (this.o.redisAvailable()) {
      try {
        await this.o.redis.multi().del(this.o.keys.worker(this.o.workerId)).srem(this.o.keys.workers(), this.o.workerId).exec();
      } catch {
        // it expires with its lease
      }
    }
  }

  private async beat(): Promise<void> {
    const tick = performance.now();
    if (tick - this.lastTickAt >= this.stallMs()) this.stalled = true;
    this.lastTickAt = tick;
    if (this.closed || !this.o.redisAvailable()) return;
    try {
      const hb: WorkerHeartbeat = {
        id: this.o.workerId,
        capacity: this.o.capacity,
        version: ORCHESTRATOR_VERSION,
        protocol: CLUSTER_PROTOCOL,
        started_at: this.startedAt,
        ...(await this.o.handlers.heartbeat()),
      };
      // The key with its lease, and the id in the index membership reads (docs/cluster.md).
      const sentAt = performance.now();
      const results = await this.o.redis
        .multi()
        .set(this.o.keys.worker(this.o.workerId), JSON.stringify(hb), 'PX', this.o.leaseMs)
        .sadd(this.o.keys.workers(), this.o.workerId)
        .exec();
      if (results?.some(([err]) => err !== null) !== false) throw new Error('heartbeat transaction aborted');
      this.lastBeatSentAt = Math.max(this.lastBeatSentAt, sentAt);
      this.stalled = false;
    } catch (err) {
      this.o.log.debug({ err }, 'heartbeat failed');
    }
  }

  /** Logs an error when a leader speaks another cluster protocol than this worker: once per leader term. */
  private checkProtocol(protocol: number | undefined, leaderEpoch: number, leader: string | null): void {
    if ((protocol ?? UNSTATED_CLUSTER_PROTOCOL) === CLUSTER_PROTOCOL || this.mismatchReported.has(leaderEpoch)) return;
    if (this.mismatchReported.size > 100) this.mismatchReported.clear();
    this.mismatchReported.add(leaderEpoch);
    const theirs = protocol === undefined ? `none (a build older than the protocol check: ${UNSTATED_CLUSTER_PROTOCOL})` : String(protocol);
    this.o.log.error(
      { leader, leader_epoch: leaderEpoch, leader_protocol: protocol ?? null, worker_protocol: CLUSTER_PROTOCOL },
      `the coordinator leader speaks cluster protocol ${theirs}, this worker ${CLUSTER_PROTOCOL}: mixed protocols; a leader that checks them assigns ` +
        'this worker no partition: finish the upgrade so that coordinators and workers speak one protocol (docs/cluster.md, "Rolling upgrades")',
    );
  }

  /** Whether `msg` carries a valid seal for its subject; a refusal is counted and logged once per source. */
  private verified(kind: 'worker-command' | 'assignment', msg: Msg): boolean {
    const result = this.verifier.verify(kind, msg.subject, msg.headers, msg.data);
    if (result.ok) return true;
    this.o.refusals.refuse(kind, result.reason, result.sender ?? msg.subject);
    return false;
  }

  private async onCommand(data: Uint8Array): Promise<WorkerCommandReply> {
    const parsed = WorkerCommand.safeParse(JSON.parse(decoder.decode(data)));
    if (!parsed.success) return { ok: false, partitions: [], error: 'malformed command' };
    const cmd = parsed.data;
    if (cmd.leader_epoch < this.highestLeaderEpoch) {
      return { ok: false, partitions: [], error: `stale leader epoch ${cmd.leader_epoch} < ${this.highestLeaderEpoch}` };
    }
    this.highestLeaderEpoch = cmd.leader_epoch;
    this.checkProtocol(cmd.protocol, cmd.leader_epoch, null);
    switch (cmd.type) {
      case 'assign':
        return { ok: true, partitions: await this.o.handlers.assign(cmd.partitions) };
      case 'revoke':
        return { ok: true, partitions: await this.o.handlers.revoke(cmd.partitions) };
      case 'shutdown':
        this.o.handlers.shutdown();
        return { ok: true, partitions: [] };
    }
  }
}
