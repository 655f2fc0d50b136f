/**
 * The capacity table (docs/capacity.md) from driver result files: for each worker count, CPU ms per
 * decision of the workers, nats-server and redis-server at the fixed rate, and the check of the
 * model on this machine — the throughput those costs predict for its cores (minus what other users
 * took) against the throughput the max run of the same worker count measured.
 *   node --import tsx scripts/capacity-results.ts results/capacity-*.json
 */
import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface CapacityRun {
  readonly scenario: string;
  readonly ok: boolean;
  readonly options: { readonly workers?: number };
  readonly machine_cpu?: { readonly busy_avg_pct: number; readonly others_avg_pct: number; readonly cores: number };
  readonly cpu_ms_per_decision?: { readonly target: number; readonly 'nats-server'?: number; readonly 'redis-server'?: number; readonly total: number; readonly driver?: number };
  readonly result: { readonly throughput: { readonly offered_per_sec: number; readonly decided_per_sec: number }; readonly totals: Record<string, number> };
}

export interface CapacityRow {
  readonly workers: number;
  readonly rate: number;
  readonly workerMs: number;
  readonly natsMs: number;
  readonly redisMs: number;
  readonly totalMs: number;
  readonly driverMs: number;
  readonly othersPct: number;
  /** Decisions/s the fixed-rate costs predict on this machine: its free CPU ÷ (total + driver). */
  readonly predictedMax: number;
  readonly measuredMax: number | undefined;
  readonly maxOthersPct: number | undefined;
  /** CPU ms per decision at the max run (workers, nats-server, redis-server): batches are fuller there. */
  readonly atMax: { readonly workerMs: number; readonly natsMs: number; readonly redisMs: number; readonly totalMs: number } | undefined;
  readonly clean: boolean;
}

/** One row per worker count that has a steady run; the max run of the same count checks the prediction. */
export function capacityRows(runs: readonly CapacityRun[]): CapacityRow[] {
  const workers = (r: CapacityRun): number => r.options.workers ?? 1;
  const rows: CapacityRow[] = [];
  for (const r of runs.filter((x) => x.scenario === 'steady' && x.cpu_ms_per_decision !== undefined)) {
    const c = r.cpu_ms_per_decision!;
    const cores = r.machine_cpu?.cores ?? 2;
    const others = r.machine_cpu?.others_avg_pct ?? 0;
    const driver = c.driver ?? 0;
    const max = runs.find((x) => x.scenario === 'max' && workers(x) === workers(r));
    const t = r.result.totals;
    rows.push({
      workers: workers(r),
      rate: r.result.throughput.offered_per_sec,
      workerMs: c.target,
      natsMs: c['nats-server'] ?? 0,
      redisMs: c['redis-server'] ?? 0,
      totalMs: c.total,
      driverMs: driver,
      othersPct: others,
      predictedMax: Math.round(((cores * 100 - others) * 10) / (c.total + driver)),
      measuredMax: max?.result.throughput.decided_per_sec,
      maxOthersPct: max?.machine_cpu?.others_avg_pct,
      atMax:
        max?.cpu_ms_per_decision === undefined
          ? undefined
          : {
              workerMs: max.cpu_ms_per_decision.target,
              natsMs: max.cpu_ms_per_decision['nats-server'] ?? 0,
              redisMs: max.cpu_ms_per_decision['redis-server'] ?? 0,
              totalMs: max.cpu_ms_per_decision.total,
            },
      clean: r.ok && (max?.ok ?? true) && (t.lost ?? 0) === 0 && (t.duplicates ?? 0) === 0,
    });
  }
  return rows.sort((a, b) => a.workers - b.workers);
}

export function capacityTable(rows: readonly CapacityRow[]): string {
  const f = (v: number): string => v.toFixed(3);
  const lines = [
    '| workers | rate/s | worker ms | nats-server ms | redis-server ms | total ms | driver ms | other users | predicted max/s | measured max/s (other users) | at max: worker + nats + redis = total ms | 0 lost, 0 dup |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
  ];
  for (const r of rows) {
    const measured = r.measuredMax === undefined ? '–' : `${Math.round(r.measuredMax)} (${r.maxOthersPct ?? '–'} %)`;
    const atMax = r.atMax === undefined ? '–' : `${f(r.atMax.workerMs)} + ${f(r.atMax.natsMs)} + ${f(r.atMax.redisMs)} = ${f(r.atMax.totalMs)}`;
    lines.push(
      `| ${r.workers} | ${Math.round(r.rate)} | ${f(r.workerMs)} | ${f(r.natsMs)} | ${f(r.redisMs)} | ${f(r.totalMs)} | ${f(r.driverMs)} | ${r.othersPct} % | ${r.predictedMax} | ${measured} | ${atMax} | ${r.clean ? 'yes' : 'NO'} |`,
    );
  }
  return `${lines.join('\n')}\n\nms: CPU milliseconds per decision (all worker processes together for "worker"), from the end of warm-up to the end of the load. Predicted max: the machine's cores minus what other users took, ÷ (total + driver) per decision.\n`;
}

function main(argv: readonly string[]): number {
  const files = argv.filter((f) => existsSync(f));
  if (files.length === 0) {
    process.stderr.write('usage: capacity-results.ts RESULT.json…\n');
    return 2;
  }
  const runs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as CapacityRun);
  const rows = capacityRows(runs);
  process.stdout.write(`\n${capacityTable(rows)}\n`);
  return rows.every((r) => r.clean) ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
