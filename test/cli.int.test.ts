import { hostname } from 'node:os';
import { execFile } from 'node:child_process';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLUSTER_PROTOCOL, ClusterKeys, ClusterSubjects, WorkerCommand, type WorkerHeartbeat } from '@at-orchestrator/contracts';
import { NatsServer, RedisServer, freePort } from '@at-orchestrator/local-servers';
import { CLI_MAIN, TEST_CLUSTER_SECRET, TEST_OPERATOR_TOKEN, WorkerProcess } from './helpers/stack.js';

/**
 * The operator CLI against a running coordinator (the built bin, as a process) and small fake
 * workers that heartbeat and answer commands.
 */

const P = 8;
const TIMING = { HEARTBEAT_INTERVAL_MS: '100', WORKER_LEASE_MS: '600', LEADER_LEASE_MS: '600', REVOKE_TIMEOUT_MS: '1000' };
const PREFIX = 'clitest';
const keys = new ClusterKeys(PREFIX);

let nats: NatsServer;
let redisServer: RedisServer;
let nc: NatsConnection;
let redis: Redis;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  nats = await NatsServer.start();
  redisServer = await RedisServer.start();
  nc = await connect({ servers: nats.url });
  redis = new Redis(redisServer.url);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  redis?.disconnect();
  await nc?.close();
  await nats?.dispose();
  await redisServer?.dispose();
});

const env = (): Record<string, string> => ({
  NATS_URL: nats.url,
  REDIS_URL: redisServer.url,
  REDIS_KEY_PREFIX: PREFIX,
  PARTITIONS: String(P),
  CLUSTER_SECRET: TEST_CLUSTER_SECRET,
  OPERATOR_TOKEN: TEST_OPERATOR_TOKEN,
  ...TIMING,
});

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI_MAIN, ...args], { env: { PATH: process.env.PATH, ...env() }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

async function json<T>(args: string[]): Promise<T> {
  const result = await cli([...args, '--json']);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as T;
}

/** A stand-in worker: heartbeats into Redis and answers assign / revoke / shutdown. */
class FakeWorker {
  readonly owned = new Set<number>();
  shutdown = false;
  private timer: NodeJS.Timeout | undefined;
  private sub: Subscription | undefined;

  constructor(readonly id: string) {}

  async start(): Promise<this> {
    this.sub = nc.subscribe(ClusterSubjects.worker(this.id), {
      callback: (_err, msg) => {
        const command = WorkerCommand.parse(msg.json());
        if (command.type === 'assign') for (const p of command.partitions) this.owned.add(p.partition);
        if (command.type === 'revoke') for (const p of command.partitions) this.owned.delete(p);
        if (command.type === 'shutdown') {
          this.shutdown = true;
          void this.stop();
        }
        const partitions = command.type === 'assign' ? command.partitions.map((p) => p.partition) : command.type === 'revoke' ? command.partitions : [];
        msg.respond(JSON.stringify({ ok: true, partitions }));
      },
    });
    await nc.flush();
    const beat = (): Promise<unknown> => {
      const hb: WorkerHeartbeat = { id: this.id, capacity: 1, load: 7, version: 'fake', draining: false, started_at: new Date(0).toISOString(), owned: [...this.owned], protocol: CLUSTER_PROTOCOL };
      return redis.multi().set(keys.worker(this.id), JSON.stringify(hb), 'PX', Number(TIMING.WORKER_LEASE_MS)).sadd(keys.workers(), this.id).exec();
    };
    await beat();
    this.timer = setInterval(() => void beat(), Number(TIMING.HEARTBEAT_INTERVAL_MS));
    cleanups.push(() => this.stop());
    return this;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.sub?.unsubscribe();
    await redis.multi().del(keys.worker(this.id)).srem(keys.workers(), this.id).exec();
  }
}

async function startCoordinator(id: string): Promise<{ process: WorkerProcess; httpPort: number }> {
  const httpPort = await freePort();
  const process = WorkerProcess.spawn({ ...env(), COORDINATOR_ID: id, HTTP_PORT: String(httpPort), LOG_LEVEL: 'info' }, ['coordinator']);
  cleanups.push(async () => {
    if (process.exitCode === undefined) {
      process.kill('SIGKILL');
      await process.exited();
    }
  });
  await process.waitForLine(/"msg":"coordinator leading"/, 20_000);
  return { process, httpPort };
}

const NO_LEADER = (cmd: string, ms: number): string => `at-orchestrator ${cmd}: no coordinator leader answered on orchestrator.ctl.leader within ${ms} ms\n`;

describe('operator CLI', () => {
  it('with no coordinator running: exit 1 and one clear line', async () => {
    expect(await cli(['status'])).toEqual({ code: 1, stdout: '', stderr: NO_LEADER('status', 3000) });
    expect(await cli(['drain', 'w1', '--timeout', '500'])).toEqual({ code: 1, stdout: '', stderr: NO_LEADER('drain', 500) });
  });

  it('every command has --help; bad usage exits 2 with the synopsis', async () => {
    for (const cmd of ['coordinator', 'status', 'workers', 'partitions', 'plan', 'rebalance', 'drain', 'move', 'pause', 'resume', 'console']) {
      const result = await cli([cmd, '--help']);
      expect(result.code, cmd).toBe(0);
      expect(result.stdout, cmd).toMatch(new RegExp(`^Usage: at-orchestrator ${cmd}`));
    }
    const help = await cli(['--help']);
    for (const cmd of ['coordinator', 'status', 'drain', 'move', 'pause', 'resume', 'console']) expect(help.stdout).toMatch(new RegExp(`\\n  ${cmd} +\\S`));

    const missing = await cli(['drain']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('at-orchestrator drain: expected <worker>, got none\nUsage: at-orchestrator drain <worker> [--json] [--timeout MS]\n');
    expect(await cli(['move', 'x', 'w1'])).toMatchObject({ code: 2, stderr: expect.stringContaining('partition "x" is not valid') });
    expect(await cli(['status', '--bogus'])).toMatchObject({ code: 2, stderr: expect.stringContaining("Unknown option '--bogus'") });
    expect(await cli(['status', '--timeout', 'soon'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--timeout="soon" is not valid') });
  });

  it('against a running coordinator: tables, --json, pause/plan/rebalance/resume, move, drain, refusals', async () => {
    const w1 = await new FakeWorker('w1').start();
    const w2 = await new FakeWorker('w2').start();
    const { process: coordinator, httpPort } = await startCoordinator('cli-c1');
    const waitFor = <T>(fn: () => Promise<T> | T): Promise<T> => vi.waitFor(fn, { timeout: 10_000, interval: 50 });
    await waitFor(() => expect([w1.owned.size, w2.owned.size]).toEqual([P / 2, P / 2]));

    const status = await json<{ coordinator: string; leader_epoch: number; paused: boolean; counts: { owned: number }; workers: { id: string; partitions: number; load: number }[] }>(['status']);
    expect(status).toMatchObject({ coordinator: 'cli-c1', paused: false, counts: { owned: P } });
    expect(status.workers.map((w) => [w.id, w.partitions, w.load])).toEqual([
      ['w1', P / 2, 7],
      ['w2', P / 2, 7],
    ]);
    const text = await cli(['status']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^leader +cli-c1 \(leader epoch \d+\)$/m);
    expect(text.stdout).toMatch(/^WORKER +STATE +PARTITIONS +LOAD +CAPACITY +VERSION$/m);
    expect(text.stdout).toMatch(/^w1 +live +4 +7 +1 +fake$/m);

    const workers = await json<{ workers: { id: string; partitions: number[] }[] }>(['workers']);
    expect(workers.workers.map((w) => w.partitions.length)).toEqual([P / 2, P / 2]);
    const partitions = await json<{ partitions: { partition: number; owner: string; epoch: number; phase: string }[] }>(['partitions']);
    expect(partitions.partitions).toHaveLength(P);
    expect(partitions.partitions.every((p) => p.phase === 'owned' && p.epoch >= 1)).toBe(true);
    expect((await cli(['partitions'])).stdout).toMatch(/^PARTITION +OWNER +EPOCH +PHASE +NEXT +PINNED +OPEN +OLDEST OPEN$/m);
    // The fake workers report no per-partition figures (as a worker older than the console): none shown.
    expect(partitions.partitions.every((p) => (p as { open?: unknown }).open === null)).toBe(true);

    // The leader's console: CONSOLE_URL unset, so its host name and HTTP port.
    expect(await cli(['console'])).toEqual({ code: 0, stdout: `http://${hostname()}:${httpPort}/console\n`, stderr: '' });
    expect(await json(['console'])).toEqual({ leader: 'cli-c1', leader_epoch: status.leader_epoch, console_url: `http://${hostname()}:${httpPort}/console` });

    // Paused: a join waits; plan shows it; rebalance applies it anyway.
    expect(await cli(['pause'])).toMatchObject({ code: 0, stdout: expect.stringContaining('rebalancing paused') });
    const w3 = await new FakeWorker('w3').start();
    const plan = await waitFor(async () => {
      const p = await json<{ paused: boolean; moves: { partition: number; from: string; to: string }[]; text: string }>(['plan']);
      expect(p.moves.length).toBeGreaterThan(0);
      return p;
    });
    expect(plan.paused).toBe(true);
    expect(plan.moves.every((m) => m.to === 'w3')).toBe(true);
    expect(w3.owned.size).toBe(0);
    const planText = await cli(['plan']);
    expect(planText.stdout).toContain(`${plan.moves.length} partitions move (P=${P}, 3 live workers)`);
    const rebalance = await json<{ moves: unknown[] }>(['rebalance']);
    expect(rebalance.moves).toEqual(plan.moves);
    await waitFor(() => expect(w3.owned.size).toBe(plan.moves.length));
    expect(await cli(['rebalance'])).toMatchObject({ code: 0, stdout: 'nothing to move: the assignment is balanced\n' });
    expect(await cli(['resume'])).toEqual({ code: 0, stdout: 'rebalancing resumed\n', stderr: '' });

    // move: pins a partition; unknown partition or worker is refused with exit 3.
    const onW1 = [...w1.owned][0]!;
    const moved = await json<{ partition: number; worker: string; from: string }>(['move', String(onW1), 'w2']);
    expect(moved).toMatchObject({ partition: onW1, worker: 'w2', from: 'w1' });
    await waitFor(() => expect(w2.owned.has(onW1)).toBe(true));
    const badPartition = await cli(['move', '999', 'w2']);
    expect(badPartition).toEqual({ code: 3, stdout: '', stderr: `at-orchestrator move: no such partition 999: partitions are 0 to ${P - 1} (NO_SUCH_PARTITION)\n` });
    const badWorker = await cli(['drain', 'ghost']);
    expect(badWorker).toEqual({ code: 3, stdout: '', stderr: `at-orchestrator drain: no such worker "ghost": no live heartbeat at ${keys.worker('ghost')} (NO_SUCH_WORKER)\n` });
    const badWorkerJson = await cli(['move', '1', 'ghost', '--json']);
    expect(badWorkerJson.code).toBe(3);
    expect(JSON.parse(badWorkerJson.stdout)).toMatchObject({ error: { code: 'NO_SUCH_WORKER' } });

    // drain: the worker ends with nothing and is told to shut down.
    const drain = await cli(['drain', 'w3']);
    expect(drain.code).toBe(0);
    expect(drain.stdout).toMatch(/^draining w3: \d+ partitions? move to other workers; it is told to shut down once it owns none$/m);
    await waitFor(() => expect(w3.shutdown).toBe(true));
    expect(w3.owned.size).toBe(0);
    expect(w1.owned.size + w2.owned.size).toBe(P);

    // /health of the coordinator process.
    const health = (await (await fetch(`http://127.0.0.1:${httpPort}/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'healthy', role: 'leader', leader: 'cli-c1', nats_connected: true, redis_connected: true });
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^orchestrator_coordinator_is_leader\{[^}]*\} 1$/m);

    // SIGTERM: steps down (the lease is released at once) and exits 0.
    coordinator.kill('SIGTERM');
    expect(await coordinator.exited()).toBe(0);
    expect(await redis.get(keys.leader())).toBeNull();
    expect(await cli(['status', '--timeout', '300'])).toMatchObject({ code: 1, stderr: NO_LEADER('status', 300) });
  });
});
