/**
 * Soak: a constant arrival rate for a long time (default 500 correlations/s for 30 minutes).
 * Memory and CPU of the processes are sampled by the load driver that starts k6; here: latency by
 * window (early / middle / late after warm-up) for drift, error rate and correctness thresholds.
 *
 *   K6_NO_USAGE_REPORT=true NATS_WS_URL=ws://127.0.0.1:<port> RATE=500 DURATION_SEC=1800 k6 run loadtest/k6/soak.ts
 */
import type { Options } from 'k6/options';
import { collectDecisions, publishCorrelation, readConfig, summarise, SUMMARY_TREND_STATS, thresholds, PUBLISH_START_SEC, type SummaryData } from './common.ts';

const cfg = readConfig({ rate: 500, durationSec: 1800, warmupSec: 120 });
const PHASES = ['warmup', 'early', 'middle', 'late'] as const;
const span = cfg.durationSec - cfg.warmupSec;
const phaseOf = (t: number): string =>
  t < cfg.warmupSec ? 'warmup' : t < cfg.warmupSec + span / 10 ? 'early' : t >= cfg.durationSec - span / 10 ? 'late' : 'middle';

export const options: Options = {
  summaryTrendStats: SUMMARY_TREND_STATS,
  thresholds: thresholds(cfg, PHASES),
  scenarios: {
    decisions: {
      executor: 'per-vu-iterations',
      vus: 1,
      iterations: 1,
      maxDuration: `${PUBLISH_START_SEC + cfg.durationSec + cfg.graceSec + 30}s`,
      exec: 'collect',
    },
    signals: {
      executor: 'constant-arrival-rate',
      rate: cfg.rate,
      timeUnit: '1s',
      duration: `${cfg.durationSec}s`,
      preAllocatedVUs: Math.max(10, Math.ceil(cfg.rate / 20)),
      maxVUs: Math.max(50, Math.ceil(cfg.rate / 2)),
      startTime: `${PUBLISH_START_SEC}s`,
      exec: 'publish',
    },
  },
};

export function collect(): void {
  collectDecisions(cfg, cfg.durationSec, phaseOf);
}

export function publish(): void {
  publishCorrelation(cfg);
}

export function handleSummary(data: SummaryData): Record<string, string> {
  return summarise(cfg, 'soak', data, PHASES);
}
