import { vi } from 'vitest';
import type { Env } from '@at-orchestrator/contracts';
import { CliProcess, Stack } from './stack.js';

export interface StatusWorker {
  id: string;
  partitions: number;
}

/**
 * A cluster of real processes on one Stack: coordinators and workers started with the built CLI,
 * COORDINATOR=off on workers so that the coordinators are the only leaders, short leases.
 */
/** Separate coordinator processes and short leases, so that a test sees handoffs and failovers in seconds. */
export const FAST_CLUSTER_ENV = {
  COORDINATOR: 'off',
  HEARTBEAT_INTERVAL_MS: '200',
  WORKER_LEASE_MS: '1500',
  LEADER_LEASE_MS: '1500',
  REVOKE_TIMEOUT_MS: '3000',
  ACK_WAIT_SEC: '2',
  DECISION_TIMEOUT_SEC: '10',
} as const;

export class ClusterHarness {
  readonly workers = new Map<string, CliProcess>();
  readonly coordinators = new Map<string, CliProcess>();

  constructor(
    readonly stack: Stack,
    private readonly overrides: Env = {},
  ) {}

  env(extra: Env = {}): Env {
    return this.stack.env({
      ...FAST_CLUSTER_ENV,
      STATE_TTL_SECONDS: '120',
      ...this.overrides,
      ...extra,
    });
  }

  async startCoordinator(id: string): Promise<CliProcess> {
    const p = await CliProcess.started(this.env({ COORDINATOR_ID: id }), 30_000, ['coordinator'], /"msg":"coordinator started"/);
    this.coordinators.set(id, p);
    return p;
  }

  async startWorker(id: string): Promise<CliProcess> {
    const p = await CliProcess.started(this.env({ WORKER_ID: id }));
    this.workers.set(id, p);
    return p;
  }

  /** `at-orchestrator <args> --json` against the cluster; parsed output. */
  async cli<T = unknown>(...args: string[]): Promise<T> {
    const r = await CliProcess.run(this.env(), [...args, '--json']);
    if (r.code !== 0) throw new Error(`at-orchestrator ${args.join(' ')} exited ${r.code}: ${r.output.join('\n')}`);
    return JSON.parse(r.stdout) as T;
  }

  /** Partitions per worker from the leader's table. */
  async ownership(): Promise<Map<string, number>> {
    const { partitions: parts } = await this.cli<{ partitions: Array<{ partition: number; owner: string | null; phase: string }> }>('partitions');
    const counts = new Map<string, number>();
    for (const p of parts) if (p.owner !== null && p.phase === 'owned') counts.set(p.owner, (counts.get(p.owner) ?? 0) + 1);
    return counts;
  }

  /** Waits until exactly these workers own every partition, balanced (max − min ≤ 1), nothing moving. */
  async waitForBalance(workerIds: string[], partitions = 64, timeout = 60_000): Promise<Map<string, number>> {
    let last = new Map<string, number>();
    await vi.waitFor(
      async () => {
        last = await this.ownership();
        const counts = workerIds.map((w) => last.get(w) ?? 0);
        const total = [...last.values()].reduce((a, b) => a + b, 0);
        if (total !== partitions || [...last.keys()].some((w) => !workerIds.includes(w))) throw new Error(`not settled: ${JSON.stringify([...last])}`);
        if (Math.max(...counts) - Math.min(...counts) > 1) throw new Error(`not balanced: ${JSON.stringify([...last])}`);
      },
      { timeout, interval: 250 },
    );
    return last;
  }

  async stopAll(): Promise<void> {
    const all = [...this.workers.values(), ...this.coordinators.values()];
    for (const p of all) if (p.exitCode === undefined) p.kill('SIGCONT');
    await Promise.all(
      all.map(async (p) => {
        if (p.exitCode !== undefined) return;
        p.kill('SIGTERM');
        const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
        await p.exited();
        clearTimeout(t);
      }),
    );
  }
}

function httpPort(proc: CliProcess): number {
  const line = proc.output.find((l) => l.includes('"http_port"'));
  if (line === undefined) throw new Error('process did not log its http_port');
  return (JSON.parse(line) as { http_port: number }).http_port;
}

/** A process's /health status (healthy, degraded, unhealthy). */
export async function healthStatus(proc: CliProcess): Promise<string> {
  return ((await (await fetch(`http://127.0.0.1:${httpPort(proc)}/health`)).json()) as { status: string }).status;
}

/** Reads one counter (summed over labels) from a process's /metrics. */
/** A counter summed over several processes' /metrics. */
export async function sumCounter(procs: readonly CliProcess[], name: string): Promise<number> {
  return (await Promise.all(procs.map((p) => scrapeCounter(p, name)))).reduce((a, b) => a + b, 0);
}

export async function scrapeCounter(proc: CliProcess, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort(proc)}/metrics`)).text();
  let sum = 0;
  for (const l of text.split('\n')) {
    if (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) sum += Number(l.slice(l.lastIndexOf(' ') + 1));
  }
  return sum;
}
