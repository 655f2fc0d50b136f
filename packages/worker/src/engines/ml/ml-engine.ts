import type { MomentumSignal, RiskLevel, RiskSignal, TradingDecision } from '@at-orchestrator/contracts';
import type { DecisionEngine, EngineInput, EngineResult } from '../engine.js';
import type { SignalsByAgent } from './features.js';
import type { ScoringModel } from './model-file.js';

/**
 * The ml engine: a logistic-regression score p of "trading on these signals is profitable".
 *   risk missing                          → no decision (timeout outcome at the deadline), as simple
 *   risk blocked                          → no_trade / risk_blocked, confidence 0 (never scored)
 *   p > threshold and momentum present    → trade, momentum's direction, risk's recommended size
 *   p > threshold without momentum        → monitor / momentum_missing (no direction to trade)
 *   otherwise                             → monitor / model_below_threshold
 *   confidence = p; engineVersion = the model file's version.
 * Pure and synchronous; the model is loaded once, at construction.
 */
export class MlEngine implements DecisionEngine {
  readonly type = 'ml' as const;

  constructor(
    readonly model: ScoringModel,
    private readonly required: readonly string[],
  ) {}

  requiredAgents(): readonly string[] {
    return this.required;
  }

  decide(input: EngineInput): EngineResult {
    const risk = input.signals.risk as RiskSignal | undefined;
    if (risk === undefined) return { ok: false, reason: 'risk_missing' };
    const momentum = input.signals.momentum as MomentumSignal | undefined;
    const sourceSignals: { momentum?: number; risk?: RiskLevel } = { risk: risk.analysis.risk_level };
    if (momentum !== undefined) sourceSignals.momentum = momentum.analysis.momentum_strength;
    const base = { ok: true as const, sourceSignals, channels: [] as const, engineVersion: this.model.version };
    if (risk.analysis.risk_level === 'blocked') {
      return { ...base, decision: { action: 'no_trade', reason: 'risk_blocked' }, confidence: 0 };
    }
    const p = this.model.score(input.signals as SignalsByAgent);
    let decision: TradingDecision;
    if (p <= this.model.threshold) decision = { action: 'monitor', reason: 'model_below_threshold' };
    else if (momentum === undefined) decision = { action: 'monitor', reason: 'momentum_missing' };
    else {
      decision = {
        action: 'trade',
        direction: momentum.analysis.trend_direction,
        size: risk.analysis.position_sizing.recommended_size,
        reason: 'model_above_threshold',
      };
    }
    return { ...base, decision, confidence: p };
  }
}
