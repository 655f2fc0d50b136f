import { describe, expect, it } from 'vitest';
import type { EnrichedSignal } from '@at-orchestrator/contracts';
import { SimpleEngine, decideSimple } from './index.js';

const momentum = (confidence: number, direction = 'bullish', strength = 0.8) => ({
  momentum_strength: strength,
  confidence,
  trend_direction: direction,
});
const risk = (level: 'low' | 'medium' | 'high' | 'blocked', size = 100) => ({
  risk_level: level,
  position_sizing: { recommended_size: size },
});

describe('decideSimple (the seed rules)', () => {
  const cases = [
    { m: 0.9, r: 'blocked', action: 'no_trade', reason: 'risk_blocked', conf: 0 },
    { m: 0.9, r: 'low', action: 'trade', reason: 'high_confidence_momentum', conf: 0.9 },
    { m: 0.9, r: 'medium', action: 'trade', reason: 'high_confidence_momentum', conf: 0.9 * 0.8 },
    { m: 0.9, r: 'high', action: 'monitor', reason: 'insufficient_confidence', conf: 0.45 },
    { m: 0.7, r: 'low', action: 'monitor', reason: 'insufficient_confidence', conf: 0.7 }, // boundary: > 0.7, not >=
    { m: 0.7000001, r: 'low', action: 'trade', reason: 'high_confidence_momentum', conf: 0.7000001 },
    { m: 0.2, r: 'medium', action: 'monitor', reason: 'insufficient_confidence', conf: 0.2 * 0.8 },
    { m: 0, r: 'low', action: 'monitor', reason: 'insufficient_confidence', conf: 0 },
  ] as const;
  it.each(cases)('momentum $m, risk $r → $action', ({ m, r, action, reason, conf }) => {
    const out = decideSimple(momentum(m, 'bearish'), risk(r, 250));
    expect(out.decision.action).toBe(action);
    expect(out.decision.reason).toBe(reason);
    expect(out.confidence).toBeCloseTo(conf, 10);
    if (action === 'trade') {
      expect(out.decision.direction).toBe('bearish');
      expect(out.decision.size).toBe(250);
    } else {
      expect(out.decision.direction).toBeUndefined();
      expect(out.decision.size).toBeUndefined();
    }
  });

  it('partial without momentum: blocked → no_trade, otherwise monitor with confidence 0', () => {
    expect(decideSimple(undefined, risk('blocked')).decision.action).toBe('no_trade');
    const low = decideSimple(undefined, risk('low'));
    expect(low.decision).toEqual({ action: 'monitor', reason: 'insufficient_confidence' });
    expect(low.confidence).toBe(0);
  });
});

describe('SimpleEngine', () => {
  const engine = new SimpleEngine(['momentum', 'risk']);
  const sig = (agent: string, analysis: object): EnrichedSignal =>
    ({ corr_id: 'c1', agent_name: agent, analysis }) as EnrichedSignal;

  it('needs risk: without it there is no decision', () => {
    const out = engine.decide({ corrId: 'c1', instrument: undefined, atDeadline: true, signals: { momentum: sig('momentum', momentum(0.9)) } });
    expect(out).toEqual({ ok: false, reason: 'risk_missing' });
  });

  it('reports source signals as the seed did', () => {
    const out = engine.decide({
      corrId: 'c1',
      instrument: undefined,
      atDeadline: false,
      signals: { momentum: sig('momentum', momentum(0.9, 'bullish', 0.42)), risk: sig('risk', risk('low', 10)) },
    });
    expect(out.ok && out.sourceSignals).toEqual({ momentum: 0.42, risk: 'low' });
    expect(engine.requiredAgents()).toEqual(['momentum', 'risk']);
  });
});
