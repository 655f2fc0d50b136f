import { describe, expect, it } from 'vitest';
import { seedDecision } from '../shared/seed-rules.js';
import { planCorrelation, seededRandom } from '../shared/synthetic.js';
import { EventHeap } from './event-heap.js';
import { LatencyHistogram } from './histogram.js';
import { CorrelationLedger } from './ledger.js';
import { HELP, parseLoadOptions, UsageError, type LoadOptions } from './options.js';
import { readNodeMetrics } from './probes.js';
import { compareTable, type ResultFile } from '../scripts/compare-results.js';
import { cpuPerDecision, cpuWindow, formatCpuPerDecision, problemsOf, summariseMachine, summariseResources } from './report.js';
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

  it('--ladder takes the protocol steps for --target ladder, each once, and names a bad one', () => {
    expect(opts('--target', 'ladder', '--ladder', 'js,lua,pull').ladder).toEqual(['js', 'lua', 'pull']);
    expect(opts('--target', 'ladder').ladder).toEqual([]);
    expect(opts('--target', 'ladder', '--ladder', '').ladder).toEqual([]);
    expect(() => opts('--target', 'ladder', '--ladder', 'js,push')).toThrow(/--ladder="js,push" is not valid: expected steps from js, lua, pull/);
    expect(() => opts('--target', 'ladder', '--ladder', 'js,js')).toThrow(/named twice/);
    expect(() => opts('--target', 'worker', '--ladder', 'js')).toThrow(/--ladder needs --target ladder/);
    expect(() => opts('--target', 'ladder', '--secure')).toThrow(/--secure needs/);
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
      decided_total: 0,
      p50_ms: 0,
      p99_ms: 0,
      max_ms: 0,
      outstanding: 0,
      inflight: 0,
      publish_errors: 0,
      machine_cpu_pct: 150,
      processes: { w: { rss_mb: i < 10 ? 50 : 100 + (i >= 90 ? 10 : 0), cpu_pct: 50, cpu_s: i / 2, heap_mb: 20 } },
    }));
    const r = summariseResources(timeline, 10)['w']!;
    expect(r).toMatchObject({ cpu_avg_pct: 50, rss_after_warmup_mb: 100, rss_end_mb: 110, rss_growth_pct: 10, heap_growth_pct: 0 });
    // Without a load end, the CPU window runs from the sample at the end of warm-up to the last one.
    expect(r.cpu_seconds).toBeCloseTo((99 - 10) / 2, 9);
    expect(summariseMachine(timeline, 10)).toMatchObject({ busy_avg_pct: 150, ours_avg_pct: 50, others_avg_pct: 100 });
  });

  it('heap floor: the lowest heap of the first and last tenth, so that a GC sawtooth is not growth but a rising floor is', () => {
    const point = (t: number, heap: number): TimelinePoint => ({
      t, started: 0, signals: 0, decided: 0, decided_total: 0, p50_ms: 0, p99_ms: 0, max_ms: 0, outstanding: 0, inflight: 0, publish_errors: 0, machine_cpu_pct: 0,
      processes: { w: { rss_mb: 100, cpu_pct: 10, cpu_s: t / 10, heap_mb: heap } },
    });
    // Sawtooth 50 → 240 MB, collected back to 50 every 20 s: no growth.
    const sawtooth = Array.from({ length: 200 }, (_, i) => point(i, 50 + (i % 20) * 10));
    expect(summariseResources(sawtooth, 0)['w']).toMatchObject({ heap_floor_after_warmup_mb: 50, heap_floor_end_mb: 50, heap_floor_growth_pct: 0 });
    // The same sawtooth on a floor that rises by 20 %.
    const leak = Array.from({ length: 200 }, (_, i) => point(i, 50 + i * 0.05 + (i % 20) * 10));
    expect(summariseResources(leak, 0)['w']!.heap_floor_growth_pct).toBeGreaterThan(15);
  });

  describe('CPU per decision', () => {
    type Procs = TimelinePoint['processes'];
    const at = (t: number, decidedTotal: number, processes: Procs, previous?: TimelinePoint): TimelinePoint => ({
      t, started: 0, signals: 0, decided: decidedTotal - (previous?.decided_total ?? 0), decided_total: decidedTotal,
      p50_ms: 0, p99_ms: 0, max_ms: 0, outstanding: 0, inflight: 0, publish_errors: 0, machine_cpu_pct: 0, processes,
    });
    const proc = (cpu_s: number, cpu_pct = 0) => ({ rss_mb: 50, cpu_pct, cpu_s });
    /**
     * Samples every second from t = 1 to 12 (the load ends at 10.004, the last sample is after the
     * grace period), 500 decisions a second. worker-1 runs throughout (0.3 s of CPU a second);
     * worker-2 joins at t = 6 (1 s of start-up, then 0.2 s a second); worker-3 dies after t = 5;
     * nats-server 0.2, redis-server 0.1 and the driver 0.15 s a second.
     */
    function run(): TimelinePoint[] {
      const points: TimelinePoint[] = [];
      for (let t = 1; t <= 12; t += 1) {
        const processes: Procs = {
          'nats-server': proc(0.2 * t),
          'redis-server': proc(0.1 * t),
          'worker-1': proc(5 + 0.3 * t, 30),
          ...(t >= 6 ? { 'worker-2': proc(1 + 0.2 * (t - 6)) } : {}),
          ...(t <= 5 ? { 'worker-3': proc(0.1 * t) } : {}),
          driver: proc(0.15 * t),
        };
        points.push(at(t === 12 ? 12.3 : t, 500 * Math.min(t, 10), processes, points[points.length - 1]));
      }
      return points;
    }

    it('sums the target processes over the window from the end of warm-up to the end of the load', () => {
      const timeline = run();
      const w = cpuWindow(timeline, 3, 10.004)!;
      expect([w.from.t, w.to.t, w.decided]).toEqual([3, 10, 3500]);
      const cpu = cpuPerDecision(timeline, 3, 10.004)!;
      // worker-1 0.3 × 7 = 2.1; worker-2 its whole life in the window, 1 + 0.2 × 4 = 1.8; worker-3 0.5 − 0.3 = 0.2.
      expect(cpu.cpu_window).toMatchObject({ from_s: 3, to_s: 10, decided: 3500, target_processes: ['worker-1', 'worker-2', 'worker-3'] });
      expect(cpu.cpu_window.cpu_seconds).toEqual({ 'nats-server': 1.4, 'redis-server': 0.7, 'worker-1': 2.1, 'worker-2': 1.8, 'worker-3': 0.2, driver: 1.05 });
      const c = cpu.cpu_ms_per_decision;
      expect(c.target).toBeCloseTo((4.1 * 1000) / 3500, 4);
      expect(c['nats-server']).toBeCloseTo(0.4, 4);
      expect(c['redis-server']).toBeCloseTo(0.2, 4);
      expect(c.total).toBeCloseTo((6.2 * 1000) / 3500, 4);
      expect(c.driver).toBeCloseTo(0.3, 4);
      expect(formatCpuPerDecision(cpu)).toBe(
        'total 1.771 ms = target (worker-1 + worker-2 + worker-3) 1.171 + nats-server 0.400 + redis-server 0.200 · driver 0.300, not in the total · t=3.0–10.0 s, 3500 decisions',
      );
      // The same window in the resource summary; cpu_avg_pct stays the average of the samples.
      const resources = summariseResources(timeline, 3, 10.004);
      expect(resources['worker-1']).toMatchObject({ cpu_avg_pct: 30, cpu_seconds: 2.1 });
      expect(resources['nats-server']?.cpu_seconds).toBe(1.4);
    });

    it('is exact however the interval is cut: one process at 0.25 core and 100 decisions/s is 2.5 ms per decision', () => {
      const timeline = [0.7, 2, 3.1, 4.4, 5, 6.05].map((t) => at(t, Math.round(t * 100), { echo: proc(t / 4) }));
      const c = cpuPerDecision(timeline, 2, 6)!;
      expect(c.cpu_window).toMatchObject({ from_s: 2, to_s: 6.05, decided: 405 });
      expect(c.cpu_ms_per_decision.total).toBeCloseTo((1.01 * 1000) / 405, 4);
      expect(c.cpu_ms_per_decision['nats-server']).toBeUndefined();
    });

    it('nothing when the samples have no CPU counter (older timelines) or nothing was decided', () => {
      const old = run().map((p) => ({
        ...p,
        processes: Object.fromEntries(Object.entries(p.processes).map(([k, v]) => [k, { rss_mb: v.rss_mb, cpu_pct: v.cpu_pct }])),
      })) as unknown as TimelinePoint[];
      expect(cpuPerDecision(old, 3, 10)).toBeUndefined();
      expect(summariseResources(old, 3, 10)['worker-1']).not.toHaveProperty('cpu_seconds');
      // Without decided_total the window's decisions are the per-interval counts summed.
      const noTotals = run().map(({ decided_total: _unused, ...p }) => p) as unknown as TimelinePoint[];
      expect(cpuWindow(noTotals, 3, 10)?.decided).toBe(3500);
      const idle = run().map((p) => ({ ...p, decided: 0, decided_total: 0 }));
      expect(cpuPerDecision(idle, 3, 10)).toBeUndefined();
      expect(cpuPerDecision(run().slice(0, 1), 0)).toBeUndefined();
    });
  });

  describe('compare-results', () => {
    const file = (target: string, p99: number, decided: number, cpu?: number): ResultFile => ({
      target,
      ok: true,
      machine_cpu: { busy_avg_pct: 120, ours_avg_pct: 80, others_avg_pct: 40 },
      resources: { 'nats-server': { cpu_avg_pct: 20, rss_end_mb: 30 }, [target]: { cpu_avg_pct: 25, rss_end_mb: 90 } },
      ...(cpu === undefined ? {} : { cpu_ms_per_decision: { target: cpu / 2, 'nats-server': cpu / 4, 'redis-server': cpu / 4, total: cpu } }),
      options: { workers: 1 },
      result: {
        throughput: { offered_per_sec: 500, decided_per_sec: decided },
        latency_ms: { p50: 1, p95: 2, p99, max: 10 },
        totals: { lost: 0, duplicates: 0, mismatches: 0, early: 0 },
      },
    });
    const rows = (table: string): string[][] =>
      table
        .split('\n')
        .filter((l) => l.startsWith('| ') && !l.startsWith('| target') && !l.startsWith('| ---'))
        .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));

    it('the echo is a reference row; ratios are to the first run that is not the echo', () => {
      const table = compareTable([
        { file: 'e.json', r: file('echo', 1, 500, 0.5) },
        { file: 'b.json', r: file('baseline', 3, 500, 1) },
        { file: 'w.json', r: file('worker', 6, 500, 1.6) },
      ]);
      const [echo, baseline, worker] = rows(table);
      expect(echo!.slice(0, 1)).toEqual(['echo (floor)']);
      expect(table).toMatch(/CPU ms\/decision \(target \+ nats \+ redis\) \| CPU\/decision ×ref \| machine busy \/ other users/);
      expect(echo!.slice(-3)).toEqual(['0.500 (0.250 + 0.125 + 0.125)', '0.50×', '120 % / 40 %']);
      expect(baseline!.slice(-3)).toEqual(['1.000 (0.500 + 0.250 + 0.250)', '1.00×', '120 % / 40 %']);
      expect(worker![7]).toBe('2.00×');
      expect(worker!.slice(-3)).toEqual(['1.600 (0.800 + 0.400 + 0.400)', '1.60×', '120 % / 40 %']);
      expect(table).toMatch(/×ref: ratio to baseline/);
    });

    it('a ladder run is named by its steps', () => {
      const ladder = (steps: string[]): ResultFile => ({ ...file('ladder', 4, 500, 1.2), options: { workers: 1, ladder: steps } });
      const [, bare, full] = rows(compareTable([{ file: 'b.json', r: file('baseline', 3, 500, 1) }, { file: 'l0.json', r: ladder([]) }, { file: 'l3.json', r: ladder(['js', 'lua', 'pull']) }]));
      expect(bare![0]).toBe('ladder: seed');
      expect(full![0]).toBe('ladder: seed + js + lua + pull');
    });

    it('older result files without CPU per decision or machine figures show "–"', () => {
      const { machine_cpu: _m, ...old } = file('baseline', 3, 500);
      const [baseline, worker] = rows(compareTable([{ file: 'b.json', r: old }, { file: 'w.json', r: file('worker', 6, 500, 1.6) }]));
      expect(baseline!.slice(-3)).toEqual(['–', '–', '–']);
      expect(worker!.slice(-3)).toEqual(['1.600 (0.800 + 0.400 + 0.400)', '–', '120 % / 40 %']);
    });
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
