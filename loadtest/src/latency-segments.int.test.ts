import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latencySegments, SEGMENTS, type TraceRecord } from '../scripts/latency-segments.js';
import { expectCleanRun, runDriver, type CheckedResult } from './driver-runs.test-support.js';
import type { LatencyRecord } from './latency-log.js';
import { REPO_DIR } from './package-dir.js';

/**
 * The segments of a decision's path against our real worker: the driver's --latency-log and the
 * worker's socket trace (scripts/socket-trace.mjs as a preload) must meet on one clock, decision by
 * decision. Correctness of the instrument only, never a timing.
 */
describe('--latency-log with a socket trace of the worker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loadtest-segments-int-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeAll(() => {
    if (!existsSync(join(REPO_DIR, 'packages/cli/dist/main.js'))) throw new Error('packages/cli/dist/main.js is missing: run pnpm build first');
  });

  it('matches every measured decision to its read, store, Redis answer and publish in the trace', async () => {
    const log = join(dir, 'latency.jsonl');
    const trace = join(dir, 'trace.json');
    const res = await runDriver<CheckedResult & { result: { latency_ms: { count: number } } }>(dir, 'segments', [
      ...['--target', 'worker', '--no-progress', '--k6', 'off', '--scenario', 'steady', '--rate', '100', '--duration', '3', '--warmup', '1'],
      ...['--latency-log', log, '--worker-env', `SOCKET_TRACE_FILE=${trace}`],
      ...['--worker-cmd', `node --import ${join(REPO_DIR, 'loadtest/scripts/socket-trace.mjs')} packages/cli/dist/main.js worker`],
    ]);
    expectCleanRun(res);
    const records = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as LatencyRecord);
    expect(records.length).toBe(res.r.result.latency_ms.count);
    expect(records.length).toBeGreaterThan(150);
    const report = latencySegments(records, JSON.parse(readFileSync(trace, 'utf8')) as TraceRecord[]);
    expect(report.matched).toBeGreaterThanOrEqual(Math.floor(records.length * 0.95));
    for (const s of SEGMENTS) expect(report.rows.find((r) => r.name === s)!.p50).toBeGreaterThanOrEqual(0);
  });
});
