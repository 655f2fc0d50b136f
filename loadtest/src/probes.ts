import { readFileSync } from 'node:fs';

/** A process whose resources are sampled during a run. */
export interface ProcessRef {
  readonly label: string;
  readonly pid: number | undefined;
  /** Prometheus endpoint with prom-client's default Node metrics, when the process has one. */
  readonly metricsUrl?: string;
}

export interface ProcessSample {
  readonly rss_mb: number;
  /** Share of one core since the previous sample, in percent (200 = two cores). */
  readonly cpu_pct: number;
  /**
   * CPU time the process has used since it started (user + system, all its threads), in seconds,
   * from /proc/<pid>/stat (resolution 1/CLK_TCK = 10 ms). The difference between two samples is
   * the exact CPU used between them, whatever the sampling interval: what CPU per decision uses.
   */
  readonly cpu_s: number;
  readonly heap_mb?: number;
  readonly eventloop_p99_ms?: number;
  readonly handles?: number;
}

const CLK_TCK = 100;
const PAGE = 4096;

function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

function rssBytes(pid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE;
  } catch {
    return undefined;
  }
}

/** Busy CPU ticks of the whole machine (all cores) since boot, from /proc/stat. */
function machineBusyTicks(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: busy = all − idle − iowait
    return (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0);
  } catch {
    return undefined;
  }
}

/** Reads a few gauges from Prometheus text (prom-client's default metric names). */
export function readNodeMetrics(text: string): { heap_mb?: number; eventloop_p99_ms?: number; handles?: number } {
  const value = (name: string): number | undefined => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)`, 'm').exec(text);
    return m === null ? undefined : Number(m[1]);
  };
  const heap = value('nodejs_heap_size_used_bytes');
  const lag = value('nodejs_eventloop_lag_p99_seconds');
  const handles = value('nodejs_active_handles_total');
  return {
    ...(heap === undefined ? {} : { heap_mb: Math.round((heap / 1048576) * 10) / 10 }),
    ...(lag === undefined ? {} : { eventloop_p99_ms: Math.round(lag * 1e6) / 1e3 }),
    ...(handles === undefined ? {} : { handles }),
  };
}

/**
 * Samples CPU and RSS of processes from /proc (Linux), and Node's heap, event-loop delay and
 * handles from their metrics endpoints (scraped in the background; the last scrape is reported).
 */
export class ProcessSampler {
  private readonly last = new Map<number, { ticks: number; atMs: number }>();
  private readonly scraped = new Map<string, ReturnType<typeof readNodeMetrics>>();
  private scraping = false;
  private lastMachine: { ticks: number; atMs: number } | undefined;

  constructor(private readonly refs: () => readonly ProcessRef[]) {}

  /**
   * CPU in use on the whole machine since the previous call, in percent of one core (200 = two
   * cores busy): with the processes' own figures it shows how much other users took.
   */
  machineCpu(nowMs: number): number {
    const ticks = machineBusyTicks();
    if (ticks === undefined) return 0;
    const prev = this.lastMachine;
    this.lastMachine = { ticks, atMs: nowMs };
    if (prev === undefined || nowMs <= prev.atMs) return 0;
    return Math.round(((ticks - prev.ticks) / CLK_TCK / ((nowMs - prev.atMs) / 1000)) * 100);
  }

  sample(nowMs: number): Record<string, ProcessSample> {
    const out: Record<string, ProcessSample> = {};
    for (const ref of this.refs()) {
      if (ref.pid === undefined) continue;
      const ticks = cpuTicks(ref.pid);
      const rss = rssBytes(ref.pid);
      if (ticks === undefined || rss === undefined) continue;
      const prev = this.last.get(ref.pid);
      this.last.set(ref.pid, { ticks, atMs: nowMs });
      const cpu = prev === undefined || nowMs <= prev.atMs ? 0 : ((ticks - prev.ticks) / CLK_TCK / ((nowMs - prev.atMs) / 1000)) * 100;
      out[ref.label] = {
        rss_mb: Math.round((rss / 1048576) * 10) / 10,
        cpu_pct: Math.round(cpu),
        cpu_s: ticks / CLK_TCK,
        ...(ref.metricsUrl === undefined ? {} : (this.scraped.get(ref.label) ?? {})),
      };
    }
    return out;
  }

  /** Refreshes the metrics of processes that have an endpoint; never throws. */
  async scrape(): Promise<void> {
    if (this.scraping) return;
    this.scraping = true;
    try {
      await Promise.all(
        this.refs()
          .filter((r) => r.metricsUrl !== undefined)
          .map(async (r) => {
            try {
              const res = await fetch(r.metricsUrl!, { signal: AbortSignal.timeout(2_000) });
              if (res.ok) this.scraped.set(r.label, readNodeMetrics(await res.text()));
              else await res.body?.cancel();
            } catch {
              // a process that is busy or gone: keep the previous figures
            }
          }),
      );
    } finally {
      this.scraping = false;
    }
  }
}
