import { describe, expect, it } from 'vitest';
import { seedDecision } from '../shared/seed-rules.js';
import { planCorrelation, seededRandom } from '../shared/synthetic.js';
import { EventHeap } from './event-heap.js';
import { LatencyHistogram } from './histogram.js';
import { CorrelationLedger } from './ledger.js';
import { HELP, parseLoadOptions, UsageError, type LoadOptions } from './options.js';
import { readNodeMetrics } from './probes.js';
import { problemsOf, summariseMachine, summariseResources } from './report.js';
import { ArrivalClock, profileFor } from './scenarios.js';
import type { TimelinePoint } from './run.js';

const opts = (...args: string[]): LoadOptions => {
  const o = parseLoadOptions(args);
  if (o === 'help') throw new Error('help');
  return o;
};

describe('options', () => {
  it('has defaults per scenario and accepts pnpm\'s "--"', () => {
    const o = opts('--', '--scenario', 'steady');
    expect(o).toMatchObject({ scenario: 'steady', target: 'baseline', servers: 'private', rate: 1000, durationSec: 30, agents: 2, publish: 'jetstream' });
    expect(opts('--scenario', 'soak')).toMatchObject({ rate: 500, durationSec: 1800, warmupSec: 450 });
    expect(opts('--scenario', 'market-open', '--pre', '5', '--ramp', '10', '--post', '5')).toMatchObject({ durationSec: 20, rampFactor: 10 });
    expect(opts('--agents', 'mix').agents).toBe('mix');
    expect(parseLoadOptions(['--help'])).toBe('help');
    expect(HELP).toMatch(/--scenario/);
  });

  it('names the option and the accepted values when one is wrong', () => {
    expect(() => opts('--scenario', 'burst')).toThrow(/--scenario="burst" is not valid: expected one of steady, max, market-open, soak/);
    expect(() => opts('--rate', '-5')).toThrow(UsageError);
    expect(() => opts('--worker-env', 'NOEQUALS')).toThrow(/KEY=VALUE/);
    expect(() => opts('--nats-url', 'nats://x:4222')).toThrow(/--servers given/);
    expect(() => opts('--bogus')).toThrow(UsageError);
  });

  it('given servers default to NATS_URL / REDIS_URL', () => {
    const o = parseLoadOptions(['--servers', 'given'], { NATS_URL: 'nats://h:1', REDIS_URL: 'redis://h:2' });
    expect(o).toMatchObject({ natsUrl: 'nats://h:1', redisUrl: 'redis://h:2' });
  });
});

describe('scenarios', () => {
  it('steady: evenly spaced starts at the rate, independent of what happened before', () => {
    const clock = new ArrivalClock(profileFor(opts('--rate', '1000', '--duration', '2')));
    const starts: number[] = [];
    for (let t = clock.next(); t !== undefined; t = clock.next()) starts.push(t);
    expect(starts.length).toBeGreaterThanOrEqual(1999);
    expect(starts.length).toBeLessThanOrEqual(2001);
    expect(starts[1]! - starts[0]!).toBeCloseTo(0.001, 9);
  });

  it('market open: ramps ×factor over the ramp, adds an instance mid-ramp, labels phases', () => {
    const p = profileFor(opts('--scenario', 'market-open', '--rate', '100', '--pre', '10', '--ramp', '60', '--post', '10', '--warmup', '2'));
    expect(p.rateAt(5)).toBe(100);
    expect(p.rateAt(40)).toBeCloseTo(550, 6);
    expect(p.rateAt(75)).toBe(1000);
    expect(p.actions).toEqual([{ atSec: 40, action: 'scale-up' }]);
    expect([1, 5, 40, 75].map((t) => p.phaseAt(t))).toEqual(['warmup', 'before', 'ramp', 'after']);
    const clock = new ArrivalClock(p);
    let n = 0;
    while (clock.next() !== undefined) n += 1;
    expect(n).toBeGreaterThan(0.98 * (1000 + 33_000 + 10_000));
    expect(n).toBeLessThan(1.02 * (1000 + 33_000 + 10_000));
    expect(profileFor(opts('--scenario', 'market-open', '--scale-at', 'never')).actions).toEqual([]);
  });

  it('soak: drift windows are the first and last tenth after warm-up', () => {
    const p = profileFor(opts('--scenario', 'soak', '--duration', '1100', '--warmup', '100'));
    expect([50, 150, 600, 1050].map((t) => p.phaseAt(t))).toEqual(['warmup', 'early', 'middle', 'late']);
  });
});

describe('LatencyHistogram', () => {
  it('percentiles within 1 % of the exact ones, exact max', () => {
    const rand = seededRandom(3);
    const values = Array.from({ length: 20_000 }, () => Math.exp(rand() * 8) / 10); // 0.1 ms … 300 ms
    const h = new LatencyHistogram();
    for (const v of values) h.recordMs(v);
    const sorted = [...values].sort((a, b) => a - b);
    for (const p of [50, 90, 99, 99.9]) {
      const exact = sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
      expect(Math.abs(h.percentileMs(p) - exact) / exact).toBeLessThan(0.01);
    }
    expect(h.maxMs).toBeCloseTo(sorted[sorted.length - 1]!, 3);
    const other = new LatencyHistogram();
    other.recordMs(5000);
    h.merge(other);
    expect(h.count).toBe(20_001);
    expect(h.maxMs).toBe(5000);
    h.reset();
    expect(h.summary()).toEqual({ count: 0, mean: 0, p50: 0, p95: 0, p99: 0, p999: 0, max: 0 });
  });
});

describe('EventHeap', () => {
  it('pops by key, ties in insertion order', () => {
    const heap = new EventHeap<string>();
    const rand = seededRandom(9);
    const items = Array.from({ length: 500 }, (_, i) => ({ key: Math.floor(rand() * 50), id: `i${i}` }));
    for (const it of items) heap.push(it.key, it.id);
    const out: string[] = [];
    while (heap.size > 0) out.push(heap.pop()!);
    const expected = [...items].sort((a, b) => a.key - b.key || Number(a.id.slice(1)) - Number(b.id.slice(1))).map((x) => x.id);
    expect(out).toEqual(expected);
  });
});

describe('CorrelationLedger', () => {
  const rand = seededRandom(11);
  const decisionFor = (corrId: string, plan: ReturnType<typeof planCorrelation>, extra: object = {}) => {
    const e = seedDecision(plan.momentum, plan.risk);
    const { confidence, ...decision } = e;
    return JSON.stringify({ corr_id: corrId, decision, confidence, ...extra });
  };
  function publishAll(ledger: CorrelationLedger, phase = 'steady') {
    const plan = planCorrelation(rand, 3, 2);
    const c = ledger.start(plan, 1000, phase);
    for (const s of plan.signals) {
      ledger.signalSent(c, s.agent, 1000 + s.offsetMs, 1000.5 + s.offsetMs);
      ledger.signalAccepted(c);
    }
    return { c, plan };
  }

  it('measures from the last required signal, counts duplicates, mismatches, foreign and lost', () => {
    const settled: string[] = [];
    const ledger = new CorrelationLedger('r1', ['warmup', 'steady'], (c) => settled.push(c.corrId));
    const a = publishAll(ledger);
    const b = publishAll(ledger);
    const lost = publishAll(ledger);
    expect(ledger.published).toBe(3);
    const at = 1000.5 + a.plan.lastRequiredOffsetMs + 2;
    ledger.decision(decisionFor(a.c.corrId, a.plan, { status: 'complete' }), at);
    ledger.decision(decisionFor(a.c.corrId, a.plan), at + 1);
    ledger.decision(JSON.stringify({ corr_id: b.c.corrId, decision: { action: 'trade', reason: 'x' }, confidence: 1 }), at);
    ledger.decision(JSON.stringify({ corr_id: 'lt-other-0' }), at);
    ledger.decision(JSON.stringify({ corr_id: 'lt-r1-zzzz' }), at);
    ledger.decision('not json', at);
    expect(ledger.decided).toBe(2);
    expect(ledger.duplicates).toBe(1);
    expect(ledger.mismatches).toBe(1);
    expect(ledger.mismatchExamples[0]?.corrId).toBe(b.c.corrId);
    expect(ledger.foreign).toBe(2);
    expect(ledger.invalid).toBe(1);
    expect(ledger.lost().map((c) => c.corrId)).toEqual([lost.c.corrId]);
    expect(ledger.latency.count).toBe(2);
    expect(ledger.latency.percentileMs(0)).toBeCloseTo(2, 1);
    expect(settled).toEqual([a.c.corrId, b.c.corrId]);
  });

  it('a decision before the required signals went out is counted as early; publish failures are not lost', () => {
    const ledger = new CorrelationLedger('r2', ['steady']);
    const plan = planCorrelation(rand, 2, 0);
    const c = ledger.start(plan, 0, 'steady');
    ledger.signalSent(c, plan.signals[0]!.agent, 0, 0);
    ledger.decision(decisionFor(c.corrId, plan), 1);
    expect(ledger.early).toBe(1);
    const failed = ledger.start(plan, 0, 'steady');
    for (const s of plan.signals) ledger.signalSent(failed, s.agent, 0, 0);
    ledger.signalAccepted(failed);
    ledger.signalFailed(failed, 'timeout');
    expect(ledger.publishErrors).toBe(1);
    expect(ledger.lost()).toEqual([]);
    expect(ledger.outstanding).toBe(0);
  });

  it('warm-up decisions are checked but left out of the latency totals', () => {
    const ledger = new CorrelationLedger('r3', ['warmup', 'steady']);
    const { c, plan } = publishAll(ledger, 'warmup');
    ledger.decision(decisionFor(c.corrId, plan), 2000);
    expect(ledger.decided).toBe(1);
    expect(ledger.latency.count).toBe(0);
    expect(ledger.byPhase.get('warmup')?.count).toBe(1);
  });
});

describe('reports', () => {
  it('reads prom-client metrics', () => {
    const text = '# HELP x\nnodejs_heap_size_used_bytes 10485760\nnodejs_eventloop_lag_p99_seconds 0.0123\nnodejs_active_handles_total 7\n';
    expect(readNodeMetrics(text)).toEqual({ heap_mb: 10, eventloop_p99_ms: 12.3, handles: 7 });
  });

  it('memory growth compares medians after warm-up', () => {
    const timeline = Array.from({ length: 100 }, (_, i): TimelinePoint => ({
      t: i,
      started: 0,
      signals: 0,
      decided: 0,
      p50_ms: 0,
      p99_ms: 0,
      max_ms: 0,
      outstanding: 0,
      inflight: 0,
      publish_errors: 0,
      machine_cpu_pct: 150,
      processes: { w: { rss_mb: i < 10 ? 50 : 100 + (i >= 90 ? 10 : 0), cpu_pct: 50, heap_mb: 20 } },
    }));
    const r = summariseResources(timeline, 10)['w']!;
    expect(r).toMatchObject({ cpu_avg_pct: 50, rss_after_warmup_mb: 100, rss_end_mb: 110, rss_growth_pct: 10, heap_growth_pct: 0 });
    expect(summariseMachine(timeline, 10)).toMatchObject({ busy_avg_pct: 150, ours_avg_pct: 50, others_avg_pct: 100 });
  });

  it('heap floor: the lowest heap of the first and last tenth, so that a GC sawtooth is not growth but a rising floor is', () => {
    const point = (t: number, heap: number): TimelinePoint => ({
      t, started: 0, signals: 0, decided: 0, p50_ms: 0, p99_ms: 0, max_ms: 0, outstanding: 0, inflight: 0, publish_errors: 0, machine_cpu_pct: 0,
      processes: { w: { rss_mb: 100, cpu_pct: 10, heap_mb: heap } },
    });
    // Sawtooth 50 → 240 MB, collected back to 50 every 20 s: no growth.
    const sawtooth = Array.from({ length: 200 }, (_, i) => point(i, 50 + (i % 20) * 10));
    expect(summariseResources(sawtooth, 0)['w']).toMatchObject({ heap_floor_after_warmup_mb: 50, heap_floor_end_mb: 50, heap_floor_growth_pct: 0 });
    // The same sawtooth on a floor that rises by 20 %.
    const leak = Array.from({ length: 200 }, (_, i) => point(i, 50 + i * 0.05 + (i % 20) * 10));
    expect(summariseResources(leak, 0)['w']!.heap_floor_growth_pct).toBeGreaterThan(15);
  });

  it('a run fails on lost, duplicates, mismatches and publish errors, never on timings', () => {
    const base = {
      totals: { started: 1, published: 1, signals_sent: 2, publish_errors: 0, failed_correlations: 0, decided: 1, lost: 0, unfinished: 0, duplicates: 0, mismatches: 0, early: 0, foreign: 0, invalid: 0 },
      target_failures: [],
    };
    expect(problemsOf(base as never)).toEqual([]);
    expect(problemsOf({ ...base, totals: { ...base.totals, lost: 2, duplicates: 1 } } as never)).toEqual([
      '2 correlation(s) lost (no decision within the grace period)',
      '1 duplicate decision(s)',
    ]);
  });
});
