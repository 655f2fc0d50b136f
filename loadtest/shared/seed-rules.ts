/**
 * The oracle: what the seed orchestrator decides for a momentum and a risk analysis. Re-implemented
 * here on purpose (loadtest knows contracts, not the worker's code) and kept as small as the seed's
 * own rules, so that a difference points at the system under test, not at a shared bug.
 */

export interface ExpectedDecision {
  readonly action: 'trade' | 'monitor' | 'no_trade';
  readonly direction?: string;
  readonly size?: number;
  readonly reason: string;
  readonly confidence: number;
}

const RISK_MULTIPLIER: Readonly<Record<string, number>> = { low: 1.0, medium: 0.8, high: 0.5, blocked: 0.0 };

export function seedDecision(
  momentum: { confidence: number; trend_direction: string },
  risk: { risk_level: string; position_sizing: { recommended_size: number } },
): ExpectedDecision {
  const confidence = momentum.confidence * (RISK_MULTIPLIER[risk.risk_level] ?? 0.5);
  if (risk.risk_level === 'blocked') return { action: 'no_trade', reason: 'risk_blocked', confidence };
  if (momentum.confidence > 0.7 && (risk.risk_level === 'low' || risk.risk_level === 'medium')) {
    return {
      action: 'trade',
      direction: momentum.trend_direction,
      size: risk.position_sizing.recommended_size,
      reason: 'high_confidence_momentum',
      confidence,
    };
  }
  return { action: 'monitor', reason: 'insufficient_confidence', confidence };
}

/**
 * Compares a decision message (parsed JSON) with the expected outcome. Returns undefined when it
 * matches, otherwise a short description of the first difference. A `status`, when present, must be
 * `complete`: every correlation the drivers publish has all required agents.
 */
export function checkDecision(expected: ExpectedDecision, message: unknown): string | undefined {
  if (typeof message !== 'object' || message === null) return 'decision is not a JSON object';
  const m = message as { decision?: unknown; confidence?: unknown; status?: unknown };
  if (m.status !== undefined && m.status !== 'complete') return `status ${String(m.status)}, expected complete`;
  if (typeof m.decision !== 'object' || m.decision === null) return 'decision.decision is missing';
  const d = m.decision as { action?: unknown; direction?: unknown; size?: unknown; reason?: unknown };
  if (d.action !== expected.action) return `action ${String(d.action)}, expected ${expected.action}`;
  if (d.reason !== expected.reason) return `reason ${String(d.reason)}, expected ${expected.reason}`;
  if (d.direction !== expected.direction) return `direction ${String(d.direction)}, expected ${String(expected.direction)}`;
  if (d.size !== expected.size) return `size ${String(d.size)}, expected ${String(expected.size)}`;
  if (typeof m.confidence !== 'number' || Math.abs(m.confidence - expected.confidence) > 1e-9) {
    return `confidence ${String(m.confidence)}, expected ${expected.confidence}`;
  }
  return undefined;
}
