import type { MomentumSignal, RiskLevel, RiskSignal, TradingDecision } from '@at-orchestrator/contracts';
import type { DecisionEngine, EngineInput, EngineResult } from './engine.js';

/** Confidence multiplier per risk level; any other level counts as 0.5 (the seed's table). */
const RISK_MULTIPLIER: Readonly<Record<string, number>> = { low: 1.0, medium: 0.8, high: 0.5, blocked: 0.0 };
const CONFIDENCE_THRESHOLD = 0.7;

/**
 * The seed's simple orchestrator, rule for rule:
 *   risk blocked                                   → no_trade / risk_blocked
 *   momentum confidence > 0.7 and risk low|medium  → trade, momentum direction, risk's recommended size
 *   otherwise                                      → monitor / insufficient_confidence
 *   confidence = momentum confidence × risk multiplier
 * Risk is a hard input: without it there is no decision (a timeout outcome at the deadline).
 * Without momentum (a partial decision) the momentum confidence counts as 0, so the result is
 * no_trade when blocked and monitor otherwise.
 */
export function decideSimple(momentum: MomentumSignal['analysis'] | undefined, risk: RiskSignal['analysis']): {
  decision: TradingDecision;
  confidence: number;
} {
  const momentumConfidence = momentum?.confidence ?? 0;
  const riskLevel: RiskLevel = risk.risk_level;
  let decision: TradingDecision;
  if (riskLevel === 'blocked') {
    decision = { action: 'no_trade', reason: 'risk_blocked' };
  } else if (momentum !== undefined && momentumConfidence > CONFIDENCE_THRESHOLD && (riskLevel === 'low' || riskLevel === 'medium')) {
    decision = {
      action: 'trade',
      direction: momentum.trend_direction,
      size: risk.position_sizing.recommended_size,
      reason: 'high_confidence_momentum',
    };
  } else {
    decision = { action: 'monitor', reason: 'insufficient_confidence' };
  }
  return { decision, confidence: momentumConfidence * (RISK_MULTIPLIER[riskLevel] ?? 0.5) };
}

export class SimpleEngine implements DecisionEngine {
  readonly type = 'simple' as const;
  constructor(private readonly required: readonly string[]) {}

  requiredAgents(): readonly string[] {
    return this.required;
  }

  decide(input: EngineInput): EngineResult {
    const risk = input.signals.risk as RiskSignal | undefined;
    if (risk === undefined) return { ok: false, reason: 'risk_missing' };
    const momentum = input.signals.momentum as MomentumSignal | undefined;
    const { decision, confidence } = decideSimple(momentum?.analysis, risk.analysis);
    const sourceSignals: { momentum?: number; risk?: RiskLevel } = { risk: risk.analysis.risk_level };
    if (momentum !== undefined) sourceSignals.momentum = momentum.analysis.momentum_strength;
    return { ok: true, decision, confidence, sourceSignals, channels: [] };
  }
}
