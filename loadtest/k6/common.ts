/**
 * What the k6 scenarios share: configuration from the environment, metrics, one correlation per
 * iteration (publisher), one long-lived decision collector, and handleSummary.
 *
 * Design: an arrival-rate iteration is one correlation published the way a gateway fan-out would,
 * on its own WebSocket connection: CONNECT, the 2 or 3 agents' signals with HPUB (Nats-Msg-Id
 * `<corr_id>:<agent>`, reply inbox for the PubAck, jitter between agents), close. A k6 WebSocket
 * lives inside one iteration, so a connection cannot be shared across iterations.
 * A single collector VU subscribes to orchestrated.decision for the whole test. Publishers and the
 * collector share no memory: a corr_id carries the seed of its correlation and the intended send
 * time of its last required signal, so the collector rebuilds the expected decision (seed rules)
 * and the latency from the corr_id alone. k6 has millisecond clocks: latencies are whole ms.
 */
import { Counter, Rate, Trend } from 'k6/metrics';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'k6/timers';
import { checkDecision, seedDecision } from '../shared/seed-rules.ts';
import {
  DECISION_SUBJECT,
  decodeSeededCorrId,
  encodeSeededCorrId,
  planCorrelation,
  seededRandom,
  signalJson,
  signalSubject,
  type AgentMix,
} from '../shared/synthetic.ts';
import { utf8Decode } from './lib/nats-ws-protocol.ts';
import { openNats } from './nats.ts';

export interface K6Config {
  readonly wsUrl: string;
  readonly runId: string;
  readonly rate: number;
  readonly durationSec: number;
  readonly warmupSec: number;
  readonly preSec: number;
  readonly rampSec: number;
  readonly postSec: number;
  readonly rampFactor: number;
  readonly agents: AgentMix;
  readonly jitterMs: number;
  readonly graceSec: number;
  readonly summaryPath: string;
  readonly pubAckTimeoutMs: number;
  /** Optional latency threshold on p(99), ms (none by default: timings are reported, not asserted). */
  readonly p99Ms: number | undefined;
}

/** Publishers start this long after the collector, so that it is subscribed first. */
export const PUBLISH_START_SEC = 2;

function envNumber(name: string, fallback: number): number {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new Error(`${name}=${JSON.stringify(raw)} is not a number`);
  return v;
}

export function readConfig(defaults: { rate: number; durationSec: number; warmupSec: number }): K6Config {
  const agentsRaw = __ENV.AGENTS ?? '2';
  if (agentsRaw !== '2' && agentsRaw !== '3' && agentsRaw !== 'mix') throw new Error(`AGENTS=${agentsRaw}: expected 2, 3 or mix`);
  const p99 = __ENV.P99_MS;
  return {
    wsUrl: __ENV.NATS_WS_URL ?? 'ws://127.0.0.1:8080',
    runId: __ENV.RUN_ID ?? Math.floor(Math.random() * 0xffffffff).toString(16),
    rate: envNumber('RATE', defaults.rate),
    durationSec: envNumber('DURATION_SEC', defaults.durationSec),
    warmupSec: envNumber('WARMUP_SEC', defaults.warmupSec),
    preSec: envNumber('PRE_SEC', 20),
    rampSec: envNumber('RAMP_SEC', 60),
    postSec: envNumber('POST_SEC', 30),
    rampFactor: envNumber('RAMP_FACTOR', 10),
    agents: agentsRaw === 'mix' ? 'mix' : agentsRaw === '3' ? 3 : 2,
    jitterMs: envNumber('JITTER_MS', 2),
    graceSec: envNumber('GRACE_SEC', 10),
    summaryPath: __ENV.SUMMARY_PATH ?? 'results/k6-summary.json',
    pubAckTimeoutMs: envNumber('PUBACK_TIMEOUT_MS', 10_000),
    p99Ms: p99 === undefined || p99 === '' ? undefined : Number(p99),
  };
}

// Metrics (init context).
const correlationsPublished = new Counter('correlations_published');
/** Per signal: true when its PubAck did not say "stored" (error, no stream, timeout, connection lost). */
const publishErrors = new Rate('publish_errors');
const pubAckMs = new Trend('puback_ms', true);
/** Intended send of the last required signal → decision received, ms. */
const decisionLatency = new Trend('decision_latency', true);
const decisions = new Counter('decisions');
const duplicateDecisions = new Counter('duplicate_decisions');
const decisionMismatches = new Counter('decision_mismatches');
const foreignDecisions = new Counter('foreign_decisions');

const CORR_PREFIX = 'k6';

/** One arrival-rate iteration: one correlation. */
export function publishCorrelation(cfg: K6Config): void {
  const seed = Math.floor(Math.random() * 0x100000000) >>> 0;
  const plan = planCorrelation(seededRandom(seed), cfg.agents, cfg.jitterMs);
  let pending = plan.signals.length;
  let failed = 0;
  let finished = false;
  const expiry = setInterval(() => session.expirePubAcks(Date.now(), cfg.pubAckTimeoutMs), 250);
  // Connection that never becomes ready: every signal counts as a publish error.
  const connectTimer = setTimeout(() => {
    if (!finished && session.state !== 'connected') finish(plan.signals.length);
  }, cfg.pubAckTimeoutMs);
  const finish = (errors: number): void => {
    if (finished) return;
    finished = true;
    for (let i = 0; i < errors; i += 1) publishErrors.add(true);
    if (failed === 0 && errors === 0) correlationsPublished.add(1);
    // Pending timers keep a k6 iteration alive: clear them all.
    clearInterval(expiry);
    clearTimeout(connectTimer);
    session.close();
  };
  const session = openNats(cfg.wsUrl, {
    name: 'k6-publisher',
    onReady: (s) => {
      // The correlation starts when its connection is ready: connecting is k6's ws_connecting.
      const start = Date.now();
      const corrId = encodeSeededCorrId(CORR_PREFIX, cfg.runId, seed, start + plan.lastRequiredOffsetMs);
      for (const signal of plan.signals) {
        const send = (): void => {
          if (finished) return;
          const sentAt = Date.now();
          const body = signalJson(corrId, signal, plan.instrument, new Date(sentAt).toISOString());
          s.jetstreamPublish(signalSubject(signal.agent), body, { msgId: `${corrId}:${signal.agent}`, nowMs: sentAt }, (ack) => {
            publishErrors.add(!ack.ok);
            if (ack.ok) pubAckMs.add(Date.now() - sentAt);
            else failed += 1;
            pending -= 1;
            if (pending === 0) finish(0);
          });
        };
        if (signal.offsetMs < 1) send();
        else setTimeout(send, signal.offsetMs);
      }
    },
    onError: (e) => console.warn(`publisher: ${e.message}`),
    onClosed: () => {
      if (!finished) finish(pending);
    },
  });
}

/** Phase of a correlation by its intended last-signal time, for tagged latency (market open, soak). */
export type PhaseOf = (secondsSincePublishStart: number) => string;

/** The collector: one VU, one connection, subscribed for the whole test plus the grace period. */
export function collectDecisions(cfg: K6Config, totalPublishSec: number, phaseOf: PhaseOf): void {
  const seen: Record<string, true> = {};
  const publishStartMs = Date.now() + PUBLISH_START_SEC * 1000;
  let warned = 0;
  const session = openNats(cfg.wsUrl, {
    name: 'k6-decisions',
    onReady: (s) => {
      s.subscribe(DECISION_SUBJECT, (m) => {
        const now = Date.now();
        let d: { corr_id?: unknown };
        try {
          d = JSON.parse(utf8Decode(m.data)) as { corr_id?: unknown };
        } catch {
          foreignDecisions.add(1);
          return;
        }
        const corrId = typeof d.corr_id === 'string' ? d.corr_id : '';
        const id = decodeSeededCorrId(corrId, CORR_PREFIX, cfg.runId);
        if (id === undefined) {
          foreignDecisions.add(1);
          return;
        }
        if (seen[corrId] === true) {
          duplicateDecisions.add(1);
          return;
        }
        seen[corrId] = true;
        decisions.add(1);
        const phase = phaseOf((id.lastRequiredAtMs - publishStartMs) / 1000);
        decisionLatency.add(now - id.lastRequiredAtMs, { phase });
        const plan = planCorrelation(seededRandom(id.seed), cfg.agents, cfg.jitterMs);
        const mismatch = checkDecision(seedDecision(plan.momentum, plan.risk), d);
        if (mismatch !== undefined) {
          decisionMismatches.add(1);
          if (warned++ < 5) console.warn(`decision for ${corrId} differs from the seed rules: ${mismatch}`);
        }
      });
    },
    onError: (e) => console.error(`collector: ${e.message}`),
  });
  setTimeout(() => session.close(), (PUBLISH_START_SEC + totalPublishSec + cfg.graceSec) * 1000);
}

/** Thresholds every scenario has: error rate and correctness; latency only when P99_MS is set. */
export function thresholds(cfg: K6Config, phases: readonly string[]): Record<string, string[]> {
  const t: Record<string, string[]> = {
    publish_errors: ['rate<0.01'],
    decision_mismatches: ['count==0'],
    duplicate_decisions: ['count==0'],
  };
  // A threshold on each phase makes k6 keep the tagged sub-metric in the summary.
  for (const p of phases) t[`decision_latency{phase:${p}}`] = ['max>=0'];
  if (cfg.p99Ms !== undefined) t.decision_latency = [`p(99)<${cfg.p99Ms}`];
  return t;
}

export const SUMMARY_TREND_STATS = ['avg', 'min', 'med', 'max', 'p(50)', 'p(90)', 'p(95)', 'p(99)', 'p(99.9)', 'count'];

/** The part of k6's summary data handleSummary reads. */
export interface SummaryData {
  readonly metrics: Record<
    string,
    { readonly values: Record<string, number>; readonly thresholds?: Record<string, { readonly ok: boolean }> }
  >;
}

function values(data: SummaryData, name: string): Record<string, number> {
  return data.metrics[name]?.values ?? {};
}

function latency(v: Record<string, number>): Record<string, number> {
  return { p50: v['p(50)'] ?? 0, p90: v['p(90)'] ?? 0, p95: v['p(95)'] ?? 0, p99: v['p(99)'] ?? 0, p999: v['p(99.9)'] ?? 0, max: v.max ?? 0, avg: v.avg ?? 0, count: v.count ?? 0 };
}

export function summarise(cfg: K6Config, scenario: string, data: SummaryData, phases: readonly string[]): Record<string, string> {
  const published = values(data, 'correlations_published').count ?? 0;
  const decided = values(data, 'decisions').count ?? 0;
  const errors = values(data, 'publish_errors');
  const byPhase: Record<string, Record<string, number>> = {};
  for (const p of phases) {
    const v = data.metrics[`decision_latency{phase:${p}}`]?.values;
    if (v !== undefined && (v.count ?? 0) > 0) byPhase[p] = latency(v);
  }
  const thresholdResults: Record<string, boolean> = {};
  let thresholdsOk = true;
  for (const [name, m] of Object.entries(data.metrics)) {
    for (const [expr, r] of Object.entries(m.thresholds ?? {})) {
      thresholdResults[`${name}: ${expr}`] = r.ok;
      if (!r.ok) thresholdsOk = false;
    }
  }
  const summary = {
    run_id: cfg.runId,
    scenario,
    rate: cfg.rate,
    agents: cfg.agents,
    correlations_published: published,
    decided,
    // Decided may include a correlation one of whose PubAcks failed; lost counts only what is missing.
    lost: Math.max(0, published - decided),
    duplicates: values(data, 'duplicate_decisions').count ?? 0,
    mismatches: values(data, 'decision_mismatches').count ?? 0,
    foreign: values(data, 'foreign_decisions').count ?? 0,
    publish_errors: errors.passes ?? 0,
    publish_error_rate: errors.rate ?? 0,
    dropped_iterations: values(data, 'dropped_iterations').count ?? 0,
    iterations: values(data, 'iterations').count ?? 0,
    latency_ms: latency(values(data, 'decision_latency')),
    latency_by_phase_ms: byPhase,
    puback_ms: latency(values(data, 'puback_ms')),
    ws_connecting_ms: latency(values(data, 'ws_connecting')),
    thresholds: thresholdResults,
    thresholds_ok: thresholdsOk,
  };
  const l = summary.latency_ms;
  const text = [
    '',
    `${scenario} (k6) run ${cfg.runId}: published ${published}, decided ${decided}, lost ${summary.lost}, duplicates ${summary.duplicates}, mismatches ${summary.mismatches}`,
    `  decision latency ms: p50 ${l.p50} p95 ${l.p95} p99 ${l.p99} max ${l.max} (k6 clocks: whole ms)`,
    ...Object.entries(byPhase).map(([p, v]) => `  phase ${p}: p50 ${v.p50} p99 ${v.p99} max ${v.max} (n=${v.count})`),
    `  publish error rate ${(summary.publish_error_rate * 100).toFixed(2)} %, dropped iterations ${summary.dropped_iterations}`,
    `  thresholds ${thresholdsOk ? 'ok' : 'FAILED'}; summary written to ${cfg.summaryPath}`,
    '',
  ].join('\n');
  return { [cfg.summaryPath]: JSON.stringify(summary, null, 2), stdout: text };
}
