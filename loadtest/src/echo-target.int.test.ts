import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectCleanRun, runDriver } from './driver-runs.test-support.js';

/**
 * The driver's floor, `--target echo` (loadtest/baseline/echo-orchestrator.ts), on private servers,
 * a few seconds at a low rate: it must pass the same correctness checks as every target, and the
 * run must carry CPU per decision. Never a timing.
 */
interface ResultFile {
  ok: boolean;
  problems: string[];
  target: string;
  resources: Record<string, { cpu_avg_pct: number; cpu_seconds?: number }>;
  cpu_ms_per_decision?: { target: number; 'nats-server'?: number; 'redis-server'?: number; total: number; driver?: number };
  cpu_window?: { from_s: number; to_s: number; decided: number; target_processes: string[]; cpu_seconds: Record<string, number> };
  result: { totals: Record<string, number>; target_failures: string[] };
}

describe('--target echo (the driver floor)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loadtest-echo-int-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (name: string, args: string[]): Promise<{ code: number; r: ResultFile }> =>
    runDriver<ResultFile>(dir, name, ['--target', 'echo', '--no-progress', '--grace', '5', ...args]);

  it('steady, 2 or 3 agents, JetStream publish: every correlation decided once by the seed rules; CPU per decision of echo + nats-server + redis-server', async () => {
    const res = await run('steady', ['--scenario', 'steady', '--rate', '150', '--duration', '4', '--warmup', '1', '--agents', 'mix']);
    expectCleanRun(res);
    const { r } = res;
    expect(r.target).toBe('echo');
    expect(r.result.totals.started).toBeGreaterThanOrEqual(590);
    expect(r.cpu_window).toMatchObject({ from_s: expect.closeTo(1, 0), to_s: expect.closeTo(4, 0), target_processes: ['echo'] });
    expect(r.cpu_window!.decided).toBeGreaterThan(300);
    const c = r.cpu_ms_per_decision!;
    expect(c.target).toBeGreaterThan(0);
    expect(c['nats-server']).toBeGreaterThan(0);
    expect(c['redis-server']).toBeGreaterThanOrEqual(0);
    expect(c.total).toBeCloseTo(c.target + c['nats-server']! + c['redis-server']!, 3);
    expect(c.driver).toBeGreaterThan(0);
    expect(r.resources.echo?.cpu_seconds).toBe(r.cpu_window!.cpu_seconds.echo);
  });

  it('core publish, 3 agents: the echo still consumes from the stream', async () => {
    expectCleanRun(await run('core', ['--scenario', 'steady', '--rate', '100', '--duration', '3', '--warmup', '1', '--agents', '3', '--publish', 'core']));
  });
});
