import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import type { Redis } from 'ioredis';
import {
  AssignmentTable,
  CLUSTER_PROTOCOL,
  ClusterKeys,
  ClusterSubjects,
  WorkerCommand,
  type WorkerCommandReply,
  type WorkerHeartbeat,
} from '@at-orchestrator/contracts';

export interface FakeWorkerOptions {
  readonly id: string;
  readonly nc: NatsConnection;
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly heartbeatIntervalMs: number;
  readonly leaseMs: number;
  readonly capacity?: number;
  /** Answer revoke requests (default true); false = never answer, as a stuck worker. */
  readonly answerRevoke?: boolean;
  /** The cluster protocol its heartbeat reports: CLUSTER_PROTOCOL by default; null = none, as a worker older than the check. */
  readonly protocol?: number | null;
}

export interface ReceivedCommand {
  readonly at: number;
  readonly command: WorkerCommand;
}

/**
 * A stand-in for a worker, for the coordinator's tests: heartbeats like a worker, answers commands on
 * its subject and records them, and keeps the partitions it was assigned (with their epochs).
 */
export class FakeWorker {
  readonly id: string;
  readonly commands: ReceivedCommand[] = [];
  /** partition → epoch it was assigned at. */
  readonly owned = new Map<number, number>();
  shutdownReceived = false;
  answerRevoke: boolean;
  /** What its heartbeats report as its cluster protocol (null: none); a test may change it, as a restart with another build would. */
  protocol: number | null;
  private timer: NodeJS.Timeout | undefined;
  private subscription: Subscription | undefined;
  private tables: Subscription | undefined;
  lastTable: AssignmentTable | undefined;
  /** What the next heartbeats report as the worker's figures (the console's source); none by default. */
  stats: WorkerHeartbeat['stats'];
  private readonly keys: ClusterKeys;
  private draining = false;
  private readonly startedAt = new Date().toISOString();

  constructor(private readonly options: FakeWorkerOptions) {
    this.id = options.id;
    this.answerRevoke = options.answerRevoke ?? true;
    this.protocol = options.protocol === undefined ? CLUSTER_PROTOCOL : options.protocol;
    this.keys = new ClusterKeys(options.keyPrefix);
  }

  async start(): Promise<this> {
    const subscription = this.options.nc.subscribe(ClusterSubjects.worker(this.id), {
      callback: (err, msg) => {
        if (err !== null) return;
        const parsed = WorkerCommand.safeParse(msg.json());
        if (!parsed.success) {
          msg.respond(JSON.stringify({ ok: false, partitions: [], error: 'bad command' } satisfies WorkerCommandReply));
          return;
        }
        const command = parsed.data;
        this.commands.push({ at: Date.now(), command });
        const reply = this.handle(command);
        if (reply !== undefined) msg.respond(JSON.stringify(reply));
      },
    });
    this.subscription = subscription;
    this.tables = this.options.nc.subscribe(ClusterSubjects.assignment, {
      callback: (err, msg) => {
        if (err !== null) return;
        const table = AssignmentTable.safeParse(msg.json());
        if (table.success) this.lastTable = table.data;
      },
    });
    await this.options.nc.flush();
    await this.beat();
    this.timer = setInterval(() => void this.beat().catch(() => undefined), this.options.heartbeatIntervalMs);
    return this;
  }

  /** The commands of one type received so far. */
  received<T extends WorkerCommand['type']>(type: T): Extract<WorkerCommand, { type: T }>[] {
    return this.commands.map((c) => c.command).filter((c): c is Extract<WorkerCommand, { type: T }> => c.type === type);
  }

  /** Marks itself draining in its heartbeat (as a worker told SIGTERM does). */
  setDraining(draining: boolean): void {
    this.draining = draining;
  }

  /** Stops heartbeating and answering, as a process that died: its key expires after the lease. */
  async die(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.subscription?.unsubscribe();
    this.tables?.unsubscribe();
    await this.options.nc.flush();
  }

  /** Leaves cleanly: deletes its heartbeat. */
  async close(): Promise<void> {
    await this.die();
    await this.options.redis.multi().del(this.keys.worker(this.id)).srem(this.keys.workers(), this.id).exec().catch(() => null);
  }

  private handle(command: WorkerCommand): WorkerCommandReply | undefined {
    switch (command.type) {
      case 'assign':
        for (const { partition, epoch } of command.partitions) this.owned.set(partition, epoch);
        return { ok: true, partitions: command.partitions.map((p) => p.partition) };
      case 'revoke': {
        if (!this.answerRevoke) return undefined;
        const released = command.partitions.filter((p) => this.owned.delete(p) || true);
        return { ok: true, partitions: released };
      }
      case 'shutdown':
        this.shutdownReceived = true;
        // A worker exits once it owns nothing: here, stop heartbeating and delete the key.
        setImmediate(() => void this.close());
        return { ok: true, partitions: [] };
    }
  }

  /** Heartbeats now (a test that changed `stats` need not wait for the interval). */
  async beat(): Promise<void> {
    const protocol = this.protocol;
    const heartbeat: WorkerHeartbeat = {
      id: this.id,
      capacity: this.options.capacity ?? 1,
      load: 0,
      version: 'fake',
      ...(protocol === null ? {} : { protocol }),
      draining: this.draining,
      started_at: this.startedAt,
      owned: [...this.owned.keys()].sort((a, b) => a - b),
      ...(this.stats === undefined ? {} : { stats: this.stats }),
    };
    await this.options.redis.multi().set(this.keys.worker(this.id), JSON.stringify(heartbeat), 'PX', this.options.leaseMs).sadd(this.keys.workers(), this.id).exec();
  }
}
