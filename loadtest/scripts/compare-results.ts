/**
 * Prints driver result files side by side as a markdown table, with each run's decided/s, p99 and
 * CPU per decision as a ratio to the reference run: the first file whose target is not the echo
 * floor (the baseline when run through compare.sh, also with TARGETS="echo baseline worker"). The
 * echo (`--target echo`) is a reference row: the floor of driver + NATS + measuring.
 *   node --import tsx scripts/compare-results.ts results/a.json results/b.json
 * Older result files without CPU per decision show "–" in those columns.
 */
import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface Summary {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}
export interface ResultFile {
  readonly target: string;
  readonly command?: string;
  readonly ok: boolean;
  readonly machine?: { readonly loadavg_start?: readonly number[] };
  readonly machine_cpu?: { readonly busy_avg_pct: number; readonly ours_avg_pct: number; readonly others_avg_pct: number };
  readonly resources: Record<string, { readonly cpu_avg_pct: number; readonly rss_end_mb: number }>;
  /** Since CPU accounting (absent in older files). */
  readonly cpu_ms_per_decision?: {
    readonly target: number;
    readonly 'nats-server'?: number;
    readonly 'redis-server'?: number;
    readonly total: number;
  };
  readonly options: { readonly workers?: number; readonly coordinatorCmd?: string; readonly ladder?: readonly string[] };
  readonly result: {
    readonly throughput: { readonly offered_per_sec: number; readonly decided_per_sec: number };
    readonly latency_ms: Summary;
    readonly totals: Record<string, number>;
  };
}

const DASH = '–';
const ratio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || !(b > 0) ? DASH : `${(a / b).toFixed(2)}×`;
const ms = (v: number): string => v.toFixed(2);
const cpu = (r: ResultFile): string =>
  Object.entries(r.resources)
    .filter(([k]) => k !== 'driver' && k !== 'nats-server' && k !== 'redis-server')
    .map(([, v]) => `${v.cpu_avg_pct} %`)
    .join(' + ');
const perDecision = (r: ResultFile): string => {
  const c = r.cpu_ms_per_decision;
  if (c === undefined) return DASH;
  const part = (v: number | undefined): string => (v === undefined ? DASH : v.toFixed(3));
  return `${c.total.toFixed(3)} (${part(c.target)} + ${part(c['nats-server'])} + ${part(c['redis-server'])})`;
};
const ladderName = (r: ResultFile): string => `ladder: ${['seed', ...(r.options.ladder ?? [])].join(' + ')}`;
const nameOf = (r: ResultFile): string =>
  (r.target === 'worker' && (r.options.workers ?? 1) > 1
    ? `worker ×${r.options.workers}`
    : r.target === 'echo'
      ? 'echo (floor)'
      : r.target === 'ladder'
        ? ladderName(r)
        : r.target) +
  (r.options.coordinatorCmd === undefined ? '' : ' + coordinator process');

/** The markdown table and the line naming the reference run. */
export function compareTable(runs: ReadonlyArray<{ readonly file: string; readonly r: ResultFile }>): string {
  const ref = (runs.find(({ r }) => r.target !== 'echo') ?? runs[0]!).r;
  const base = ref.result;
  const lines = [
    '| target | offered/s | decided/s | ×ref | p50 ms | p95 ms | p99 ms | p99 ×ref | max ms | lost | dup | mismatch | target CPU | nats CPU | CPU ms/decision (target + nats + redis) | CPU/decision ×ref | machine busy / other users |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | --- |',
  ];
  for (const { r } of runs) {
    const x = r.result;
    const t = x.totals;
    const machine = r.machine_cpu === undefined ? DASH : `${r.machine_cpu.busy_avg_pct} % / ${r.machine_cpu.others_avg_pct} %`;
    lines.push(
      `| ${nameOf(r)} | ${x.throughput.offered_per_sec.toFixed(0)} | ${x.throughput.decided_per_sec.toFixed(0)} | ${ratio(x.throughput.decided_per_sec, base.throughput.decided_per_sec)} | ` +
        `${ms(x.latency_ms.p50)} | ${ms(x.latency_ms.p95)} | ${ms(x.latency_ms.p99)} | ${ratio(x.latency_ms.p99, base.latency_ms.p99)} | ${ms(x.latency_ms.max)} | ` +
        `${t.lost} | ${t.duplicates} | ${(t.mismatches ?? 0) + (t.early ?? 0)} | ${cpu(r)} | ${r.resources['nats-server']?.cpu_avg_pct ?? DASH} % | ` +
        `${perDecision(r)} | ${ratio(r.cpu_ms_per_decision?.total, ref.cpu_ms_per_decision?.total)} | ${machine} |`,
    );
  }
  return (
    `${lines.join('\n')}\n\n` +
    `×ref: ratio to ${nameOf(ref)}, the first run that is not the echo floor. CPU ms/decision: CPU seconds of the target's processes, ` +
    `nats-server and redis-server from the end of warm-up to the end of the load × 1000 ÷ decisions in that window (the driver not counted). ` +
    `Machine busy / other users: % of one core; compare tables only when other users took about the same.\n`
  );
}

function main(argv: readonly string[]): number {
  const files = argv.filter((f) => existsSync(f));
  if (files.length === 0) {
    process.stderr.write('usage: compare-results.ts RESULT.json…\n');
    return 2;
  }
  const runs = files.map((f) => ({ file: f, r: JSON.parse(readFileSync(f, 'utf8')) as ResultFile }));
  process.stdout.write(`\n${compareTable(runs)}\n`);
  for (const { file, r } of runs) process.stdout.write(`${r.ok ? 'ok    ' : 'FAILED'} ${r.target}: ${file}\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
