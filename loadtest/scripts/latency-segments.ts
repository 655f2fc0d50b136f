/**
 * Where a decision's latency goes, segment by segment, from the driver's `--latency-log` and a socket
 * trace of the process that decided (scripts/socket-trace.mjs), both on the machine's monotonic clock:
 *   bus in    the last required signal's send (driver) → the read that brought it to the process
 *   js in     that read → the process's write to Redis naming the correlation (its store and claim)
 *   redis     that write → the next read from Redis (its answer)
 *   js out    that answer → the write to NATS naming the correlation (the decision's publish)
 *   bus out   that write → the decision's arrival at the driver (stored, republished, delivered)
 * A decision whose path lacks one of these (decided from memory, the trace full) is left out; the
 * count says how many were matched. With more than one worker only the traced one's decisions match.
 *   node --import tsx scripts/latency-segments.ts LATENCY_LOG SOCKET_TRACE [SLOW_MS]
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { LatencyRecord } from '../src/latency-log.js';

export type TraceRecord = readonly [monoMs: number, kind: 'nw' | 'nr' | 'rw' | 'rr', corrIds: readonly string[]];

export const SEGMENTS = ['bus in', 'js in', 'redis', 'js out', 'bus out'] as const;
export type Segment = (typeof SEGMENTS)[number];

export interface SegmentReport {
  readonly decisions: number;
  readonly matched: number;
  readonly slowMs: number;
  /** Per segment (and the whole latency): p50, p90, p99 and mean, ms. */
  readonly rows: ReadonlyArray<{ name: Segment | 'latency'; p50: number; p90: number; p99: number; mean: number }>;
  /** Decisions slower than slowMs: how many, and the mean of each segment among them. */
  readonly slow: { count: number; mean: Record<Segment, number>; largest: Record<Segment, number> };
}

export function latencySegments(log: readonly LatencyRecord[], trace: readonly TraceRecord[], slowMs = 3): SegmentReport {
  const events = [...trace].sort((a, b) => a[0] - b[0]);
  const byCorr = new Map<string, number[]>();
  const redisReads: number[] = [];
  events.forEach(([, kind, ids], i) => {
    if (kind === 'rr') redisReads.push(i);
    for (const id of ids) {
      const list = byCorr.get(id);
      if (list === undefined) byCorr.set(id, [i]);
      else list.push(i);
    }
  });
  const paths: Array<Record<Segment | 'latency', number>> = [];
  for (const r of log) {
    const idx = byCorr.get(r.corr_id);
    if (idx === undefined) continue;
    const publish = idx.find((i) => events[i]![1] === 'nw');
    if (publish === undefined) continue;
    const reads = idx.filter((i) => events[i]![1] === 'nr' && i < publish);
    const read = reads[reads.length - 1];
    if (read === undefined) continue;
    const store = idx.find((i) => events[i]![1] === 'rw' && i > read && i < publish);
    if (store === undefined) continue;
    const answer = redisReads[lowerBound(redisReads, store + 1)];
    if (answer === undefined || answer > publish) continue;
    const t = (i: number): number => events[i]![0];
    paths.push({
      latency: r.latency_ms,
      'bus in': t(read) - r.sent_mono_ms,
      'js in': t(store) - t(read),
      redis: t(answer) - t(store),
      'js out': t(publish) - t(answer),
      'bus out': r.sent_mono_ms + r.latency_ms - t(publish),
    });
  }
  const rows = (['latency', ...SEGMENTS] as const).map((name) => {
    const v = paths.map((p) => p[name]).sort((a, b) => a - b);
    const q = (p: number): number => (v.length === 0 ? Number.NaN : v[Math.min(v.length - 1, Math.floor(p * v.length))]!);
    return { name, p50: q(0.5), p90: q(0.9), p99: q(0.99), mean: v.length === 0 ? Number.NaN : v.reduce((a, b) => a + b, 0) / v.length };
  });
  const slowPaths = paths.filter((p) => p.latency > slowMs);
  const mean = {} as Record<Segment, number>;
  const largest = {} as Record<Segment, number>;
  for (const s of SEGMENTS) {
    mean[s] = slowPaths.length === 0 ? 0 : slowPaths.reduce((a, p) => a + p[s], 0) / slowPaths.length;
    largest[s] = 0;
  }
  for (const p of slowPaths) largest[SEGMENTS.reduce((a, b) => (p[a] >= p[b] ? a : b))] += 1;
  return { decisions: log.length, matched: paths.length, slowMs, rows, slow: { count: slowPaths.length, mean, largest } };
}

/** The first index in the sorted `sorted` whose value is ≥ v. */
function lowerBound(sorted: readonly number[], v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function segmentTable(r: SegmentReport): string {
  const f = (v: number): string => v.toFixed(3);
  const lines = [
    `${r.matched} of ${r.decisions} decisions matched to the trace`,
    '',
    '| segment | p50 ms | p90 ms | p99 ms | mean ms |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...r.rows.map((row) => `| ${row.name} | ${f(row.p50)} | ${f(row.p90)} | ${f(row.p99)} | ${f(row.mean)} |`),
    '',
    `slower than ${r.slowMs} ms: ${r.slow.count}; mean segments among them: ${SEGMENTS.map((s) => `${s} ${r.slow.mean[s].toFixed(2)}`).join(', ')}`,
    `largest segment among them: ${SEGMENTS.map((s) => `${s} ${r.slow.largest[s]}`).join(', ')}`,
  ];
  return lines.join('\n');
}

function main(argv: string[]): number {
  const [logFile, traceFile, slow] = argv;
  if (logFile === undefined || traceFile === undefined) {
    process.stderr.write('usage: node --import tsx scripts/latency-segments.ts LATENCY_LOG SOCKET_TRACE [SLOW_MS]\n');
    return 2;
  }
  const slowMs = slow === undefined ? 3 : Number(slow);
  if (!Number.isFinite(slowMs) || slowMs <= 0) {
    process.stderr.write(`SLOW_MS=${JSON.stringify(slow)} is not valid: expected a number of ms above 0\n`);
    return 2;
  }
  const log = readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as LatencyRecord);
  const trace = JSON.parse(readFileSync(traceFile, 'utf8')) as TraceRecord[];
  process.stdout.write(`${segmentTable(latencySegments(log, trace, slowMs))}\n`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = main(process.argv.slice(2));
