/**
 * Prints driver result files side by side as a markdown table, with each target's decided/s and p99
 * as a ratio to the first file's (the baseline when run through compare.sh).
 *   node --import tsx scripts/compare-results.ts results/a.json results/b.json
 */
import { existsSync, readFileSync } from 'node:fs';

interface Summary {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}
interface ResultFile {
  readonly target: string;
  readonly command: string;
  readonly ok: boolean;
  readonly machine: { readonly loadavg_start: readonly number[] };
  readonly machine_cpu: { readonly busy_avg_pct: number; readonly ours_avg_pct: number; readonly others_avg_pct: number };
  readonly resources: Record<string, { readonly cpu_avg_pct: number; readonly rss_end_mb: number }>;
  readonly options: { readonly workers: number; readonly coordinatorCmd?: string };
  readonly result: {
    readonly throughput: { readonly offered_per_sec: number; readonly decided_per_sec: number };
    readonly latency_ms: Summary;
    readonly totals: Record<string, number>;
  };
}

const files = process.argv.slice(2).filter((f) => existsSync(f));
if (files.length === 0) {
  process.stderr.write('usage: compare-results.ts RESULT.json…\n');
  process.exit(2);
}
const runs = files.map((f) => ({ file: f, r: JSON.parse(readFileSync(f, 'utf8')) as ResultFile }));
const base = runs[0]!.r.result;
const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}×` : '–');
const ms = (v: number): string => v.toFixed(2);
const cpu = (r: ResultFile): string =>
  Object.entries(r.resources)
    .filter(([k]) => k !== 'driver' && k !== 'nats-server' && k !== 'redis-server')
    .map(([, v]) => `${v.cpu_avg_pct} %`)
    .join(' + ');
const lines = [
  '| target | offered/s | decided/s | ×first | p50 ms | p95 ms | p99 ms | p99 ×first | max ms | lost | dup | mismatch | target CPU | nats CPU | machine busy / other users |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |',
];
for (const { r } of runs) {
  const x = r.result;
  const t = x.totals;
  const name =
    (r.target === 'worker' && r.options.workers > 1 ? `worker ×${r.options.workers}` : r.target) +
    (r.options.coordinatorCmd === undefined ? '' : ' + coordinator process');
  lines.push(
    `| ${name} | ${x.throughput.offered_per_sec.toFixed(0)} | ${x.throughput.decided_per_sec.toFixed(0)} | ${ratio(x.throughput.decided_per_sec, base.throughput.decided_per_sec)} | ` +
      `${ms(x.latency_ms.p50)} | ${ms(x.latency_ms.p95)} | ${ms(x.latency_ms.p99)} | ${ratio(x.latency_ms.p99, base.latency_ms.p99)} | ${ms(x.latency_ms.max)} | ` +
      `${t.lost} | ${t.duplicates} | ${(t.mismatches ?? 0) + (t.early ?? 0)} | ${cpu(r)} | ${r.resources['nats-server']?.cpu_avg_pct ?? '–'} % | ` +
      `${r.machine_cpu.busy_avg_pct} % / ${r.machine_cpu.others_avg_pct} % |`,
  );
}
process.stdout.write(`\n${lines.join('\n')}\n\n`);
for (const { file, r } of runs) process.stdout.write(`${r.ok ? 'ok    ' : 'FAILED'} ${r.target}: ${file}\n`);
