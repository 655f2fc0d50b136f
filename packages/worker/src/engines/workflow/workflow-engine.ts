import type { MomentumSignal, RiskLevel, RiskSignal, TradingDecision } from '@at-orchestrator/contracts';
import type { DecisionEngine, EngineInput, EngineResult } from '../engine.js';
import { decideSimple } from '../simple.js';
import type { CompiledRule, RuleSet } from './rule-set.js';

type Decided = Extract<EngineResult, { ok: true }>;

/** A workflow decision also says which rule made it (`rules[3]` names and the rule's name). */
export type WorkflowResult = (Decided & { readonly rule: string }) | Extract<EngineResult, { ok: false }>;

/**
 * The workflow engine: the seed's simple rules make the base decision, then the first rule that
 * matches the correlation (instrument, risk level, agents present, momentum confidence) may override
 * or adjust it and picks the channels it fans out to and the agents it waits for.
 * It reads the agents' analysis and never changes it; only the decision is the rule's to shape.
 *
 * Pure and synchronous. The rules are swapped whole by setRules (a reload), never edited in place.
 */
export class WorkflowEngine implements DecisionEngine {
  readonly type = 'workflow' as const;
  private ruleSet: RuleSet;

  constructor(rules: RuleSet) {
    this.ruleSet = rules;
  }

  get rules(): RuleSet {
    return this.ruleSet;
  }

  /** Swaps in a newly loaded rule set; decisions made after this call use it. */
  setRules(rules: RuleSet): void {
    this.ruleSet = rules;
  }

  /** The agent set of the rule that matches what is present so far. */
  requiredAgents(input: Pick<EngineInput, 'instrument' | 'signals'>): readonly string[] {
    return this.ruleSet.match(input.instrument, input.signals).requiredAgents;
  }

  /** The rule that matches what is present so far (for logs and tests). */
  matchRule(input: Pick<EngineInput, 'instrument' | 'signals'>): CompiledRule {
    return this.ruleSet.match(input.instrument, input.signals);
  }

  decide(input: EngineInput): WorkflowResult {
    const risk = input.signals.risk as RiskSignal | undefined;
    if (risk === undefined) return { ok: false, reason: 'risk_missing' };
    const momentum = input.signals.momentum as MomentumSignal | undefined;
    const rules = this.ruleSet;
    const rule = rules.match(input.instrument, input.signals);
    const base = decideSimple(momentum?.analysis, risk.analysis);
    const { decision, confidence } = applyRule(rule, base.decision, base.confidence, momentum, risk);
    const sourceSignals: { momentum?: number; risk?: RiskLevel } = { risk: risk.analysis.risk_level };
    if (momentum !== undefined) sourceSignals.momentum = momentum.analysis.momentum_strength;
    return { ok: true, decision, confidence, sourceSignals, channels: rule.channels, engineVersion: rules.version, rule: rule.name };
  }
}

/**
 * Override, then adjust. Two things no rule can do: trade when risk is blocked, and trade without a
 * direction (an override to trade without momentum becomes monitor).
 */
export function applyRule(
  rule: Pick<CompiledRule, 'override' | 'adjust'>,
  base: TradingDecision,
  baseConfidence: number,
  momentum: MomentumSignal | undefined,
  risk: RiskSignal,
): { decision: TradingDecision; confidence: number } {
  if (risk.analysis.risk_level === 'blocked') return { decision: base, confidence: baseConfidence };
  let decision = base;
  const override = rule.override;
  if (override !== undefined) {
    if (override.action !== 'trade') decision = { action: override.action, reason: override.reason };
    else if (momentum === undefined) decision = { action: 'monitor', reason: 'override_trade_needs_momentum' };
    else {
      decision = {
        action: 'trade',
        direction: momentum.analysis.trend_direction,
        size: risk.analysis.position_sizing.recommended_size,
        reason: override.reason,
      };
    }
  }
  let confidence = baseConfidence;
  const adjust = rule.adjust;
  if (adjust !== undefined) {
    if (adjust.confidence_multiplier !== undefined) confidence = Math.min(1, Math.max(0, confidence * adjust.confidence_multiplier));
    if (decision.action === 'trade') {
      let size = decision.size ?? 0;
      if (adjust.size_multiplier !== undefined) size *= adjust.size_multiplier;
      if (adjust.max_size !== undefined) size = Math.min(size, adjust.max_size);
      if (adjust.min_trade_confidence !== undefined && confidence < adjust.min_trade_confidence) {
        decision = { action: 'monitor', reason: 'below_rule_confidence' };
      } else if (size <= 0) {
        decision = { action: 'monitor', reason: 'size_adjusted_to_zero' };
      } else if (size !== decision.size) {
        decision = { ...decision, size };
      }
    }
  }
  return { decision, confidence };
}
