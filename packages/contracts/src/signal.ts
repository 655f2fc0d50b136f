import { z } from 'zod';

/** Largest signal payload accepted; bigger ones go to the DLQ as `oversized`. */
export const MAX_SIGNAL_BYTES_DEFAULT = 64 * 1024;

export const RISK_LEVELS = ['low', 'medium', 'high', 'blocked'] as const;
export const RiskLevel = z.enum(RISK_LEVELS);
export type RiskLevel = z.infer<typeof RiskLevel>;

/** corr_id becomes part of Redis keys and Nats-Msg-Id: printable, no whitespace, bounded. */
export const CorrId = z
  .string()
  .min(1, 'corr_id is empty')
  .max(128, 'corr_id is longer than 128 characters')
  .regex(/^[\x21-\x7e]+$/, 'corr_id must be printable ASCII without spaces');

export const AgentName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9_-]*$/i, 'agent_name must be letters, digits, "_" or "-"');

export const MomentumAnalysis = z.looseObject({
  momentum_strength: z.number().finite(),
  confidence: z.number().finite().min(0).max(1),
  trend_direction: z.string().min(1),
});
export type MomentumAnalysis = z.infer<typeof MomentumAnalysis>;

export const RiskAnalysis = z.looseObject({
  risk_level: RiskLevel,
  position_sizing: z.looseObject({
    recommended_size: z.number().finite().nonnegative(),
  }),
});
export type RiskAnalysis = z.infer<typeof RiskAnalysis>;

const SignalEnvelope = {
  corr_id: CorrId,
  /** Optional instrument symbol, used by workflow routing (e.g. CRYPTO:BTC-USD). */
  instrument: z.string().min(1).max(64).optional(),
  timestamp: z.string().optional(),
};

export const MomentumSignal = z.looseObject({
  ...SignalEnvelope,
  agent_name: z.literal('momentum'),
  analysis: MomentumAnalysis,
});
export const RiskSignal = z.looseObject({
  ...SignalEnvelope,
  agent_name: z.literal('risk'),
  analysis: RiskAnalysis,
});
/** Any other agent: accepted, its analysis kept exactly as sent. */
export const OtherSignal = z.looseObject({
  ...SignalEnvelope,
  agent_name: AgentName,
  analysis: z.record(z.string(), z.unknown()),
});

export type MomentumSignal = z.infer<typeof MomentumSignal>;
export type RiskSignal = z.infer<typeof RiskSignal>;
export type EnrichedSignal = MomentumSignal | RiskSignal | z.infer<typeof OtherSignal>;

export type SignalParseResult =
  | { ok: true; signal: EnrichedSignal; /** The payload as decoded text, exactly as received. */ text: string }
  | { ok: false; reason: 'not_json' | 'schema' | 'no_corr_id' | 'oversized'; detail: string; corrId?: string };

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses one message body into an enriched signal. Never throws: bad input comes back as a reason
 * that names what is wrong, for the DLQ.
 */
export function parseSignal(body: Uint8Array, maxBytes = MAX_SIGNAL_BYTES_DEFAULT): SignalParseResult {
  if (body.byteLength > maxBytes) {
    return { ok: false, reason: 'oversized', detail: `payload is ${body.byteLength} bytes, limit ${maxBytes}` };
  }
  let raw: unknown;
  let text: string;
  try {
    text = decoder.decode(body);
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: 'not_json', detail: (err as Error).message };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, reason: 'not_json', detail: 'payload is not a JSON object' };
  }
  const obj = raw as Record<string, unknown>;
  const corr = CorrId.safeParse(obj.corr_id);
  if (!corr.success) {
    return {
      ok: false,
      reason: 'no_corr_id',
      detail: obj.corr_id === undefined ? 'corr_id is missing' : issueText(corr.error),
    };
  }
  const schema = obj.agent_name === 'momentum' ? MomentumSignal : obj.agent_name === 'risk' ? RiskSignal : OtherSignal;
  const parsed = schema.safeParse(obj);
  if (!parsed.success) {
    return { ok: false, reason: 'schema', detail: issueText(parsed.error), corrId: corr.data };
  }
  return { ok: true, signal: parsed.data as EnrichedSignal, text };
}

function issueText(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}
