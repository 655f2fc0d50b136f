import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';

// The scripts are imported with k6's modules stood in for; nothing connects at import time.
vi.mock('k6/metrics', () => {
  class Metric {
    add(): void {}
  }
  return { Counter: Metric, Rate: Metric, Trend: Metric };
});
vi.mock('k6/timers', () => ({ setTimeout, clearTimeout, setInterval, clearInterval }));
vi.mock('k6/websockets', () => ({ WebSocket: class {} }));

const K6_DIR = fileURLToPath(new URL('.', import.meta.url));

describe('k6 scripts', () => {
  it('type-check as k6 runs them (types: ["k6"], no Node types)', () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    expect(() => execFileSync(process.execPath, [tsc, '-p', `${K6_DIR}tsconfig.json`], { encoding: 'utf8', stdio: 'pipe' })).not.toThrow();
  }, 60_000);

  it.each([
    ['soak.ts', 'constant-arrival-rate', { RATE: '300', DURATION_SEC: '600' }],
    ['market-open.ts', 'ramping-arrival-rate', { RATE: '100', PRE_SEC: '10', RAMP_SEC: '60', POST_SEC: '10' }],
  ])('%s: arrival-rate executor, a collector, thresholds on errors, exports every exec and handleSummary', async (file, executor, env) => {
    (globalThis as Record<string, unknown>).__ENV = { NATS_WS_URL: 'ws://127.0.0.1:1', ...env };
    vi.resetModules();
    const script = (await import(`./${file}`)) as Record<string, unknown> & {
      options: { scenarios: Record<string, { executor: string; exec: string; stages?: Array<{ target: number }> }>; thresholds: Record<string, string[]> };
    };
    const scenarios = Object.values(script.options.scenarios);
    expect(scenarios.map((s) => s.executor).sort()).toEqual([executor, 'per-vu-iterations'].sort());
    for (const s of scenarios) expect(typeof script[s.exec]).toBe('function');
    expect(typeof script.handleSummary).toBe('function');
    expect(script.options.thresholds).toMatchObject({
      publish_errors: ['rate<0.01'],
      decision_mismatches: ['count==0'],
      duplicate_decisions: ['count==0'],
    });
    if (executor === 'ramping-arrival-rate') {
      const ramp = scenarios.find((s) => s.executor === executor)!;
      expect(ramp.stages?.map((st) => st.target)).toEqual([100, 1000, 1000]);
    }
  });
});
