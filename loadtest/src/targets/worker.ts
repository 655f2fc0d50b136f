import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@at-orchestrator/local-servers';
import { ChildService } from '../child-service.js';
import { REPO_DIR } from '../package-dir.js';
import type { ProcessRef } from '../probes.js';
import type { SystemUnderTest, TargetContext } from './target.js';

export const DEFAULT_WORKER_CMD = 'node packages/cli/dist/main.js worker';

export interface WorkerTargetOptions {
  readonly workers: number;
  /** Command line of one worker, run from the repository root (split on spaces). */
  readonly workerCmd?: string;
  /** Optional control plane to start first (e.g. "node packages/cli/dist/main.js coordinator"). */
  readonly coordinatorCmd?: string;
  /** Extra environment for every process (PROFILE, PARTITIONS, LOG_LEVEL, …). */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * Our orchestrator: N `at-orchestrator worker` processes (and optionally a coordinator), each with
 * its own HTTP port for /ready and /metrics. scaleUp adds a worker the way an autoscaler would: a
 * new process with the same configuration; killOne is kill -9.
 */
export class WorkerTarget implements SystemUnderTest {
  readonly name = 'worker';
  private readonly services: Array<{ service: ChildService; port: number }> = [];
  private context: TargetContext | undefined;
  private nextId = 1;
  /** Random per run: the processes of one run trust each other and nothing else. */
  private readonly secrets = { cluster: randomBytes(24).toString('hex'), operator: randomBytes(24).toString('hex') };

  constructor(private readonly options: WorkerTargetOptions) {}

  async start(context: TargetContext): Promise<void> {
    this.context = context;
    const cmd = this.options.workerCmd ?? DEFAULT_WORKER_CMD;
    if (this.options.workerCmd === undefined && !existsSync(join(REPO_DIR, 'packages/cli/dist/main.js'))) {
      throw new Error('packages/cli/dist/main.js is missing: build first (pnpm build at the repository root), or pass --worker-cmd');
    }
    if (this.options.coordinatorCmd !== undefined) await this.spawn('coordinator', this.options.coordinatorCmd);
    for (let i = 0; i < this.options.workers; i += 1) await this.spawn(`worker-${this.nextId++}`, cmd);
  }

  private async spawn(label: string, commandLine: string): Promise<ChildService> {
    const context = this.context!;
    const port = await freePort();
    const [command, ...args] = commandLine.split(/\s+/).filter((p) => p !== '');
    const service = new ChildService(label, command === 'node' ? process.execPath : command!, args, {
      cwd: REPO_DIR,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NATS_URL: context.natsUrl,
        REDIS_URL: context.redisUrl,
        ...context.clientEnv,
        NATS_STREAM: context.stream,
        HTTP_PORT: String(port),
        WORKER_ID: `loadtest-${label}`,
        LOG_LEVEL: 'warn',
        // One run's control-plane secrets, shared by its workers and coordinator (docs/security.md).
        CLUSTER_SECRET: this.secrets.cluster,
        OPERATOR_TOKEN: this.secrets.operator,
        ...this.options.env,
      },
      readyUrl: `http://127.0.0.1:${port}/ready`,
      readyTimeoutMs: 60_000,
    });
    service.onUnexpectedExit = (info, tail) => context.onFailure(`${label} exited with ${info.signal ?? `code ${info.code}`}:\n${tail}`);
    await service.start();
    this.services.push({ service, port });
    context.log(`${label} ready (pid ${service.pid}, http ${port})`);
    return service;
  }

  processes(): readonly ProcessRef[] {
    return this.services
      .filter((s) => s.service.exited === undefined)
      .map((s) => ({ label: s.service.label, pid: s.service.pid, metricsUrl: `http://127.0.0.1:${s.port}/metrics` }));
  }

  async scaleUp(): Promise<string> {
    const label = `worker-${this.nextId++}`;
    const service = await this.spawn(label, this.options.workerCmd ?? DEFAULT_WORKER_CMD);
    return `${label} added (pid ${service.pid})`;
  }

  async killOne(): Promise<string> {
    const victim = [...this.services].reverse().find((s) => s.service.label.startsWith('worker-') && s.service.exited === undefined);
    if (victim === undefined) return 'no worker left to kill';
    victim.service.kill9();
    return `${victim.service.label} killed with SIGKILL (pid ${victim.service.pid})`;
  }

  async close(): Promise<void> {
    // Workers first, then the control plane, as an orderly scale-down would.
    const workers = this.services.filter((s) => s.service.label !== 'coordinator');
    await Promise.all(workers.map((s) => s.service.stop()));
    await Promise.all(this.services.filter((s) => s.service.label === 'coordinator').map((s) => s.service.stop()));
  }
}
