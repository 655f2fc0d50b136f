import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectCleanRun, runDriver } from './driver-runs.test-support.js';

/**
 * `--target ladder` (loadtest/micro/protocol-ladder.ts) on private servers, a few seconds at a low
 * rate, with no step (the seed's path) and with all of them: each must decide every correlation once,
 * as the seed rules say, like every target. Never a timing.
 */
interface ResultFile {
  ok: boolean;
  problems: string[];
  target: string;
  options: { ladder: string[] };
  cpu_ms_per_decision?: { target: number; total: number };
  result: { totals: Record<string, number>; target_failures: string[] };
}

describe('--target ladder (our protocol on the seed, step by step)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loadtest-ladder-int-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (name: string, steps: string): Promise<{ code: number; r: ResultFile }> =>
    runDriver<ResultFile>(dir, name, ['--target', 'ladder', '--ladder', steps, '--scenario', 'steady', '--rate', '150', '--duration', '3', '--warmup', '1', '--no-progress', '--grace', '5']);
  const expectClean = (res: { code: number; r: ResultFile }): void => {
    expectCleanRun(res);
    expect(res.r.result.totals.started).toBeGreaterThanOrEqual(440);
    expect(res.r.cpu_ms_per_decision!.target).toBeGreaterThan(0);
  };

  it('every step (JetStream decision, store-and-claim script, pull consumer): every correlation decided once', async () => {
    const res = await run('all', 'js,lua,pull');
    expectClean(res);
    expect(res.r.target).toBe('ladder');
    expect(res.r.options.ladder).toEqual(['js', 'lua', 'pull']);
  });

  it('no step: the seed path, decided the same', async () => {
    expectClean(await run('none', ''));
  });
});
