import type { RiskLevel } from '@at-orchestrator/contracts';

/** A small, fast, seedable PRNG (mulberry32) so that a run can be replayed exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SyntheticSignal {
  agent: string;
  /** The message body, exactly as an agent would publish it (or garbage, on purpose). */
  body: string;
  /** Milliseconds after the correlation's first signal at which this one is sent. */
  delayMs: number;
}

export interface SyntheticCorrelation {
  corrId: string;
  instrument: string;
  signals: SyntheticSignal[];
  /** What the generator made: a test or the load driver can compute the expected outcome from it. */
  truth: {
    momentum?: { momentum_strength: number; confidence: number; trend_direction: string };
    risk?: { risk_level: RiskLevel; position_sizing: { recommended_size: number } };
    agents: string[];
    garbage: number;
  };
}

export interface MixOptions {
  /** Share of correlations with a third agent (correlation). */
  thirdAgent: number;
  /** Share of correlations that lose their risk signal (→ timeout outcome). */
  missingRisk: number;
  /** Share of correlations that lose their momentum signal (→ partial decision at the deadline). */
  missingMomentum: number;
  /** Share of correlations whose correlation-agent signal arrives well after the others (a late signal). */
  lateThird: number;
  /** Share of correlations followed by one garbage message (not JSON, schema violation, no corr_id). */
  garbage: number;
  /** Share of risk analyses that are blocked. */
  blocked: number;
  /** Upper bound of the random delay between one correlation's signals, ms. */
  jitterMs: number;
  /** Delay of a late signal, ms (pick more than the orchestrator needs to decide). */
  lateDelayMs: number;
}

export const REALISTIC_MIX: MixOptions = {
  thirdAgent: 0.5,
  missingRisk: 0.02,
  missingMomentum: 0.02,
  lateThird: 0.05,
  garbage: 0.005,
  blocked: 0.1,
  jitterMs: 20,
  lateDelayMs: 500,
};

/** Every correlation complete (momentum + risk), nothing missing, nothing garbage. */
export const CLEAN_MIX: MixOptions = {
  thirdAgent: 0,
  missingRisk: 0,
  missingMomentum: 0,
  lateThird: 0,
  garbage: 0,
  blocked: 0.1,
  jitterMs: 0,
  lateDelayMs: 0,
};

const INSTRUMENTS = ['EQ:AAPL', 'EQ:MSFT', 'EQ:NVDA', 'EQ:SPY', 'CRYPTO:BTC-USD', 'CRYPTO:ETH-USD', 'FX:EURUSD'];
const LEVELS: RiskLevel[] = ['low', 'medium', 'high'];
const GARBAGE = [
  '{not json',
  JSON.stringify({ corr_id: 'x', agent_name: 'risk', analysis: { risk_level: 'extreme' } }),
  JSON.stringify({ agent_name: 'momentum', analysis: {} }),
];

/** Builds one correlation's signals as the seed's agents would send them. */
export function makeCorrelation(corrId: string, rnd: () => number, mix: MixOptions = REALISTIC_MIX): SyntheticCorrelation {
  const instrument = INSTRUMENTS[Math.floor(rnd() * INSTRUMENTS.length)]!;
  const momentum = {
    momentum_strength: round(rnd() * 2 - 1),
    confidence: round(rnd()),
    trend_direction: rnd() < 0.5 ? 'bullish' : 'bearish',
  };
  const risk = {
    risk_level: rnd() < mix.blocked ? ('blocked' as const) : LEVELS[Math.floor(rnd() * LEVELS.length)]!,
    position_sizing: { recommended_size: Math.round(rnd() * 1000) },
  };
  const dropRisk = rnd() < mix.missingRisk;
  const dropMomentum = !dropRisk && rnd() < mix.missingMomentum;
  const third = rnd() < mix.thirdAgent;
  const lateThird = third && rnd() < mix.lateThird;
  const signals: SyntheticSignal[] = [];
  const truth: SyntheticCorrelation['truth'] = { agents: [], garbage: 0 };
  const jitter = (): number => Math.floor(rnd() * mix.jitterMs);
  if (!dropMomentum) {
    signals.push({ agent: 'momentum', delayMs: jitter(), body: JSON.stringify({ corr_id: corrId, agent_name: 'momentum', instrument, analysis: momentum }) });
    truth.momentum = momentum;
    truth.agents.push('momentum');
  }
  if (!dropRisk) {
    signals.push({ agent: 'risk', delayMs: jitter(), body: JSON.stringify({ corr_id: corrId, agent_name: 'risk', instrument, analysis: risk }) });
    truth.risk = risk;
    truth.agents.push('risk');
  }
  if (third) {
    signals.push({
      agent: 'correlation',
      delayMs: lateThird ? mix.lateDelayMs : jitter(),
      body: JSON.stringify({ corr_id: corrId, agent_name: 'correlation', instrument, analysis: { correlation_score: round(rnd()), peers: ['SPY'] } }),
    });
    truth.agents.push('correlation');
  }
  // Random arrival order, as independent agents would have it.
  for (let i = signals.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [signals[i], signals[j]] = [signals[j]!, signals[i]!];
  }
  if (rnd() < mix.garbage) {
    signals.push({ agent: rnd() < 0.5 ? 'risk' : 'momentum', delayMs: jitter(), body: GARBAGE[Math.floor(rnd() * GARBAGE.length)]! });
    truth.garbage = 1;
  }
  return { corrId, instrument, signals, truth };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
