/**
 * Market open: RATE correlations/s for PRE_SEC, a ramp to RATE × RAMP_FACTOR within RAMP_SEC
 * (ramping-arrival-rate), then POST_SEC at the peak. The load driver that starts k6 adds one
 * worker mid-ramp, as an autoscaler would; latency is tagged before / ramp / after.
 *
 *   K6_NO_USAGE_REPORT=true NATS_WS_URL=ws://127.0.0.1:<port> RATE=200 k6 run loadtest/k6/market-open.ts
 */
import type { Options } from 'k6/options';
import { collectDecisions, publishCorrelation, readConfig, summarise, SUMMARY_TREND_STATS, thresholds, PUBLISH_START_SEC, type SummaryData } from './common.ts';

const base = readConfig({ rate: 200, durationSec: 0, warmupSec: 5 });
const total = base.preSec + base.rampSec + base.postSec;
const cfg = { ...base, durationSec: total };
const PHASES = ['warmup', 'before', 'ramp', 'after'] as const;
const phaseOf = (t: number): string =>
  t < cfg.warmupSec ? 'warmup' : t < cfg.preSec ? 'before' : t < cfg.preSec + cfg.rampSec ? 'ramp' : 'after';
const peak = Math.ceil(cfg.rate * cfg.rampFactor);

export const options: Options = {
  summaryTrendStats: SUMMARY_TREND_STATS,
  thresholds: thresholds(cfg, PHASES),
  scenarios: {
    decisions: {
      executor: 'per-vu-iterations',
      vus: 1,
      iterations: 1,
      maxDuration: `${PUBLISH_START_SEC + total + cfg.graceSec + 30}s`,
      exec: 'collect',
    },
    signals: {
      executor: 'ramping-arrival-rate',
      startRate: cfg.rate,
      timeUnit: '1s',
      preAllocatedVUs: Math.max(10, Math.ceil(cfg.rate / 20)),
      maxVUs: Math.max(50, Math.ceil(peak / 2)),
      stages: [
        { target: cfg.rate, duration: `${cfg.preSec}s` },
        { target: peak, duration: `${cfg.rampSec}s` },
        { target: peak, duration: `${cfg.postSec}s` },
      ],
      startTime: `${PUBLISH_START_SEC}s`,
      exec: 'publish',
    },
  },
};

export function collect(): void {
  collectDecisions(cfg, total, phaseOf);
}

export function publish(): void {
  publishCorrelation(cfg);
}

export function handleSummary(data: SummaryData): Record<string, string> {
  return summarise(cfg, 'market-open', data, PHASES);
}
