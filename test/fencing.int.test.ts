import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { once } from 'node:events';
import { createServer, connect as connectTcp, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { ClusterSubjects, RedisKeys, WorkerCommandReply, partitionOf, signalSubject, type WorkerCommand } from '@at-orchestrator/contracts';
import { ControlSealer, memoryLogger } from '@at-orchestrator/runtime';
import { RedisServer } from '@at-orchestrator/local-servers';
import { CLEAN_MIX, SimulatedAgents, makeCorrelation, seededRandom } from '@at-orchestrator/sim';
import { OrchestratorWorker } from '@at-orchestrator/worker';
import { DecisionLog, Stack, TEST_CLUSTER_SECRET, workerMetric } from './helpers/stack.js';

// In-process workers in a cluster whose leader is this test: it sends the workers' commands and
// writes the partition epochs itself, so that each step of a race can be put in a fixed order.
// Redis's CLIENT PAUSE WRITE holds every script (the worker's stores and claims) until we unpause;
// a holding TCP proxy does the same for a lock on another Redis. Each test fails without the rule
// of docs/architecture.md ("Ownership follows commands and fences") that it is named after.

const PARTITIONS = 8;
const WORKER = 'fence-w1';
const OTHER = 'fence-w2';
const PREFIX = 'fence';

let stack: Stack;
let worker: OrchestratorWorker;
let other: OrchestratorWorker | undefined;
let redis: Redis;
const keys = new RedisKeys('orchestrator');
const encoder = new TextEncoder();

beforeAll(async () => {
  stack = await Stack.start();
  redis = new Redis(stack.redis.url);
  redis.on('error', () => undefined); // the second test stops Redis on purpose
  const config = stack.config({ WORKER_ID: WORKER, PARTITIONS: String(PARTITIONS), COORDINATOR: 'off', ACK_WAIT_SEC: '2', HEARTBEAT_INTERVAL_MS: '200' });
  worker = new OrchestratorWorker({ config, log: memoryLogger('warn').log, ownership: 'coordinated' });
  await worker.start();
});

afterAll(async () => {
  await redis?.call('CLIENT', 'UNPAUSE').catch(() => undefined);
  await worker?.close();
  await other?.close();
  redis?.disconnect();
  await stack?.stop();
});

const metric = (name: string, labels: Record<string, string> = {}, of: OrchestratorWorker = worker): Promise<number> => workerMetric(of, name, labels);

/** What the leader does: the epoch in Redis first, then the command. Resolves with the worker's reply. */
async function assign(partitions: Array<{ partition: number; epoch: number }>, to = WORKER): Promise<WorkerCommandReply> {
  for (const p of partitions) await redis.set(keys.epoch(p.partition), String(p.epoch));
  return command({ type: 'assign', leader_epoch: 1, partitions }, to);
}

async function command(cmd: WorkerCommand, to = WORKER): Promise<WorkerCommandReply> {
  const reply = await leaderRequest(to, JSON.stringify(cmd));
  return WorkerCommandReply.parse(reply.json());
}

/** The test plays the leader: its commands are sealed with the cluster secret, as the leader's are. */
const leader = new ControlSealer([TEST_CLUSTER_SECRET], 'test-leader');
function leaderRequest(to: string, text: string) {
  const subject = ClusterSubjects.worker(to);
  const body = encoder.encode(text);
  return stack.nc.request(subject, body, { timeout: 10_000, headers: leader.seal('worker-command', subject, body) });
}

/** `count` corr_ids of this prefix that hash into `partition`. */
function idsIn(partition: number, prefix: string, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) if (partitionOf(`${prefix}-${i}`, PARTITIONS) === partition) out.push(`${prefix}-${i}`);
  return out;
}

async function publish(ids: string[]): Promise<void> {
  const agents = new SimulatedAgents(stack.nc);
  const rnd = seededRandom(ids.length);
  await Promise.all(ids.map((id) => agents.publishCorrelation(makeCorrelation(id, rnd, CLEAN_MIX))));
}

/**
 * A TCP proxy in front of a server that can hold what clients send: `hold()` resolves once the next
 * bytes arrive (and keeps them), `release()` lets them and everything after through.
 */
class HoldingProxy {
  private holding: { seen: () => void; queued: Array<{ to: Socket; data: Buffer }> } | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: { host: string; port: number }): Promise<HoldingProxy> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const proxy = new HoldingProxy(server, `redis://127.0.0.1:${port}`);
    server.on('connection', (client) => {
      const upstream = connectTcp(target.port, target.host);
      proxy.sockets.add(client).add(upstream);
      client.on('data', (data: Buffer) => {
        if (proxy.holding === undefined) upstream.write(data);
        else {
          proxy.holding.queued.push({ to: upstream, data });
          proxy.holding.seen();
        }
      });
      upstream.on('data', (data: Buffer) => client.write(data));
      for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
    });
    return proxy;
  }

  hold(): Promise<void> {
    return new Promise((resolve) => (this.holding = { seen: resolve, queued: [] }));
  }

  release(): void {
    const queued = this.holding?.queued ?? [];
    this.holding = undefined;
    for (const { to, data } of queued) to.write(data);
  }

  async close(): Promise<void> {
    this.release();
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('epoch fencing against a leader that moves faster than Redis answers', () => {
  it('a fenced answer to a write under an old epoch does not take away the partition given back at a newer one', async () => {
    const p = 3;
    const q = 5;
    const decisions = new DecisionLog(stack.js, `${PREFIX}-`);
    await decisions.start();

    expect(await assign([{ partition: p, epoch: 1 }])).toMatchObject({ ok: true, partitions: [p] });
    const [warm, stale, after] = [idsIn(p, `${PREFIX}-a`, 5), idsIn(p, `${PREFIX}-b`, 5), idsIn(p, `${PREFIX}-c`, 5)];
    await publish(warm!);
    await decisions.waitFor(5);

    // While the worker looked away, two newer owners came and went: the epoch in Redis is 3.
    await redis.set(keys.epoch(p), '3');
    await redis.set(keys.epoch(q), '1');
    const owned = await metric('orchestrator_partitions_owned');
    await redis.call('CLIENT', 'PAUSE', '30000', 'WRITE');
    try {
      // The worker stores signals under epoch 1; Redis holds the write.
      const stores = await metric('orchestrator_state_operations_total', { operation: 'store' });
      await publish(stale!);
      await vi.waitFor(async () => expect(await metric('orchestrator_state_operations_total', { operation: 'store' })).toBeGreaterThan(stores), { timeout: 10_000 });
      // Now the leader gives p back at epoch 3 (q, new to it, shows when the command has been taken).
      const assigned = command({ type: 'assign', leader_epoch: 1, partitions: [{ partition: p, epoch: 3 }, { partition: q, epoch: 1 }] });
      await vi.waitFor(async () => expect(await metric('orchestrator_partitions_owned')).toBe(owned + 1), { timeout: 10_000 });
      // Only now does Redis answer the write under epoch 1: fenced.
      await redis.call('CLIENT', 'UNPAUSE');
      expect(await assigned).toMatchObject({ ok: true });
    } finally {
      await redis.call('CLIENT', 'UNPAUSE');
    }

    expect(await metric('orchestrator_fenced_writes_total')).toBeGreaterThan(0);
    // The fenced signals come back from JetStream and are stored under epoch 3; new ones are taken too.
    await publish(after!);
    await decisions.waitFor(15, 30_000);
    expect(await metric('orchestrator_partitions_owned')).toBe(owned + 1);
    expect(decisions.byCorr.size).toBe(15);
    expect(decisions.duplicates()).toEqual([]);
    for (const [, [d]] of decisions.byCorr) expect(d!.status).toBe('complete');
    decisions.stop();
  });

  it('a signal held in memory through a Redis outage is given back, not acked, when writing it is fenced', async () => {
    // Redis restarts empty (no persistence) while the worker holds a signal only in memory, and the
    // leader hands the partition to another worker. Writing the held signal is fenced: it must go
    // back to JetStream for the new owner, or the correlation is decided without it.
    const r = 6;
    other = new OrchestratorWorker({
      config: stack.config({ WORKER_ID: OTHER, PARTITIONS: String(PARTITIONS), COORDINATOR: 'off', ACK_WAIT_SEC: '2', HEARTBEAT_INTERVAL_MS: '200' }),
      log: memoryLogger('warn').log,
      ownership: 'coordinated',
    });
    await other.start();
    expect(await assign([{ partition: r, epoch: 1 }])).toMatchObject({ ok: true });
    const decisions = new DecisionLog(stack.js, `${PREFIX}-d`);
    await decisions.start();
    const [id] = idsIn(r, `${PREFIX}-d`, 1);
    const corr = makeCorrelation(id!, seededRandom(7), CLEAN_MIX);
    const signal = (agent: string) => corr.signals.find((x) => x.agent === agent)!;

    await stack.redis.stop();
    await vi.waitFor(() => expect(worker.health().status).toBe('degraded'), { timeout: 10_000 });
    await stack.js.publish(signalSubject('momentum'), encoder.encode(signal('momentum').body));
    await vi.waitFor(async () => expect(await metric('orchestrator_held_messages')).toBe(1), { timeout: 10_000 });
    await stack.redis.start();
    await vi.waitFor(() => expect([worker.health().status, other!.health().status]).toEqual(['healthy', 'healthy']), { timeout: 10_000 });
    // The leader (whose epochs went with Redis's memory) moves r to the other worker at a newer epoch.
    expect(await assign([{ partition: r, epoch: 2 }], OTHER)).toMatchObject({ ok: true });
    await vi.waitFor(async () => expect(await metric('orchestrator_held_messages')).toBe(0), { timeout: 10_000 });

    await stack.js.publish(signalSubject('risk'), encoder.encode(signal('risk').body));
    await decisions.waitFor(1, 30_000);
    const [d] = decisions.byCorr.get(id!)!;
    expect(d).toMatchObject({ status: 'complete', agents_missing: [] });
    expect([...d!.agents_present].sort()).toEqual(['momentum', 'risk']);
    decisions.stop();
  });

  it('a revoke (sent once or twice) waits for a signal being stored and decides what it completes under the epoch it still holds', async () => {
    // Only this worker pulls from now on, so that the one signal below reaches it in one batch.
    await other?.close();
    other = undefined;
    const s = 1;
    expect(await assign([{ partition: s, epoch: 1 }])).toMatchObject({ ok: true });
    const decisions = new DecisionLog(stack.js, `${PREFIX}-e`);
    await decisions.start();
    const [id] = idsIn(s, `${PREFIX}-e`, 1);
    const corr = makeCorrelation(id!, seededRandom(11), CLEAN_MIX);
    const signal = (agent: string) => encoder.encode(corr.signals.find((x) => x.agent === agent)!.body);
    const stored = async (): Promise<number> => metric('orchestrator_state_operations_total', { operation: 'store' });
    const before = await stored();
    await stack.js.publish(signalSubject('momentum'), signal('momentum'));
    await vi.waitFor(async () => expect(await stored()).toBeGreaterThanOrEqual(before + 1), { timeout: 10_000 });
    const fenced = await metric('orchestrator_fenced_writes_total');
    const owned = await metric('orchestrator_partitions_owned');

    await redis.call('CLIENT', 'PAUSE', '30000', 'WRITE');
    let revoked: Promise<WorkerCommandReply>;
    let revokedAgain: Promise<WorkerCommandReply>;
    try {
      // The signal that completes the correlation is being stored (Redis holds the write) ...
      const storedBefore = await stored();
      await stack.js.publish(signalSubject('risk'), signal('risk'));
      await vi.waitFor(async () => expect(await stored()).toBeGreaterThan(storedBefore), { timeout: 10_000 });
      // ... when the leader revokes the partition: the worker stops owning it at once, but answers
      // only after the work it had accepted is done.
      revoked = command({ type: 'revoke', leader_epoch: 1, partitions: [s] });
      await vi.waitFor(async () => expect(await metric('orchestrator_partitions_owned')).toBe(owned - 1), { timeout: 10_000 });
      // A new leader would send the revoke again: that answer too waits for the work to be done.
      // (Commands are taken in order: by the time a bogus command sent after the answer to another
      // bogus one is answered, an answer the second revoke gave at once would have arrived.)
      let answeredAgain = false;
      const again = leaderRequest(WORKER, JSON.stringify({ type: 'revoke', leader_epoch: 1, partitions: [s] }));
      void again.then(() => (answeredAgain = true));
      revokedAgain = again.then((m) => WorkerCommandReply.parse(m.json()));
      for (let i = 0; i < 2; i++) {
        const bogus = await leaderRequest(WORKER, '{"type":"bogus"}');
        expect(bogus.json()).toMatchObject({ ok: false });
      }
      expect(answeredAgain).toBe(false);
    } finally {
      await redis.call('CLIENT', 'UNPAUSE');
    }
    expect(await revoked).toMatchObject({ ok: true, partitions: [s] });
    expect(await revokedAgain).toMatchObject({ ok: true, partitions: [s] });
    // Decided by this worker before it answered, under epoch 1: nothing fenced, nothing left for the next owner.
    await decisions.waitFor(1, 10_000);
    expect(decisions.byCorr.get(id!)![0]).toMatchObject({ status: 'complete' });
    expect(await metric('orchestrator_fenced_writes_total')).toBe(fenced);
    decisions.stop();
  });

  it('a claim refused after the partition came back to this worker, which resumed it meanwhile, is decided again from Redis', async () => {
    // The lock lives on another Redis (REDLOCK_URLS), so the worker waits for it before it claims.
    // This test holds the lock request in a proxy while the leader gives the partition back at a newer
    // epoch and the worker resumes it: the correlation in flight is not in memory then, so only a
    // second look at Redis after the refused claim finds it.
    const lockServer = await RedisServer.start();
    const proxy = await HoldingProxy.start({ host: '127.0.0.1', port: Number(new URL(lockServer.url).port) });
    const id3 = 'fence-w3';
    const w3 = new OrchestratorWorker({
      config: stack.config({
        WORKER_ID: id3,
        PARTITIONS: String(PARTITIONS),
        COORDINATOR: 'off',
        ACK_WAIT_SEC: '2',
        HEARTBEAT_INTERVAL_MS: '200',
        DECISION_TIMEOUT_SEC: '1',
        REDLOCK_URLS: proxy.url,
      }),
      log: memoryLogger('warn').log,
      ownership: 'coordinated',
    });
    try {
      await w3.start();
      const t = 7;
      expect(await assign([{ partition: t, epoch: 1 }], id3)).toMatchObject({ ok: true });
      const decisions = new DecisionLog(stack.js, `${PREFIX}-f`);
      await decisions.start();
      const [id] = idsIn(t, `${PREFIX}-f`, 1);
      const corr = makeCorrelation(id!, seededRandom(13), CLEAN_MIX);
      // Its momentum only: stored under epoch 1, decided at its deadline (1 s) without risk.
      const stores = await metric('orchestrator_state_operations_total', { operation: 'store' }, w3);
      const held = proxy.hold();
      await stack.js.publish(signalSubject('momentum'), encoder.encode(corr.signals.find((x) => x.agent === 'momentum')!.body));
      await vi.waitFor(async () => expect(await metric('orchestrator_state_operations_total', { operation: 'store' }, w3)).toBe(stores + 1), { timeout: 10_000 });
      // Two owners came and went while it waited: the epoch is 3 when its lock request goes out.
      await redis.set(keys.epoch(t), '3');
      await held;
      // The leader gives t back at epoch 3: the worker resumes it while the correlation is in flight.
      expect(await command({ type: 'assign', leader_epoch: 1, partitions: [{ partition: t, epoch: 3 }] }, id3)).toMatchObject({ ok: true });
      const fenced = await metric('orchestrator_fenced_writes_total', {}, w3);
      proxy.release();
      await vi.waitFor(async () => expect(await metric('orchestrator_fenced_writes_total', {}, w3)).toBe(fenced + 1), { timeout: 10_000 });
      await decisions.waitFor(1, 10_000);
      expect(decisions.byCorr.get(id!)).toHaveLength(1);
      expect(decisions.byCorr.get(id!)![0]).toMatchObject({ status: 'timeout', agents_present: ['momentum'] });
      decisions.stop();
    } finally {
      await w3.close();
      await proxy.close();
      await lockServer.dispose();
    }
  });
});
