import { DECISION_SUBJECT as CONTRACT_DECISION_SUBJECT, SIGNAL_SUBJECT_PREFIX as CONTRACT_PREFIX, STORED_DECISION_SUBJECT as CONTRACT_STORED_SUBJECT, parseSignal } from '@at-orchestrator/contracts';
import { describe, expect, it } from 'vitest';
import { checkDecision, seedDecision } from './seed-rules.js';
import {
  DECISION_SUBJECT,
  STORED_DECISION_SUBJECT,
  decodeSeededCorrId,
  encodeSeededCorrId,
  planCorrelation,
  seededRandom,
  signalJson,
  SIGNAL_SUBJECT_PREFIX,
} from './synthetic.js';

describe('synthetic correlations', () => {
  it('use the subjects the contracts name (k6 cannot import contracts, so the names are repeated here)', () => {
    expect(SIGNAL_SUBJECT_PREFIX).toBe(CONTRACT_PREFIX);
    expect(DECISION_SUBJECT).toBe(CONTRACT_DECISION_SUBJECT);
    expect(STORED_DECISION_SUBJECT).toBe(CONTRACT_STORED_SUBJECT);
  });

  it('are rebuilt identically from the same seed', () => {
    const a = planCorrelation(seededRandom(42), 'mix', 5);
    const b = planCorrelation(seededRandom(42), 'mix', 5);
    expect(a).toEqual(b);
  });

  it('carry momentum and risk always, the correlation agent as asked, in varying order, with bounded gaps', () => {
    const rand = seededRandom(7);
    const firsts = new Set<string>();
    let three = 0;
    for (let i = 0; i < 2000; i += 1) {
      const plan = planCorrelation(rand, 'mix', 4);
      const agents = plan.signals.map((s) => s.agent);
      expect(agents).toEqual(expect.arrayContaining(['momentum', 'risk']));
      if (agents.length === 3) three += 1;
      firsts.add(agents[0]!);
      expect(plan.signals[0]!.offsetMs).toBe(0);
      plan.signals.slice(1).forEach((s, k) => {
        const gap = s.offsetMs - plan.signals[k]!.offsetMs;
        expect(gap).toBeGreaterThanOrEqual(0);
        expect(gap).toBeLessThanOrEqual(4);
      });
      const lastRequired = Math.max(...plan.signals.filter((s) => s.agent !== 'correlation').map((s) => s.offsetMs));
      expect(plan.lastRequiredOffsetMs).toBe(lastRequired);
    }
    expect(firsts).toEqual(new Set(['momentum', 'risk', 'correlation']));
    expect(three).toBeGreaterThan(800);
    expect(three).toBeLessThan(1200);
    expect(planCorrelation(rand, 2, 0).signals).toHaveLength(2);
    expect(planCorrelation(rand, 3, 0).signals).toHaveLength(3);
  });

  it('produce signals the contracts accept, and every branch of the seed rules', () => {
    const rand = seededRandom(1);
    const actions = new Set<string>();
    for (let i = 0; i < 500; i += 1) {
      const plan = planCorrelation(rand, 3, 1);
      actions.add(seedDecision(plan.momentum, plan.risk).action);
      for (const s of plan.signals) {
        const parsed = parseSignal(new TextEncoder().encode(signalJson(`c-${i}`, s, plan.instrument, new Date().toISOString())));
        expect(parsed.ok, JSON.stringify(parsed)).toBe(true);
      }
    }
    expect(actions).toEqual(new Set(['trade', 'monitor', 'no_trade']));
  });

  it('seeded corr_ids round-trip and belong to their run only', () => {
    const id = encodeSeededCorrId('k6', 'run1', 0xdeadbeef, 1_700_000_000_123);
    expect(id).toBe('k6-run1-deadbeef-1700000000123');
    expect(decodeSeededCorrId(id, 'k6', 'run1')).toEqual({ seed: 0xdeadbeef, lastRequiredAtMs: 1_700_000_000_123 });
    expect(decodeSeededCorrId(id, 'k6', 'run2')).toBeUndefined();
    expect(decodeSeededCorrId('k6-run1-xyz', 'k6', 'run1')).toBeUndefined();
  });
});

describe('seed rules (the oracle)', () => {
  const m = (confidence: number, trend_direction = 'bullish') => ({ confidence, trend_direction });
  const r = (risk_level: string, recommended_size = 100) => ({ risk_level, position_sizing: { recommended_size } });

  it.each([
    [m(0.9), r('blocked'), { action: 'no_trade', reason: 'risk_blocked', confidence: 0 }],
    [m(0.9, 'bearish'), r('medium', 250), { action: 'trade', direction: 'bearish', size: 250, reason: 'high_confidence_momentum', confidence: 0.9 * 0.8 }],
    [m(0.7), r('low'), { action: 'monitor', reason: 'insufficient_confidence', confidence: 0.7 }],
    [m(0.95), r('high'), { action: 'monitor', reason: 'insufficient_confidence', confidence: 0.475 }],
    [m(0.8), r('unknown'), { action: 'monitor', reason: 'insufficient_confidence', confidence: 0.4 }],
  ])('%j + %j', (momentum, risk, expected) => {
    expect(seedDecision(momentum, risk)).toEqual(expected);
  });

  it('accepts the matching decision and names the first difference otherwise', () => {
    const expected = seedDecision(m(0.9), r('low', 10));
    const good = { corr_id: 'c', decision: { action: 'trade', direction: 'bullish', size: 10, reason: 'high_confidence_momentum' }, confidence: 0.9 };
    expect(checkDecision(expected, good)).toBeUndefined();
    expect(checkDecision(expected, { ...good, status: 'complete' })).toBeUndefined();
    expect(checkDecision(expected, { ...good, status: 'partial' })).toMatch(/status partial/);
    expect(checkDecision(expected, { ...good, confidence: 0.8 })).toMatch(/confidence/);
    expect(checkDecision(expected, { ...good, decision: { ...good.decision, size: 11 } })).toMatch(/size 11/);
    expect(checkDecision(expected, { ...good, decision: { ...good.decision, action: 'monitor' } })).toMatch(/action monitor/);
    expect(checkDecision(seedDecision(m(0.1), r('low')), { decision: { action: 'monitor', reason: 'insufficient_confidence', size: 5 }, confidence: 0.1 })).toMatch(/size 5/);
    expect(checkDecision(expected, null)).toMatch(/not a JSON object/);
  });
});
