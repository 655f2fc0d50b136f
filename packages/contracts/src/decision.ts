import { z } from 'zod';
import { RiskLevel } from './signal.js';

export const ORCHESTRATOR_VERSION = '1.0.0';

export const DecisionAction = z.enum(['trade', 'monitor', 'no_trade']);
export type DecisionAction = z.infer<typeof DecisionAction>;

/** complete: every required agent reported; partial: decided at the deadline from what was present;
 *  timeout: closed at the deadline without a decision (the engine's hard inputs were missing). */
export const DecisionStatus = z.enum(['complete', 'partial', 'timeout']);
export type DecisionStatus = z.infer<typeof DecisionStatus>;

export const TradingDecision = z.object({
  action: DecisionAction,
  direction: z.string().optional(),
  size: z.number().optional(),
  reason: z.string(),
});
export type TradingDecision = z.infer<typeof TradingDecision>;

/** What the orchestrator publishes on orchestrated.decision (and its fan-out channels). */
export const Decision = z.object({
  corr_id: z.string(),
  orchestrator_version: z.string(),
  orchestrated_at: z.string(),
  orchestrator_type: z.string(),
  source_signals: z.looseObject({
    momentum: z.number().optional(),
    risk: RiskLevel.optional(),
  }),
  decision: TradingDecision,
  confidence: z.number(),
  status: DecisionStatus,
  partial: z.boolean(),
  agents_present: z.array(z.string()),
  agents_missing: z.array(z.string()),
  /** First signal received → decision made, in milliseconds. */
  latency_ms: z.number(),
  instrument: z.string().optional(),
  /** The engine's own version (ml model version, rules-file hash), when it has one. */
  engine_version: z.string().optional(),
  /** The workflow rule that matched, for the workflow engine. */
  rule: z.string().optional(),
  channels: z.array(z.string()),
  partition: z.number().int(),
  epoch: z.number().int(),
  worker_id: z.string(),
});
export type Decision = z.infer<typeof Decision>;

/** What goes to orchestrator.dlq: why, where from, and the original payload untouched. */
export const DeadLetter = z.object({
  reason: z.string(),
  detail: z.string(),
  subject: z.string(),
  corr_id: z.string().optional(),
  received_at: z.string(),
  worker_id: z.string(),
  /** The original payload, base64, exactly as received (its first bytes only when `truncated`). */
  payload_b64: z.string(),
  /** The letter would not fit the server's max_payload: payload_b64 holds only a prefix. */
  truncated: z.boolean().optional(),
  /** Size of the original payload in bytes (set when truncated). */
  payload_bytes: z.number().int().optional(),
});
export type DeadLetter = z.infer<typeof DeadLetter>;
