import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { redactUrl } from '@at-orchestrator/contracts';
import type { LatencySummary } from './histogram.js';
import type { Infrastructure } from './infrastructure.js';
import type { LoadOptions } from './options.js';
import type { NodeRunResult, TimelinePoint } from './run.js';

export interface MachineInfo {
  readonly cpus: number;
  readonly cpu_model: string;
  readonly memory_gib: number;
  readonly node: string;
  readonly nats_server: string | undefined;
  readonly redis_server: string | undefined;
  readonly k6: string | undefined;
  readonly loadavg_start: readonly number[];
  loadavg_end?: readonly number[];
  readonly note: string;
}

export function machineInfo(infra: Infrastructure, k6Version: string | undefined): MachineInfo {
  return {
    cpus: availableParallelism(),
    cpu_model: cpus()[0]?.model ?? 'unknown',
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    nats_server: infra.versions.nats,
    redis_server: infra.versions.redis,
    k6: k6Version,
    loadavg_start: loadavg().map((v) => Math.round(v * 100) / 100),
    note: 'the driver, the target and the servers share this machine; load average shows other users of the CPU',
  };
}

export interface ResourceSummary {
  /** Average of the per-second cpu_pct samples after warm-up (whole percent; kept for the tools that read it). */
  readonly cpu_avg_pct: number;
  /**
   * CPU seconds (user + system) the process used in the measured window (cpuWindow: the sample
   * nearest the end of warm-up to the one nearest the end of the load), from the cumulative
   * counters of /proc/<pid>/stat: exact to 10 ms, whatever the sampling.
   */
  readonly cpu_seconds?: number;
  readonly rss_after_warmup_mb: number;
  readonly rss_end_mb: number;
  readonly rss_growth_pct: number;
  readonly heap_after_warmup_mb?: number;
  readonly heap_end_mb?: number;
  readonly heap_growth_pct?: number;
  /**
   * Lowest heap used in the first and in the last tenth after warm-up (at least the median window):
   * what survives garbage collection. A heap sawtooth makes medians move with GC timing; a leak
   * raises the floor.
   */
  readonly heap_floor_after_warmup_mb?: number;
  readonly heap_floor_end_mb?: number;
  readonly heap_floor_growth_pct?: number;
  readonly eventloop_p99_max_ms?: number;
  readonly handles_end?: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.floor((s.length - 1) / 2)] as number);
};
const growth = (from: number, to: number): number => (from <= 0 ? 0 : Math.round(((to - from) / from) * 1000) / 10);

/** The processes of the run that are not the system under test. */
export const NOT_TARGET = new Set(['nats-server', 'redis-server', 'driver']);

/**
 * The measured window for CPU accounting: from the timeline point nearest the end of warm-up to the
 * one nearest the end of the load (the window of decided/s, to the nearest sample: both ends are
 * samples, so that CPU and decisions are counted between the same two moments). Undefined when the
 * timeline has fewer than two points in it.
 */
export function cpuWindow(
  timeline: readonly TimelinePoint[],
  warmupSec: number,
  loadEndSec?: number,
): { readonly from: TimelinePoint; readonly to: TimelinePoint; readonly decided: number } | undefined {
  if (timeline.length < 2) return undefined;
  const nearest = (t: number, among: readonly TimelinePoint[]): TimelinePoint | undefined =>
    among.reduce<TimelinePoint | undefined>((best, p) => (best === undefined || Math.abs(p.t - t) < Math.abs(best.t - t) ? p : best), undefined);
  const to = loadEndSec === undefined ? timeline[timeline.length - 1]! : nearest(loadEndSec, timeline)!;
  const from = nearest(warmupSec, timeline.filter((p) => p.t < to.t));
  if (from === undefined) return undefined;
  // decided_total is cumulative; older timelines only have the per-interval counts.
  const decided =
    typeof to.decided_total === 'number' && typeof from.decided_total === 'number'
      ? to.decided_total - from.decided_total
      : timeline.filter((p) => p.t > from.t && p.t <= to.t).reduce((n, p) => n + p.decided, 0);
  return { from, to, decided };
}

/**
 * CPU seconds one process used between the window's ends: its cumulative counter at the end (or at
 * its last sample in the window, when it died) minus the counter at the start (0 when it started
 * during the window: its start-up counts, as a scale-up's cost should). Undefined without samples.
 */
function cpuSecondsIn(timeline: readonly TimelinePoint[], label: string, w: { from: TimelinePoint; to: TimelinePoint }): number | undefined {
  const at = (p: TimelinePoint): number | undefined => {
    const v = p.processes[label]?.cpu_s;
    return typeof v === 'number' ? v : undefined;
  };
  let start = at(w.from);
  if (start === undefined && timeline.some((p) => p.t < w.from.t && at(p) !== undefined)) {
    // Sampled before the window but not at its start: a gap in sampling; take the last value before.
    start = [...timeline].reverse().find((p) => p.t < w.from.t && at(p) !== undefined)!.processes[label]!.cpu_s;
  }
  const inside = timeline.filter((p) => p.t > w.from.t && p.t <= w.to.t && at(p) !== undefined);
  const end = inside.length > 0 ? at(inside[inside.length - 1]!) : start;
  if (end === undefined) return undefined;
  return Math.max(0, end - (start ?? 0));
}

/** CPU milliseconds per decision in the measured window: the target's processes summed, the servers, their total, and the driver (not in the total). */
export interface CpuPerDecision {
  /** Every process of the system under test (workers, coordinators, the baseline, the echo) summed. */
  readonly target: number;
  readonly 'nats-server'?: number;
  readonly 'redis-server'?: number;
  /** target + nats-server + redis-server: all the work a decision costs, wherever it was moved. */
  readonly total: number;
  /** The load driver's own CPU per decision, shown for reference and never in the total. */
  readonly driver?: number;
}

export interface CpuAccounting {
  readonly cpu_ms_per_decision: CpuPerDecision;
  readonly cpu_window: {
    /** Seconds since the load started, of the two samples that bound the window. */
    readonly from_s: number;
    readonly to_s: number;
    readonly decided: number;
    readonly target_processes: readonly string[];
    /** CPU seconds of every process in the window. */
    readonly cpu_seconds: Readonly<Record<string, number>>;
  };
}

/**
 * CPU per decision: CPU seconds in the measured window × 1000 ÷ decisions in the same window.
 * Undefined when the window is empty or nothing was decided in it (e.g. the k6 path, whose decisions
 * the driver does not see).
 */
export function cpuPerDecision(timeline: readonly TimelinePoint[], warmupSec: number, loadEndSec?: number): CpuAccounting | undefined {
  const w = cpuWindow(timeline, warmupSec, loadEndSec);
  if (w === undefined || w.decided <= 0) return undefined;
  const labels = [...new Set(timeline.flatMap((p) => Object.keys(p.processes)))];
  const cpu: Record<string, number> = {};
  for (const label of labels) {
    const s = cpuSecondsIn(timeline, label, w);
    if (s !== undefined) cpu[label] = round2(s);
  }
  const targets = labels
    .filter((l) => !NOT_TARGET.has(l) && cpu[l] !== undefined)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (targets.length === 0 && cpu['nats-server'] === undefined) return undefined;
  const perDecision = (seconds: number): number => Math.round(((seconds * 1000) / w.decided) * 10_000) / 10_000;
  const targetS = targets.reduce((n, l) => n + cpu[l]!, 0);
  const nats = cpu['nats-server'];
  const redis = cpu['redis-server'];
  const driver = cpu.driver;
  return {
    cpu_ms_per_decision: {
      target: perDecision(targetS),
      ...(nats === undefined ? {} : { 'nats-server': perDecision(nats) }),
      ...(redis === undefined ? {} : { 'redis-server': perDecision(redis) }),
      total: perDecision(targetS + (nats ?? 0) + (redis ?? 0)),
      ...(driver === undefined ? {} : { driver: perDecision(driver) }),
    },
    cpu_window: { from_s: w.from.t, to_s: w.to.t, decided: w.decided, target_processes: targets, cpu_seconds: cpu },
  };
}

const round2 = (v: number): number => Math.round(v * 100) / 100;

/**
 * Per process: average CPU over the load, CPU seconds in the measured window (cpuWindow), and memory growth after warm-up (median of the first
 * samples after warm-up against the median of the last ones, so that one GC does not decide it).
 */
export function summariseResources(timeline: readonly TimelinePoint[], warmupSec: number, loadEndSec?: number): Record<string, ResourceSummary> {
  const labels = new Set(timeline.flatMap((p) => Object.keys(p.processes)));
  const out: Record<string, ResourceSummary> = {};
  const w = cpuWindow(timeline, warmupSec, loadEndSec);
  for (const label of labels) {
    const pts = timeline.filter((p) => p.processes[label] !== undefined);
    const after = pts.filter((p) => p.t >= warmupSec);
    if (after.length === 0) continue;
    const window = Math.max(1, Math.min(10, Math.floor(after.length / 5)));
    const head = after.slice(0, window).map((p) => p.processes[label]!);
    const tail = after.slice(-window).map((p) => p.processes[label]!);
    const rssA = median(head.map((s) => s.rss_mb));
    const rssB = median(tail.map((s) => s.rss_mb));
    const heapHead = head.map((s) => s.heap_mb).filter((v): v is number => v !== undefined);
    const heapTail = tail.map((s) => s.heap_mb).filter((v): v is number => v !== undefined);
    const tenth = Math.max(window, Math.floor(after.length / 10));
    const floorOf = (xs: readonly TimelinePoint[]): number | undefined => {
      const heaps = xs.map((p) => p.processes[label]!.heap_mb).filter((v): v is number => v !== undefined);
      return heaps.length === 0 ? undefined : Math.min(...heaps);
    };
    const floorA = floorOf(after.slice(0, tenth));
    const floorB = floorOf(after.slice(-tenth));
    const lags = after.map((p) => p.processes[label]!.eventloop_p99_ms).filter((v): v is number => v !== undefined);
    const handles = tail.map((s) => s.handles).filter((v): v is number => v !== undefined);
    const cpuSeconds = w === undefined ? undefined : cpuSecondsIn(timeline, label, w);
    out[label] = {
      cpu_avg_pct: Math.round(after.reduce((n, p) => n + p.processes[label]!.cpu_pct, 0) / after.length),
      ...(cpuSeconds === undefined ? {} : { cpu_seconds: round2(cpuSeconds) }),
      rss_after_warmup_mb: rssA,
      rss_end_mb: rssB,
      rss_growth_pct: growth(rssA, rssB),
      ...(heapHead.length > 0 && heapTail.length > 0
        ? { heap_after_warmup_mb: median(heapHead), heap_end_mb: median(heapTail), heap_growth_pct: growth(median(heapHead), median(heapTail)) }
        : {}),
      ...(floorA !== undefined && floorB !== undefined
        ? { heap_floor_after_warmup_mb: floorA, heap_floor_end_mb: floorB, heap_floor_growth_pct: growth(floorA, floorB) }
        : {}),
      ...(lags.length > 0 ? { eventloop_p99_max_ms: Math.max(...lags) } : {}),
      ...(handles.length > 0 ? { handles_end: handles[handles.length - 1]! } : {}),
    };
  }
  return out;
}

/**
 * The machine's CPU over the load (after warm-up), in percent of one core: all of it, ours (the
 * sampled processes: servers, target, driver) and the rest, i.e. other users of the machine.
 */
export function summariseMachine(timeline: readonly TimelinePoint[], warmupSec: number): { busy_avg_pct: number; ours_avg_pct: number; others_avg_pct: number; cores: number } {
  const after = timeline.filter((p) => p.t >= warmupSec && p.machine_cpu_pct > 0);
  const avg = (f: (p: TimelinePoint) => number): number => (after.length === 0 ? 0 : Math.round(after.reduce((n, p) => n + f(p), 0) / after.length));
  const ours = (p: TimelinePoint): number => Object.values(p.processes).reduce((n, s) => n + s.cpu_pct, 0);
  return {
    busy_avg_pct: avg((p) => p.machine_cpu_pct),
    ours_avg_pct: avg(ours),
    others_avg_pct: Math.max(0, avg((p) => p.machine_cpu_pct - ours(p))),
    cores: availableParallelism(),
  };
}

/** Reasons the run failed its correctness bar (empty = ok). Timings are never a failure here. */
export function problemsOf(r: NodeRunResult): string[] {
  const t = r.totals;
  const problems: string[] = [];
  if (t.lost > 0) problems.push(`${t.lost} correlation(s) lost (no decision within the grace period)`);
  if (t.duplicates > 0) problems.push(`${t.duplicates} duplicate decision(s)`);
  if (t.mismatches > 0) problems.push(`${t.mismatches} decision(s) differ from the seed rules`);
  if (t.early > 0) problems.push(`${t.early} decision(s) before their required signals were published`);
  if (t.publish_errors > 0) problems.push(`${t.publish_errors} publish error(s)`);
  if (t.unfinished > 0) problems.push(`${t.unfinished} correlation(s) not fully published when the run ended`);
  if (t.started === 0) problems.push('no correlation was started');
  for (const f of r.target_failures) problems.push(`target: ${f.split('\n')[0]}`);
  return problems;
}

export function redactOptions(o: LoadOptions): Record<string, unknown> {
  return {
    ...o,
    natsUrl: o.natsUrl === undefined ? undefined : redactUrl(o.natsUrl),
    redisUrl: o.redisUrl === undefined ? undefined : redactUrl(o.redisUrl),
    natsWsUrl: o.natsWsUrl === undefined ? undefined : redactUrl(o.natsWsUrl),
  };
}

export function defaultResultPath(resultsDir: string, scenario: string, startedAt: Date): string {
  const stamp = startedAt.toISOString().replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
  return join(resultsDir, `${scenario}-${stamp}.json`);
}

export function writeResult(path: string, result: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
}

const f = (v: number, digits = 2): string => v.toFixed(digits);
const lat = (s: LatencySummary): string =>
  `p50 ${f(s.p50)}  p95 ${f(s.p95)}  p99 ${f(s.p99)}  p99.9 ${f(s.p999)}  max ${f(s.max)}  (n=${s.count})`;

export function formatTable(
  o: LoadOptions,
  r: NodeRunResult,
  resources: Record<string, ResourceSummary>,
  resultPath: string,
  problems: readonly string[],
  machineCpu?: { busy_avg_pct: number; ours_avg_pct: number; others_avg_pct: number; cores: number },
  cpu?: CpuAccounting,
): string {
  const t = r.totals;
  const lines = [
    '',
    `${o.scenario} · target ${o.target} · ${o.agents === 'mix' ? '2-3' : o.agents} agents · ${o.publish} publish · decisions via ${o.decisions} · run ${r.runId} (seed ${r.seed})`,
    `  throughput      offered ${f(r.throughput.offered_per_sec, 1)}/s   decided ${f(r.throughput.decided_per_sec, 1)}/s (after warm-up)   load ${f(r.loadSeconds, 1)} s`,
    `  latency ms      ${lat(r.latency_ms)}`,
    `                  last required signal sent → decision received, after warm-up`,
    `  from intended   ${lat(r.latency_from_intended_ms)}`,
    `  schedule lag    p99 ${f(r.schedule_lag_ms.p99)}  max ${f(r.schedule_lag_ms.max)} ms (driver late against its schedule)`,
  ];
  for (const [phase, s] of Object.entries(r.phases)) lines.push(`  phase ${phase.padEnd(9)} ${lat(s)}`);
  lines.push(
    `  correlations    started ${t.started}  published ${t.published}  decided ${t.decided}  lost ${t.lost}  duplicates ${t.duplicates}  mismatches ${t.mismatches + t.early}  publish errors ${t.publish_errors}`,
  );
  if (t.foreign > 0 || t.invalid > 0) lines.push(`  ignored         ${t.foreign} decisions of other runs, ${t.invalid} unreadable`);
  const res = Object.entries(resources)
    .map(
      ([k, v]) =>
        `${k} ${v.cpu_avg_pct}% ${f(v.rss_end_mb, 0)} MB${v.rss_growth_pct !== 0 ? ` (${v.rss_growth_pct > 0 ? '+' : ''}${v.rss_growth_pct}%)` : ''}` +
        (v.heap_floor_growth_pct === undefined || o.scenario !== 'soak' ? '' : ` heap floor ${f(v.heap_floor_end_mb ?? 0, 0)} MB (${v.heap_floor_growth_pct > 0 ? '+' : ''}${v.heap_floor_growth_pct}%)`),
    )
    .join(' · ');
  if (res !== '') lines.push(`  processes       ${res}`);
  if (cpu !== undefined) lines.push(`  cpu per decision  ${formatCpuPerDecision(cpu)}`);
  if (machineCpu !== undefined) {
    lines.push(
      `  machine cpu     ${machineCpu.busy_avg_pct}% of ${machineCpu.cores * 100}% busy: ${machineCpu.ours_avg_pct}% this run, ${machineCpu.others_avg_pct}% other users`,
    );
  }
  for (const a of r.actions) lines.push(`  t=${a.t}s ${a.action}: ${a.outcome}`);
  lines.push(problems.length === 0 ? '  verdict         OK: 0 lost, 0 duplicates, 0 mismatches' : `  verdict         FAILED: ${problems.join('; ')}`);
  lines.push(`  result          ${relative(process.cwd(), resultPath) || resultPath}`, '');
  return lines.join('\n');
}

/** "total 1.021 ms = target (baseline) 0.412 + nats-server 0.380 + redis-server 0.229 · driver 0.301, not in the total · t=3.0–10.0 s, 3500 decisions" */
export function formatCpuPerDecision(cpu: CpuAccounting): string {
  const c = cpu.cpu_ms_per_decision;
  const w = cpu.cpu_window;
  const ms = (v: number): string => v.toFixed(3);
  const parts = [`target (${w.target_processes.join(' + ') || 'none sampled'}) ${ms(c.target)}`];
  if (c['nats-server'] !== undefined) parts.push(`nats-server ${ms(c['nats-server'])}`);
  if (c['redis-server'] !== undefined) parts.push(`redis-server ${ms(c['redis-server'])}`);
  return (
    `total ${ms(c.total)} ms = ${parts.join(' + ')}` +
    (c.driver === undefined ? '' : ` · driver ${ms(c.driver)}, not in the total`) +
    ` · t=${w.from_s.toFixed(1)}–${w.to_s.toFixed(1)} s, ${w.decided} decisions`
  );
}

export function k6Version(bin: string): string | undefined {
  try {
    return execFileSync(bin, ['version'], { encoding: 'utf8', timeout: 10_000 }).trim().split('\n')[0];
  } catch {
    return undefined;
  }
}
