/**
 * The seed's decision rules written out again, independently of the worker's engine, so that the
 * end-to-end tests compare the product with the specification rather than with itself.
 *   make_trading_decision + calculate_confidence from the seed's SimpleOrchestrator.
 */
export interface SeedMomentum {
  confidence: number;
  trend_direction: string;
  momentum_strength: number;
}
export interface SeedRisk {
  risk_level: string;
  position_sizing: { recommended_size: number };
}

export function seedDecision(momentum: SeedMomentum, risk: SeedRisk): { decision: Record<string, unknown>; confidence: number } {
  let decision: Record<string, unknown>;
  if (risk.risk_level === 'blocked') decision = { action: 'no_trade', reason: 'risk_blocked' };
  else if (momentum.confidence > 0.7 && ['low', 'medium'].includes(risk.risk_level))
    decision = {
      action: 'trade',
      direction: momentum.trend_direction,
      size: risk.position_sizing.recommended_size,
      reason: 'high_confidence_momentum',
    };
  else decision = { action: 'monitor', reason: 'insufficient_confidence' };
  const multiplier = ({ low: 1.0, medium: 0.8, high: 0.5, blocked: 0.0 } as Record<string, number>)[risk.risk_level] ?? 0.5;
  return { decision, confidence: momentum.confidence * multiplier };
}
