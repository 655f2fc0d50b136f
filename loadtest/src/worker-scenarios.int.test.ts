import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectCleanRun, runDriver } from './driver-runs.test-support.js';
import { REPO_DIR } from './package-dir.js';

/**
 * CI smoke variants of every scenario against OUR worker (`node packages/cli/dist/main.js worker`,
 * built by `pnpm build` / `pnpm test`), on private servers, a few seconds each. They assert what a
 * user would call broken — a lost, duplicated or wrong decision, a process that died, a scale-up or
 * kill that did not happen — and never a timing: the figures live in docs/benchmarks.md.
 */

interface ResultFile {
  ok: boolean;
  problems: string[];
  target: string;
  resources: Record<string, { rss_end_mb: number; heap_end_mb?: number; handles_end?: number }>;
  result: {
    totals: Record<string, number>;
    phases: Record<string, { count: number }>;
    actions: Array<{ action: string; outcome: string }>;
    target_failures: string[];
  };
}

/** Short cluster timers so that a killed worker's partitions move within the run's grace period. */
const FAST_CLUSTER = ['HEARTBEAT_INTERVAL_MS=200', 'WORKER_LEASE_MS=1500', 'LEADER_LEASE_MS=1500', 'REVOKE_TIMEOUT_MS=3000', 'ACK_WAIT_SEC=2'].flatMap(
  (kv) => ['--worker-env', kv],
);

describe('load driver against our worker (smoke: correctness only)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loadtest-worker-int-'));
  const run = (name: string, args: string[]): Promise<{ code: number; r: ResultFile }> =>
    runDriver<ResultFile>(dir, name, ['--target', 'worker', '--no-progress', '--k6', 'off', ...args]);

  beforeAll(() => {
    if (!existsSync(join(REPO_DIR, 'packages/cli/dist/main.js'))) throw new Error('packages/cli/dist/main.js is missing: run pnpm build first');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('steady: every correlation decided exactly once, as the seed rules say (2 and 3 agents mixed)', async () => {
    const res = await run('steady', ['--scenario', 'steady', '--rate', '200', '--duration', '3', '--warmup', '1', '--agents', 'mix', '--grace', '10']);
    expectCleanRun(res);
    expect(res.r.result.totals.started).toBeGreaterThanOrEqual(590);
  });

  it('max (closed loop): nothing lost or doubled while the worker is saturated', async () => {
    const res = await run('max', ['--scenario', 'max', '--duration', '3', '--warmup', '0', '--max-outstanding', '200', '--agents', '3', '--grace', '10']);
    expectCleanRun(res);
    expect(res.r.result.totals.decided).toBeGreaterThan(200);
  });

  it('market open: ramp ×10 with a second worker joining mid-ramp; no decision lost or doubled across the handoff', async () => {
    const res = await run('market-open', [
      '--scenario', 'market-open', '--rate', '40', '--pre', '2', '--ramp', '4', '--post', '3', '--scale-at', '4', '--warmup', '1', '--grace', '15',
      ...FAST_CLUSTER,
    ]);
    expectCleanRun(res);
    expect(res.r.result.actions).toEqual([{ action: 'scale-up', outcome: expect.stringMatching(/^worker-2 added/), t: expect.any(Number) }]);
    // The newcomer was sampled as a live process of the run (it joined, it did not die).
    expect(Object.keys(res.r.resources)).toContain('worker-2');
    expect(res.r.result.phases.after?.count).toBeGreaterThan(0);
  });

  it('soak (short): memory, heap and handles of the worker are sampled; nothing lost', async () => {
    const res = await run('soak', ['--scenario', 'soak', '--rate', '100', '--duration', '8', '--warmup', '2', '--grace', '10']);
    expectCleanRun(res);
    const w = res.r.resources['worker-1'];
    expect(w?.rss_end_mb).toBeGreaterThan(0);
    expect(w?.heap_end_mb).toBeGreaterThan(0);
    expect(w?.handles_end).toBeGreaterThan(0);
  });

  it('fault under load: kill -9 of one of two workers loses and doubles nothing', async () => {
    const res = await run('kill9', [
      '--scenario', 'steady', '--rate', '150', '--duration', '7', '--warmup', '1', '--workers', '2', '--kill-at', '3', '--grace', '25', '--decisions', 'stream',
      ...FAST_CLUSTER,
    ]);
    expectCleanRun(res);
    expect(res.r.result.actions).toEqual([{ action: 'kill-one', outcome: expect.stringMatching(/^worker-2 killed with SIGKILL/), t: expect.any(Number) }]);
  });
});
