import { randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { PartitionState, loadConfig, type Env, type LeaderReply, type LeaderRequest, type OrchestratorConfig } from '@at-orchestrator/contracts';
import { memoryLogger } from '@at-orchestrator/runtime';
import { Coordinator } from '../src/coordinator.js';
import { CoordinatorKeys } from '../src/coordinator-keys.js';
import { requestLeader } from '../src/control/leader-client.js';
import { FakeWorker } from './fake-worker.js';

/** The control plane's secrets in these tests: coordinators seal with them, `ask` signs as the operator. */
export const CLUSTER_SECRET = 'coordinator-test-cluster-secret';
export const OPERATOR_TOKEN = 'coordinator-test-operator-token';

/** Short timings, as the integration tests use them. */
export const TIMING = { HEARTBEAT_INTERVAL_MS: 100, WORKER_LEASE_MS: 600, LEADER_LEASE_MS: 600, REVOKE_TIMEOUT_MS: 1000 } as const;


/**
 * The coordinator's integration tests' fixture: connections to a test file's private servers, and
 * per test a fresh key prefix with its coordinators and fake workers, all closed by `cleanup()`.
 */
export class ClusterHarness {
  private closers: Array<() => Promise<void>> = [];
  prefix = 'unset';
  keys = new CoordinatorKeys('unset');
  readonly logs: string[] = [];
  /** Each coordinator's log lines so far (they join `logs` when it closes). */
  readonly linesOf = new Map<Coordinator, readonly string[]>();

  private constructor(
    readonly natsUrl: string,
    readonly redisUrl: string,
    readonly nc: NatsConnection,
    readonly redis: Redis,
  ) {}

  /** Connects to the test file's private servers (never the shared ones). */
  static async connect(natsUrl: string, redisUrl: string): Promise<ClusterHarness> {
    const nc = await connect({ servers: natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const redis = new Redis(redisUrl);
    return new ClusterHarness(natsUrl, redisUrl, nc, redis);
  }

  /** Starts a test: a new key prefix. */
  begin(): void {
    this.prefix = `t${randomUUID().slice(0, 8)}`;
    this.keys = new CoordinatorKeys(this.prefix);
    this.logs.length = 0;
  }

  config(overrides: Env = {}): OrchestratorConfig {
    return loadConfig({
      NATS_URL: this.natsUrl,
      REDIS_URL: this.redisUrl,
      REDIS_KEY_PREFIX: this.prefix,
      HTTP_PORT: '0',
      LOG_LEVEL: 'warn',
      PARTITIONS: '12',
      CLUSTER_SECRET: CLUSTER_SECRET,
      OPERATOR_TOKEN: OPERATOR_TOKEN,
      ...Object.fromEntries(Object.entries(TIMING).map(([k, v]) => [k, String(v)])),
      ...overrides,
    });
  }

  /** A coordinator; with `http` it serves /health, /metrics and /console on a free port (coordinator.httpPort). */
  async coordinator(id: string, overrides: Env = {}, http = false): Promise<Coordinator> {
    const { log, lines } = memoryLogger('info');
    const coordinator = new Coordinator({ config: this.config({ COORDINATOR_ID: id, HTTP_PORT: '0', ...overrides }), log, http });
    this.linesOf.set(coordinator, lines);
    this.closers.push(async () => {
      await coordinator.close();
      this.logs.push(...lines);
    });
    await coordinator.start();
    return coordinator;
  }

  async worker(id: string, options: { capacity?: number; answerRevoke?: boolean; protocol?: number | null } = {}): Promise<FakeWorker> {
    const worker = new FakeWorker({
      id,
      nc: this.nc,
      redis: this.redis,
      keyPrefix: this.prefix,
      heartbeatIntervalMs: TIMING.HEARTBEAT_INTERVAL_MS,
      leaseMs: TIMING.WORKER_LEASE_MS,
      ...options,
    });
    this.closers.push(() => worker.close());
    return worker.start();
  }

  /** The assignment table as stored in Redis, index = partition. */
  async table(): Promise<PartitionState[]> {
    const hash = await this.redis.hgetall(this.keys.assignment());
    return Object.values(hash)
      .map((v) => PartitionState.parse(JSON.parse(v)))
      .sort((a, b) => a.partition - b.partition);
  }

  async partitionEpoch(partition: number): Promise<number> {
    return Number((await this.redis.get(this.keys.partitionEpoch(partition))) ?? 0);
  }

  async ask(request: LeaderRequest, timeoutMs = 3_000): Promise<LeaderReply> {
    const answer = await requestLeader(this.nc, request, timeoutMs, OPERATOR_TOKEN);
    if (answer.kind !== 'reply') throw new Error(answer.message);
    return answer.reply;
  }

  async cleanup(): Promise<void> {
    const closers = this.closers.reverse();
    this.closers = [];
    for (const close of closers) await close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.cleanup();
    this.redis.disconnect();
    await this.nc.close().catch(() => undefined);
  }
}

/** Partitions per owner in a table. */
export function ownerCounts(table: readonly PartitionState[]): Map<string | null, number> {
  const counts = new Map<string | null, number>();
  for (const state of table) counts.set(state.owner, (counts.get(state.owner) ?? 0) + 1);
  return counts;
}
