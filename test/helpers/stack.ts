import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { STORED_DECISION_SUBJECT, loadConfig, type Decision, type Env, type OrchestratorConfig } from '@at-orchestrator/contracts';
import { ensureJetStreamTopology, memoryLogger } from '@at-orchestrator/runtime';
import { NatsServer, RedisServer, freePort } from '@at-orchestrator/local-servers';
import { OrchestratorWorker } from '@at-orchestrator/worker';
import { isWarningLine, recordWarning } from './process-warnings.js';

export const CLI_MAIN = new URL('../../packages/cli/dist/main.js', import.meta.url).pathname;

/** The control plane's secrets of every test stack (test values, never used outside the tests). */
export const TEST_CLUSTER_SECRET = 'test-cluster-secret-0123456789';
export const TEST_OPERATOR_TOKEN = 'test-operator-token-0123456789';

/** What a Stack runs on when the test file runs the servers itself (a NATS cluster, Redis behind Sentinel). */
export interface ExternalServers {
  /** Client URLs of a NATS cluster; absent: the stack starts its own nats-server. */
  readonly natsUrls?: readonly string[];
  /** The Redis variables of every process (REDIS_URL, or REDIS_SENTINELS…); absent: its own redis-server. */
  readonly redisEnv?: Env;
  /** More variables of every process, the stream bootstrap's included (e.g. STREAM_REPLICAS). */
  readonly env?: Env;
}

/** Private nats-server and redis-server for one test file. */
export class Stack {
  private constructor(
    private readonly ownNats: NatsServer | undefined,
    private readonly ownRedis: RedisServer | undefined,
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    private readonly natsUrl: string,
    private readonly baseEnv: Env,
  ) {}

  static async start(): Promise<Stack> {
    const nats = await NatsServer.start({ websocket: true });
    const redis = await RedisServer.start();
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    // The streams exist before any worker starts, as in a deployment where agents publish first.
    await ensureJetStreamTopology(nc, loadConfig({ NATS_URL: nats.url, REDIS_URL: redis.url }), memoryLogger().log);
    return new Stack(nats, redis, nc, jetstream(nc), nats.url, { REDIS_URL: redis.url });
  }

  /**
   * A stack on servers the test file runs itself: the test's own connection lists every server of
   * the NATS cluster (it survives the loss of any one), and every process gets `redisEnv` and `env`.
   */
  static async on(servers: ExternalServers): Promise<Stack> {
    const nats = servers.natsUrls === undefined ? await NatsServer.start({ websocket: true }) : undefined;
    const redis = servers.redisEnv === undefined ? await RedisServer.start() : undefined;
    const urls = servers.natsUrls ?? [nats!.url];
    const nc = await connect({ servers: [...urls], maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const baseEnv = { ...(servers.redisEnv ?? { REDIS_URL: redis!.url }), ...servers.env };
    const stack = new Stack(nats, redis, nc, jetstream(nc), urls.join(','), baseEnv);
    await ensureJetStreamTopology(nc, loadConfig({ NATS_URL: stack.natsUrl, ...baseEnv }), memoryLogger().log);
    return stack;
  }

  /** The stack's own nats-server (Stack.on with natsUrls has none). */
  get nats(): NatsServer {
    if (this.ownNats === undefined) throw new Error('this stack runs on a NATS cluster of the test file, not a nats-server of its own');
    return this.ownNats;
  }

  /** The stack's own redis-server (Stack.on with redisEnv has none). */
  get redis(): RedisServer {
    if (this.ownRedis === undefined) throw new Error('this stack runs on Redis servers of the test file, not a redis-server of its own');
    return this.ownRedis;
  }

  /** The environment a worker of this stack runs with (overrides win). */
  env(overrides: Env = {}): Env {
    return {
      NATS_URL: this.natsUrl,
      ...this.baseEnv,
      HTTP_PORT: '0',
      LOG_LEVEL: 'warn',
      WORKER_ID: `w-${randomUUID().slice(0, 8)}`,
      SHUTDOWN_GRACE_SEC: '10',
      // Coordinated workers and coordinators refuse to start without it (docs/security.md).
      CLUSTER_SECRET: TEST_CLUSTER_SECRET,
      OPERATOR_TOKEN: TEST_OPERATOR_TOKEN,
      ...overrides,
    };
  }

  config(overrides: Env = {}): OrchestratorConfig {
    return loadConfig(this.env(overrides));
  }

  async stop(): Promise<void> {
    killStrayChildren();
    await this.nc.close().catch(() => undefined);
    await this.ownNats?.dispose();
    await this.ownRedis?.dispose();
  }
}


/** A metric of an in-process worker, summed over the series whose labels match `labels`. */
export async function workerMetric(worker: OrchestratorWorker, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await worker.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return ((m?.values ?? []) as Array<{ value: number; labels: Record<string, string | number> }>)
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((a, v) => a + v.value, 0);
}

export async function startWorker(config: OrchestratorConfig, level = 'warn'): Promise<OrchestratorWorker> {
  const worker = new OrchestratorWorker({ config, log: memoryLogger(level).log, ownership: 'self' });
  await worker.start();
  return worker;
}

/**
 * Every decision JetStream stored (on orchestrator.decided.decision) for corr_ids with a prefix, read with an
 * ordered consumer: what a downstream consumer of the stream sees.
 */
export class DecisionLog {
  readonly byCorr = new Map<string, Decision[]>();
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  private stopFn: (() => void) | undefined;
  count = 0;

  constructor(
    private readonly js: JetStreamClient,
    private readonly prefix: string,
    private readonly stream = 'orchestrated',
  ) {}

  async start(): Promise<void> {
    // nats-server 2.9 (Debian) has no multi-filter consumers: read the stream and pick the subject.
    const consumer = await this.js.consumers.get(this.stream);
    const messages = await consumer.consume();
    this.stopFn = () => void messages.close();
    void (async () => {
      for await (const m of messages) {
        if (m.subject !== STORED_DECISION_SUBJECT) continue;
        const d = m.json<Decision>();
        if (!d.corr_id.startsWith(this.prefix)) continue;
        const list = this.byCorr.get(d.corr_id) ?? [];
        list.push(d);
        this.byCorr.set(d.corr_id, list);
        this.count += 1;
        this.waiters = this.waiters.filter((w) => {
          if (this.count >= w.n) {
            w.resolve();
            return false;
          }
          return true;
        });
      }
    })();
  }

  /** Resolves when at least n decisions arrived; rejects after timeoutMs with what is known. */
  waitFor(n: number, timeoutMs = 60_000): Promise<void> {
    if (this.count >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`expected ${n} decisions, have ${this.count} after ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
  }

  duplicates(): string[] {
    return [...this.byCorr.entries()].filter(([, l]) => l.length > 1).map(([c]) => c);
  }

  stop(): void {
    this.stopFn?.();
  }
}

/** Every child process a test file spawned: none may outlive the test run, whatever its outcome. */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Kills (SIGKILL) every child still running; Stack.stop() calls it. */
export function killStrayChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  }
  children.clear();
}

/** An at-orchestrator process (worker, coordinator, CLI command), its output read line by line. */
export class CliProcess {
  readonly output: string[] = [];
  private lineWaiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  private exitWaiters: Array<(code: number | null) => void> = [];
  exitCode: number | null | undefined;

  private constructor(readonly child: ChildProcess) {
    children.add(child);
    child.once('exit', () => children.delete(child));
    for (const stream of [child.stdout, child.stderr]) {
      const fromStderr = stream === child.stderr;
      const onLine = (line: string) => {
        // Recorded for test/setup/no-warnings.ts, which fails the running test on any of them.
        if (fromStderr && isWarningLine(line)) recordWarning(`at-orchestrator ${child.spawnargs.slice(2).join(' ')} (pid ${child.pid})`, line);
        this.onLine(line);
      };
      let partial = '';
      stream?.on('data', (chunk: Buffer) => {
        const parts = (partial + chunk.toString()).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) onLine(line);
      });
      stream?.on('end', () => {
        if (partial !== '') onLine(partial);
        partial = '';
      });
    }
    child.once('exit', (code) => {
      this.exitCode = code;
      for (const w of this.exitWaiters) w(code);
    });
  }

  static spawn(env: Env, args: string[] = ['worker']): CliProcess {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], {
      env: { PATH: process.env.PATH, ...env } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new CliProcess(child);
  }

  /** Spawns a worker and waits for its "worker started" log line. */
  static async started(env: Env, timeoutMs = 30_000, args: string[] = ['worker'], ready = /"msg":"worker started"/): Promise<CliProcess> {
    const port = env.HTTP_PORT === undefined || env.HTTP_PORT === '0' ? String(await freePort()) : env.HTTP_PORT;
    const p = CliProcess.spawn({ ...env, HTTP_PORT: port, LOG_LEVEL: env.LOG_LEVEL === 'debug' ? 'debug' : 'info' }, args);
    await p.waitForLine(ready, timeoutMs);
    return p;
  }

  /** Runs a CLI command to completion; resolves to its exit code and output. */
  static async run(env: Env, args: string[]): Promise<{ code: number | null; stdout: string; output: string[] }> {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { env: { PATH: process.env.PATH, ...env } as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    const p = new CliProcess(child);
    const code = await p.exited();
    return { code, stdout, output: p.output };
  }

  private onLine(line: string): void {
    if (line === '') return;
    this.output.push(line);
    if (this.output.length > 20_000) this.output.splice(0, 10_000);
    this.lineWaiters = this.lineWaiters.filter((w) => {
      if (!w.pattern.test(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  waitForLine(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const found = this.output.find((l) => pattern.test(l));
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${this.output.slice(-20).join('\n')}`));
      }, timeoutMs);
      const waiter = {
        pattern,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.lineWaiters.push(waiter);
      void this.exited().then(() => {
        if (!this.lineWaiters.includes(waiter)) return;
        clearTimeout(timer);
        reject(new Error(`process exited before a line matched ${pattern}; output:\n${this.output.slice(-20).join('\n')}`));
      });
    });
  }

  exited(): Promise<number | null> {
    if (this.exitCode !== undefined) return Promise.resolve(this.exitCode);
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

/** A worker is a CliProcess running `worker`. */
export const WorkerProcess = CliProcess;
export type WorkerProcess = CliProcess;
