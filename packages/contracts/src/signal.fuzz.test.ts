import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentName, CorrId, MomentumAnalysis, MomentumSignal, OtherSignal, RiskAnalysis, RiskSignal, parseSignal, type SignalParseResult } from './signal.js';

// parseSignal is the edge every pulled and every forwarded signal crosses: whatever the bytes, it
// must answer (never throw) with a signal that meets the schema or a reason the DLQ knows.

const REASONS = new Set(['not_json', 'schema', 'no_corr_id', 'oversized']);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const LIMIT = 4 * 1024;

/** Checks the shape of any answer and, for an accepted signal, the invariants every later stage relies on. */
function expectWellFormed(result: SignalParseResult, body: Uint8Array, maxBytes: number): void {
  if (!result.ok) {
    expect(REASONS.has(result.reason), `unknown reason ${String(result.reason)}`).toBe(true);
    expect(typeof result.detail).toBe('string');
    if (result.corrId !== undefined) expect(CorrId.safeParse(result.corrId).success).toBe(true);
    if (result.reason === 'schema') expect(result.corrId).toBeDefined();
    if (body.byteLength > maxBytes) expect(result.reason).toBe('oversized');
    return;
  }
  expect(body.byteLength).toBeLessThanOrEqual(maxBytes);
  const { signal, text } = result;
  expect(CorrId.safeParse(signal.corr_id).success).toBe(true);
  expect(AgentName.safeParse(signal.agent_name).success).toBe(true);
  expect(typeof signal.analysis === 'object' && signal.analysis !== null && !Array.isArray(signal.analysis)).toBe(true);
  if (signal.agent_name === 'momentum') expect(MomentumAnalysis.safeParse(signal.analysis).success).toBe(true);
  if (signal.agent_name === 'risk') expect(RiskAnalysis.safeParse(signal.analysis).success).toBe(true);
  // The payload kept for Redis and forwards is exactly what arrived.
  expect(text).toBe(decoder.decode(body));
}

function parseAndCheck(body: Uint8Array, maxBytes = LIMIT): SignalParseResult {
  let result: SignalParseResult | undefined;
  expect(() => (result = parseSignal(body, maxBytes))).not.toThrow();
  expectWellFormed(result!, body, maxBytes);
  return result!;
}

const printable = fc.string({ minLength: 1, maxLength: 40, unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)) });
/** A field value: sometimes right, often wrong in every way JSON allows. */
const corrId = fc.oneof(printable, fc.constant(''), fc.string(), fc.string({ minLength: 129, maxLength: 200 }), fc.jsonValue());
const agentName = fc.oneof(fc.constantFrom('momentum', 'risk', 'sentiment', 'bad name!', '', 'a'.repeat(65)), fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,10}$/), fc.jsonValue());
const momentumAnalysis = fc.record({
  momentum_strength: fc.oneof(fc.double(), fc.jsonValue()),
  confidence: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.double(), fc.jsonValue()),
  trend_direction: fc.oneof(fc.string(), fc.jsonValue()),
});
const riskAnalysis = fc.record({
  risk_level: fc.oneof(fc.constantFrom('low', 'medium', 'high', 'blocked', 'extreme'), fc.jsonValue()),
  position_sizing: fc.oneof(fc.record({ recommended_size: fc.oneof(fc.double(), fc.jsonValue()) }), fc.jsonValue()),
});
const analysis = fc.oneof(momentumAnalysis, riskAnalysis, fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue());
/** Objects shaped like signals, any field possibly missing, wrong or joined by others (__proto__ included). */
const signalShaped = fc
  .record(
    { corr_id: corrId, agent_name: agentName, analysis, instrument: fc.oneof(fc.string(), fc.jsonValue()), timestamp: fc.oneof(fc.string(), fc.jsonValue()) },
    { requiredKeys: [] },
  )
  .chain((base) => fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'toString')), fc.jsonValue(), { maxKeys: 3 }).map((extra) => ({ ...extra, ...base })));

describe('parseSignal under arbitrary input (fast-check)', () => {
  it('arbitrary bytes: never throws; a reason or a valid signal', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2 * LIMIT }), (bytes) => {
        parseAndCheck(bytes);
      }),
      { numRuns: 3_000 },
    );
  });

  it('bytes around valid JSON (a valid signal cut, spliced or with a byte changed): never throws', () => {
    const valid = encoder.encode(JSON.stringify({ corr_id: 'c-1', agent_name: 'momentum', analysis: { momentum_strength: 1, confidence: 0.5, trend_direction: 'up' } }));
    fc.assert(
      fc.property(fc.nat(valid.length), fc.nat(valid.length), fc.integer({ min: 0, max: 255 }), (at, cut, byte) => {
        const changed = valid.slice(0, cut);
        if (at < changed.length) changed[at] = byte;
        parseAndCheck(changed);
      }),
      { numRuns: 2_000 },
    );
  });

  it('arbitrary JSON values and arbitrary JS values as JSON: never throws; non-objects are not_json', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.anything()), (value) => {
        const text = JSON.stringify(value) as string | undefined;
        if (text === undefined) return;
        const result = parseAndCheck(encoder.encode(text), 1024 * 1024);
        const raw = JSON.parse(text) as unknown;
        if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) expect(result).toMatchObject({ ok: false, reason: 'not_json' });
      }),
      { numRuns: 3_000 },
    );
  });

  it('objects shaped like signals with random field values: never throws; accepted exactly when corr_id, agent_name and analysis are valid', () => {
    let accepted = 0;
    fc.assert(
      fc.property(signalShaped, fc.boolean(), (obj, pretty) => {
        const body = encoder.encode(JSON.stringify(obj, null, pretty ? 2 : undefined));
        const result = parseAndCheck(body, 1024 * 1024);
        const sent = JSON.parse(decoder.decode(body)) as Record<string, unknown>;
        if (!CorrId.safeParse(sent.corr_id).success) expect(result).toMatchObject({ ok: false, reason: 'no_corr_id' });
        const schema = sent.agent_name === 'momentum' ? MomentumSignal : sent.agent_name === 'risk' ? RiskSignal : OtherSignal;
        expect(result.ok).toBe(CorrId.safeParse(sent.corr_id).success && schema.safeParse(sent).success);
        accepted += result.ok ? 1 : 0;
        if (result.ok) {
          expect(result.signal.corr_id).toBe(sent.corr_id);
          expect(result.signal.agent_name).toBe(sent.agent_name);
        }
      }),
      { numRuns: 3_000 },
    );
    // The generator reaches valid signals too, not only refusals.
    expect(accepted).toBeGreaterThan(30);
  });

  it('a payload over the limit is oversized, whatever it holds', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 65, maxLength: 400 }), fc.integer({ min: 0, max: 64 }), (bytes, limit) => {
        expect(parseAndCheck(bytes, limit)).toMatchObject({ ok: false, reason: 'oversized' });
      }),
      { numRuns: 500 },
    );
  });
});
