import { randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { PartitionState, loadConfig, type Env, type LeaderReply, type LeaderRequest, type OrchestratorConfig } from '@at-orchestrator/contracts';
import { NatsServer, RedisServer } from '@at-orchestrator/local-servers';
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
 * Registers a test file's hooks around a harness: its private nats-server and redis-server started
 * and connected to (beforeAll), a fresh key prefix per test (beforeEach), the test's coordinators and
 * workers closed after it, with their last log lines printed when it failed (afterEach), and the
 * servers disposed at the end (afterAll). The harness is returned at once, usable from beforeAll on.
 */
export function useClusterHarness(): ClusterHarness {
  const h = new ClusterHarness();
  beforeAll(() => h.start());
  afterAll(() => h.close());
  beforeEach(() => h.begin());
  afterEach(async (context) => {
    await h.cleanup();
    if (context.task.result?.state === 'fail') console.log(h.logs.slice(-40).join('\n'));
  });
  return h;
}

/**
 * The coordinator's integration tests' fixture (see `useClusterHarness`): a test file's private
 * servers and connections to them, and per test a fresh key prefix with its coordinators and fake
 * workers, all closed by `cleanup()`.
 */
export class ClusterHarness {
  private closers: Array<() => Promise<void>> = [];
  prefix = 'unset';
  keys = new CoordinatorKeys('unset');
  readonly logs: string[] = [];
  /** Each coordinator's log lines so far (they join `logs` when it closes). */
  readonly linesOf = new Map<Coordinator, readonly string[]>();
  private natsServer: NatsServer | undefined;
  private redisServer: RedisServer | undefined;
  private connection: { nc: NatsConnection; redis: Redis } | undefined;

  /** Starts the test file's private servers (never the shared ones) and connects to them. */
  async start(): Promise<void> {
    this.natsServer = await NatsServer.start();
    this.redisServer = await RedisServer.start();
    const nc = await connect({ servers: this.natsServer.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    this.connection = { nc, redis: new Redis(this.redisServer.url) };
  }

  /** The private servers, e.g. to pause one. */
  get servers(): { nats: NatsServer; redis: RedisServer } {
    if (this.natsServer === undefined || this.redisServer === undefined) throw new Error('ClusterHarness: servers not started');
    return { nats: this.natsServer, redis: this.redisServer };
  }

  get natsUrl(): string {
    return this.servers.nats.url;
  }

  get redisUrl(): string {
    return this.servers.redis.url;
  }

  get nc(): NatsConnection {
    return this.connected().nc;
  }

  get redis(): Redis {
    return this.connected().redis;
  }

  private connected(): { nc: NatsConnection; redis: Redis } {
    if (this.connection === undefined) throw new Error('ClusterHarness: not connected');
    return this.connection;
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

  /** Closes what the test left, the connections and the servers (also after a failed start). */
  async close(): Promise<void> {
    await this.cleanup();
    this.connection?.redis.disconnect();
    await this.connection?.nc.close().catch(() => undefined);
    this.connection = undefined;
    await this.natsServer?.dispose();
    await this.redisServer?.dispose();
  }
}

/** Partitions per owner in a table. */
export function ownerCounts(table: readonly PartitionState[]): Map<string | null, number> {
  const counts = new Map<string | null, number>();
  for (const state of table) counts.set(state.owner, (counts.get(state.owner) ?? 0) + 1);
  return counts;
}
