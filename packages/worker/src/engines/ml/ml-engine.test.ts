import { describe, expect, it } from 'vitest';
import type { EnrichedSignal } from '@at-orchestrator/contracts';
import { DEFAULT_MODEL_FILE, MlEngine, loadModelFile } from './index.js';

type Level = 'low' | 'medium' | 'high' | 'blocked';
const model = loadModelFile(DEFAULT_MODEL_FILE);
const engine = new MlEngine(model, ['momentum', 'risk']);

function signals(c: { momentum?: readonly [number, number, string]; risk?: readonly [Level, number]; correlation?: number }): Record<string, EnrichedSignal> {
  const out: Record<string, EnrichedSignal> = {};
  if (c.momentum !== undefined) {
    const [confidence, strength, direction] = c.momentum;
    out.momentum = { corr_id: 'c', agent_name: 'momentum', analysis: { confidence, momentum_strength: strength, trend_direction: direction } } as EnrichedSignal;
  }
  if (c.risk !== undefined) {
    out.risk = { corr_id: 'c', agent_name: 'risk', analysis: { risk_level: c.risk[0], position_sizing: { recommended_size: c.risk[1] } } } as EnrichedSignal;
  }
  if (c.correlation !== undefined) {
    out.correlation = { corr_id: 'c', agent_name: 'correlation', analysis: { correlation_score: c.correlation } } as EnrichedSignal;
  }
  return out;
}
const decide = (c: Parameters<typeof signals>[0]) => engine.decide({ corrId: 'c', instrument: undefined, signals: signals(c), atDeadline: false });

describe('MlEngine with the shipped model', () => {
  const cases = [
    { name: 'strong momentum, low risk, confirming correlation → trade', c: { momentum: [0.9, 0.8, 'bullish'], risk: ['low', 800], correlation: 0.6 }, action: 'trade', reason: 'model_above_threshold', p: [0.95, 1] },
    { name: 'strong momentum, bearish, medium risk → trade short', c: { momentum: [0.9, 0.9, 'bearish'], risk: ['medium', 500] }, action: 'trade', reason: 'model_above_threshold', p: [0.5, 1] },
    { name: 'strong momentum but high risk and contrary correlation → monitor', c: { momentum: [0.8, 0.7, 'bullish'], risk: ['high', 200], correlation: -0.8 }, action: 'monitor', reason: 'model_below_threshold', p: [0, 0.2] },
    { name: 'weak momentum → monitor', c: { momentum: [0.2, 0.1, 'bullish'], risk: ['low', 1000] }, action: 'monitor', reason: 'model_below_threshold', p: [0, 0.1] },
    { name: 'blocked → no_trade, never scored', c: { momentum: [0.99, 1, 'bullish'], risk: ['blocked', 0] }, action: 'no_trade', reason: 'risk_blocked', p: [0, 0] },
    { name: 'no momentum, score above threshold → monitor (no direction)', c: { risk: ['low', 5], correlation: 1 }, action: 'monitor', reason: 'momentum_missing', p: [0.5, 1] },
  ] as const;

  it.each(cases)('$name', ({ c, action, reason, p }) => {
    const out = decide(c);
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(out.decision.action).toBe(action);
    expect(out.decision.reason).toBe(reason);
    expect(out.confidence).toBeGreaterThanOrEqual(p[0]);
    expect(out.confidence).toBeLessThanOrEqual(p[1]);
    expect(out.engineVersion).toBe('synthetic-lr-1');
    expect(out.channels).toEqual([]);
    if (action === 'trade') {
      expect(out.decision.direction).toBe(c.momentum?.[2]);
      expect(out.decision.size).toBe(c.risk[1]);
    } else {
      expect(out.decision.size).toBeUndefined();
    }
  });

  it('confidence is the model score p', () => {
    const s = signals({ momentum: [0.7, 0.5, 'bullish'], risk: ['medium', 300], correlation: 0.1 });
    const out = engine.decide({ corrId: 'c', instrument: undefined, signals: s, atDeadline: false });
    expect(out.ok && out.confidence).toBe(model.score(s));
  });

  it('needs risk: without it there is no decision', () => {
    expect(decide({ momentum: [0.9, 0.9, 'bullish'] })).toEqual({ ok: false, reason: 'risk_missing' });
  });

  it('required agents come from configuration', () => {
    expect(engine.requiredAgents()).toEqual(['momentum', 'risk']);
    expect(new MlEngine(model, ['risk']).requiredAgents()).toEqual(['risk']);
  });

  it('reads the features it was trained on', () => {
    const s = signals({ momentum: [0.5, 0.25, 'Bearish'], risk: ['high', Math.E - 1], correlation: -0.5 });
    expect(model.featureVector(s)).toEqual([0.5, 0.25, -1, 0, 0, 1, 1, 1, -0.5]);
    expect(model.featureVector({})).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('createEngine', () => {
  it('ORCHESTRATOR_TYPE=ml loads the shipped model by default; a bad model file stops the start', async () => {
    const { createEngine } = await import('../index.js');
    const ml = createEngine({ orchestratorType: 'ml', requiredAgents: ['momentum', 'risk'] });
    expect(ml.type).toBe('ml');
    const out = ml.decide({ corrId: 'c', instrument: undefined, signals: signals({ momentum: [0.9, 0.8, 'bullish'], risk: ['low', 800] }), atDeadline: false });
    expect(out.ok && out.engineVersion).toBe('synthetic-lr-1');
    expect(() => createEngine({ orchestratorType: 'ml', requiredAgents: [] }, { modelFile: '/nonexistent/model.json' })).toThrow(
      /model file \/nonexistent\/model\.json cannot be read/,
    );
  });
});
