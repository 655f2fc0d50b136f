import { ORCHESTRATOR_VERSION, type Decision, type DecisionStatus } from '@at-orchestrator/contracts';
import type { DecisionEngine, EngineInput, EngineResult } from '../engines/index.js';
import type { OpenCorrelation } from '../fanin/fan-in-buffer.js';

export interface DecisionContext {
  readonly orchestratorType: string;
  readonly minAgents: number;
  readonly workerId: string;
}

/** A decision ready to publish: its wire bytes are made once and reused by every retry. */
export interface DecisionJob {
  readonly corr: OpenCorrelation;
  readonly decision: Decision;
  /** Metric label: the action, or "timeout" for a timeout outcome. */
  readonly type: string;
  readonly atDeadline: boolean;
  epoch: number;
  bytes: Uint8Array | undefined;
}

const encoder = new TextEncoder();

export function encodeDecision(job: DecisionJob): Uint8Array {
  job.bytes ??= encoder.encode(JSON.stringify(job.decision));
  return job.bytes;
}

/** What the engine sees of a correlation (plain data: it can cross a thread boundary). */
export function engineInput(corr: OpenCorrelation, atDeadline: boolean): EngineInput {
  return { corrId: corr.corrId, instrument: corr.instrument, signals: corr.signals, atDeadline };
}

/**
 * Shapes the decision the execution layer receives from the engine's result.
 * At the deadline: a partial decision when MIN_AGENTS_REQUIRED agents reported and the engine could
 * decide from them, otherwise a timeout outcome (published too, so downstream knows).
 */
export function shapeDecision(
  engine: DecisionEngine,
  corr: OpenCorrelation,
  engineResult: EngineResult,
  atDeadline: boolean,
  ctx: DecisionContext,
  epoch: number,
  nowMs: number,
): DecisionJob {
  const present = Object.keys(corr.signals).sort();
  const required = engine.requiredAgents({ instrument: corr.instrument, signals: corr.signals });
  const missing = required.filter((a) => corr.signals[a] === undefined);
  const result: EngineResult = corr.agentCount >= ctx.minAgents ? engineResult : { ok: false, reason: 'too_few_agents' };

  let status: DecisionStatus;
  if (!result.ok) status = 'timeout';
  else status = atDeadline && missing.length > 0 ? 'partial' : 'complete';

  const decision: Decision = {
    corr_id: corr.corrId,
    orchestrator_version: ORCHESTRATOR_VERSION,
    orchestrated_at: new Date(nowMs).toISOString(),
    orchestrator_type: ctx.orchestratorType,
    source_signals: result.ok ? result.sourceSignals : {},
    decision: result.ok ? result.decision : { action: 'no_trade', reason: `timeout_${result.reason}` },
    confidence: result.ok ? result.confidence : 0,
    status,
    partial: status !== 'complete',
    agents_present: present,
    agents_missing: missing,
    latency_ms: Math.max(0, nowMs - corr.firstSeenMs),
    channels: result.ok ? [...result.channels] : [],
    partition: corr.partition,
    epoch,
    worker_id: ctx.workerId,
  };
  if (corr.instrument !== undefined) decision.instrument = corr.instrument;
  if (result.ok && result.engineVersion !== undefined) decision.engine_version = result.engineVersion;
  if (result.ok && result.rule !== undefined) decision.rule = result.rule;
  return { corr, decision, type: result.ok ? result.decision.action : 'timeout', atDeadline, epoch, bytes: undefined };
}
