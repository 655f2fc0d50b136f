import type { EnrichedSignal, RiskLevel, TradingDecision } from '@at-orchestrator/contracts';

/**
 * The one interface every decision engine implements (simple, workflow, ml).
 *
 * Engines are pure: the same input gives the same output, with no I/O, so that they can run inline
 * or in a worker thread. They never change an agent's analysis; they read it and decide.
 */
export interface EngineInput {
  readonly corrId: string;
  readonly instrument: string | undefined;
  /** Agent name → the signal that agent sent, as validated by contracts. */
  readonly signals: Readonly<Record<string, EnrichedSignal>>;
  /** True when the correlation reached its deadline and is decided from what is present. */
  readonly atDeadline: boolean;
}

export type EngineResult =
  | {
      readonly ok: true;
      readonly decision: TradingDecision;
      readonly confidence: number;
      readonly sourceSignals: { momentum?: number; risk?: RiskLevel; [agent: string]: unknown };
      /** Fan-out channels beyond orchestrated.decision (e.g. execution, risk_monitor, audit). */
      readonly channels: readonly string[];
      /** Engine's own version (a model version, a rules-file hash), carried in the decision. */
      readonly engineVersion?: string;
      /** The workflow rule that matched, when the engine has rules. */
      readonly rule?: string;
    }
  | {
      readonly ok: false;
      /** The engine cannot decide from these signals (e.g. no risk analysis): a timeout outcome. */
      readonly reason: string;
    };

export interface DecisionEngine {
  readonly type: 'simple' | 'workflow' | 'ml';
  /** Agents that must have reported before the correlation is decided early (before its deadline). */
  requiredAgents(input: Pick<EngineInput, 'instrument' | 'signals'>): readonly string[];
  decide(input: EngineInput): EngineResult;
}
