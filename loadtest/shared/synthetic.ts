/**
 * Synthetic correlations as the seed's agents would publish them: momentum and risk always, a
 * correlation agent in some, in random order with a small gap between agents.
 *
 * Pure and dependency-free so that both drivers use it: the Node driver (through tsx or dist) and
 * the k6 scripts (k6 runs TypeScript itself but has no Node APIs and no package resolution).
 * A correlation is rebuilt from its 32-bit seed alone, which lets the k6 decision collector check a
 * decision without sharing memory with the publishing VUs.
 */

export const SIGNAL_SUBJECT_PREFIX = 'signals.enriched';
export const DECISION_SUBJECT = 'orchestrated.decision';
/** Where the worker's decisions stream stores a decision (it republishes it onto DECISION_SUBJECT). */
export const STORED_DECISION_SUBJECT = 'orchestrator.decided.decision';
export const signalSubject = (agent: string): string => `${SIGNAL_SUBJECT_PREFIX}.${agent}`;

/** Agents whose signals the seed (and REQUIRED_AGENTS' default) needs before it decides. */
export const REQUIRED_AGENTS: readonly string[] = ['momentum', 'risk'];

/** 2: momentum + risk; 3: + correlation; mix: 2 or 3, half each. */
export type AgentMix = 2 | 3 | 'mix';

export interface MomentumAnalysis {
  momentum_strength: number;
  confidence: number;
  trend_direction: string;
}

export interface RiskAnalysis {
  risk_level: string;
  position_sizing: { recommended_size: number };
}

export interface PlannedSignal {
  readonly agent: string;
  /** Milliseconds after the correlation's first signal. */
  readonly offsetMs: number;
  readonly analysis: MomentumAnalysis | RiskAnalysis | Record<string, unknown>;
}

export interface CorrelationPlan {
  readonly instrument: string;
  /** In send order; the first one has offset 0. */
  readonly signals: readonly PlannedSignal[];
  readonly momentum: MomentumAnalysis;
  readonly risk: RiskAnalysis;
  /** Offset of the last signal among REQUIRED_AGENTS: latency is measured from it. */
  readonly lastRequiredOffsetMs: number;
}

/** The simulated agents' seeded PRNG (mulberry32): the same seed gives the same stream everywhere. */
export { seededRandom } from '@at-orchestrator/sim';

const INSTRUMENTS = ['EQ:AAPL', 'EQ:MSFT', 'EQ:NVDA', 'EQ:TSLA', 'CRYPTO:BTC-USD', 'CRYPTO:ETH-USD', 'FX:EURUSD', 'FUT:ES'];
/** Weighted so that every branch of the seed rules is exercised: trade, monitor and no_trade. */
const RISK_LEVELS: ReadonlyArray<readonly [string, number]> = [
  ['low', 0.4],
  ['medium', 0.3],
  ['high', 0.2],
  ['blocked', 0.1],
];

const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length) % items.length] as T;
}

/**
 * Plans one correlation. `jitterMs` is the largest gap between two consecutive agents (uniform
 * in [0, jitterMs]); 0 publishes all agents at once.
 */
export function planCorrelation(rand: () => number, agents: AgentMix, jitterMs: number): CorrelationPlan {
  const strength = round4(rand() * 2 - 1);
  const momentum: MomentumAnalysis = {
    momentum_strength: strength,
    // Four decimals: 0.7 itself comes up now and then, which checks the seed's strict "> 0.7".
    confidence: round4(rand()),
    trend_direction: strength > 0.1 ? 'bullish' : strength < -0.1 ? 'bearish' : 'neutral',
  };
  let u = rand();
  let level = 'low';
  for (const [name, weight] of RISK_LEVELS) {
    if (u < weight) {
      level = name;
      break;
    }
    u -= weight;
  }
  const risk: RiskAnalysis = {
    risk_level: level,
    position_sizing: { recommended_size: 10 * (1 + Math.floor(rand() * 100)) },
  };
  const instrument = pick(rand, INSTRUMENTS);
  const withCorrelation = agents === 3 || (agents === 'mix' && rand() < 0.5);
  const names = withCorrelation ? ['momentum', 'risk', 'correlation'] : ['momentum', 'risk'];
  // Fisher-Yates: agents report in any order.
  for (let i = names.length - 1; i > 0; i -= 1) {
    const j = Math.floor(rand() * (i + 1));
    const tmp = names[i] as string;
    names[i] = names[j] as string;
    names[j] = tmp;
  }
  const signals: PlannedSignal[] = [];
  let offset = 0;
  let lastRequiredOffsetMs = 0;
  names.forEach((agent, i) => {
    if (i > 0) offset += round4(rand() * jitterMs);
    const analysis =
      agent === 'momentum'
        ? momentum
        : agent === 'risk'
          ? risk
          : { correlation_score: round4(rand()), correlated_with: pick(rand, INSTRUMENTS), window: '1h' };
    signals.push({ agent, offsetMs: offset, analysis });
    if (REQUIRED_AGENTS.includes(agent)) lastRequiredOffsetMs = offset;
  });
  return { instrument, signals, momentum, risk, lastRequiredOffsetMs };
}

/** The enriched-signal JSON an agent publishes (contract: corr_id, agent_name, instrument, analysis). */
export function signalJson(corrId: string, signal: PlannedSignal, instrument: string, timestamp: string): string {
  return JSON.stringify({
    corr_id: corrId,
    agent_name: signal.agent,
    instrument,
    timestamp,
    analysis: signal.analysis,
  });
}

/**
 * Correlation IDs that carry what a stateless checker needs: `<prefix>-<run>-<seed hex>-<ms>`, where
 * ms is the intended send time of the last required signal (epoch milliseconds). Used by k6.
 */
export function encodeSeededCorrId(prefix: string, run: string, seed: number, lastRequiredAtMs: number): string {
  return `${prefix}-${run}-${(seed >>> 0).toString(16).padStart(8, '0')}-${Math.round(lastRequiredAtMs)}`;
}

export function decodeSeededCorrId(
  corrId: string,
  prefix: string,
  run: string,
): { seed: number; lastRequiredAtMs: number } | undefined {
  const head = `${prefix}-${run}-`;
  if (!corrId.startsWith(head)) return undefined;
  const rest = corrId.slice(head.length);
  const dash = rest.indexOf('-');
  if (dash !== 8) return undefined;
  const seed = Number.parseInt(rest.slice(0, 8), 16);
  const ms = Number(rest.slice(9));
  if (!Number.isFinite(seed) || !Number.isFinite(ms)) return undefined;
  return { seed, lastRequiredAtMs: ms };
}
