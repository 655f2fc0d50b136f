import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EnrichedSignal } from '@at-orchestrator/contracts';
import { DEFAULT_RULES_FILE, RuleSet, WorkflowEngine, generateRules, loadRulesFile } from './index.js';
import type { Rule, RulesDocumentInput } from './rules-schema.js';

type Level = 'low' | 'medium' | 'high' | 'blocked';
interface Case {
  readonly instrument?: string;
  readonly momentum?: number;
  readonly risk?: Level;
  readonly correlation?: boolean;
}

const momentumSignal = (confidence: number, instrument?: string): EnrichedSignal =>
  ({
    corr_id: 'c1',
    agent_name: 'momentum',
    ...(instrument === undefined ? {} : { instrument }),
    analysis: { momentum_strength: 0.8, confidence, trend_direction: 'bullish' },
  }) as EnrichedSignal;
const riskSignal = (level: Level, size = 1500): EnrichedSignal =>
  ({ corr_id: 'c1', agent_name: 'risk', analysis: { risk_level: level, position_sizing: { recommended_size: size } } }) as EnrichedSignal;
const correlationSignal = (): EnrichedSignal => ({ corr_id: 'c1', agent_name: 'correlation', analysis: { correlation_score: 0.4 } }) as EnrichedSignal;

function signalsOf(c: Case): Record<string, EnrichedSignal> {
  const out: Record<string, EnrichedSignal> = {};
  if (c.momentum !== undefined) out.momentum = momentumSignal(c.momentum);
  if (c.risk !== undefined) out.risk = riskSignal(c.risk);
  if (c.correlation === true) out.correlation = correlationSignal();
  return out;
}
const input = (c: Case) => ({ corrId: 'c1', instrument: c.instrument, signals: signalsOf(c), atDeadline: false });

describe('the shipped example rules (the seed routing example)', () => {
  const engine = new WorkflowEngine(loadRulesFile(DEFAULT_RULES_FILE));
  const FAN_OUT = ['execution', 'risk_monitor', 'audit'];

  const cases = [
    // The seed's conditional routing: CRYPTO and high risk → the specialised handler, not execution.
    { name: 'CRYPTO + high risk → specialised handler', c: { instrument: 'CRYPTO:BTC-USD', momentum: 0.9, risk: 'high' }, rule: 'crypto-high-risk', action: 'monitor', reason: 'insufficient_confidence', channels: ['crypto_specialist', 'risk_monitor', 'audit'] },
    { name: 'CRYPTO + low risk → standard handler', c: { instrument: 'CRYPTO:ETH-USD', momentum: 0.9, risk: 'low' }, rule: 'crypto', action: 'trade', reason: 'high_confidence_momentum', channels: FAN_OUT },
    { name: 'CRYPTO + medium risk, middling momentum', c: { instrument: 'CRYPTO:ETH-USD', momentum: 0.5, risk: 'medium' }, rule: 'crypto', action: 'monitor', reason: 'insufficient_confidence', channels: FAN_OUT },
    { name: 'CRYPTO + weak momentum → override no_trade', c: { instrument: 'CRYPTO:SOL-USD', momentum: 0.2, risk: 'low' }, rule: 'crypto-weak-momentum', action: 'no_trade', reason: 'weak_crypto_momentum', channels: FAN_OUT },
    { name: 'blocked beats every instrument rule', c: { instrument: 'CRYPTO:BTC-USD', momentum: 0.9, risk: 'blocked' }, rule: 'risk-blocked', action: 'no_trade', reason: 'risk_blocked', channels: ['risk_monitor', 'audit'] },
    { name: 'equity trade is capped at 1000', c: { instrument: 'EQ:AAPL', momentum: 0.9, risk: 'low', correlation: true }, rule: 'equities', action: 'trade', reason: 'high_confidence_momentum', channels: FAN_OUT, size: 1000 },
    { name: 'equity below the rule confidence → monitor', c: { instrument: 'EQ:AAPL', momentum: 0.9, risk: 'medium', correlation: true }, rule: 'equities', action: 'monitor', reason: 'below_rule_confidence', channels: FAN_OUT },
    { name: 'other instruments → default fan-out', c: { instrument: 'FX:EUR/USD', momentum: 0.9, risk: 'low' }, rule: 'default', action: 'trade', reason: 'high_confidence_momentum', channels: FAN_OUT, size: 1500 },
    { name: 'no instrument → default', c: { momentum: 0.9, risk: 'medium' }, rule: 'default', action: 'trade', reason: 'high_confidence_momentum', channels: FAN_OUT },
    { name: 'lower-case instrument is not CRYPTO (case-sensitive)', c: { instrument: 'crypto:btc-usd', momentum: 0.9, risk: 'high' }, rule: 'default', action: 'monitor', reason: 'insufficient_confidence', channels: FAN_OUT },
  ] as const;

  it.each(cases)('$name', ({ c, rule, action, reason, channels, ...rest }) => {
    const out = engine.decide(input(c));
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(out.rule).toBe(rule);
    expect(out.decision.action).toBe(action);
    expect(out.decision.reason).toBe(reason);
    expect(out.channels).toEqual(channels);
    expect(out.engineVersion).toMatch(/^rules-[0-9a-f]{12}$/);
    if ('size' in rest) expect(out.decision.size).toBe(rest.size);
    expect(out.sourceSignals.risk).toBe(c.risk);
  });

  const required = [
    { name: 'crypto, nothing yet → momentum + risk', c: { instrument: 'CRYPTO:BTC-USD' }, agents: ['momentum', 'risk'] },
    { name: 'crypto, momentum only → momentum + risk', c: { instrument: 'CRYPTO:BTC-USD', momentum: 0.9 }, agents: ['momentum', 'risk'] },
    { name: 'crypto, risk says high → risk alone decides', c: { instrument: 'CRYPTO:BTC-USD', risk: 'high' }, agents: ['risk'] },
    { name: 'anything blocked → risk alone decides', c: { instrument: 'EQ:MSFT', risk: 'blocked' }, agents: ['risk'] },
    { name: 'equities wait for correlation', c: { instrument: 'EQ:MSFT', momentum: 0.9 }, agents: ['momentum', 'risk', 'correlation'] },
    { name: 'no instrument → default set', c: {}, agents: ['momentum', 'risk'] },
  ] as const;

  it.each(required)('required agents: $name', ({ c, agents }) => {
    expect(engine.requiredAgents({ instrument: 'instrument' in c ? c.instrument : undefined, signals: signalsOf(c) })).toEqual(agents);
  });

  it('needs risk: without it there is no decision', () => {
    expect(engine.decide(input({ instrument: 'CRYPTO:BTC-USD', momentum: 0.9 }))).toEqual({ ok: false, reason: 'risk_missing' });
  });

  it('reads the instrument from the signals when the input has none', () => {
    const signals = { momentum: momentumSignal(0.9, 'CRYPTO:BTC-USD'), risk: riskSignal('high') };
    const out = engine.decide({ corrId: 'c1', instrument: undefined, signals, atDeadline: true });
    expect(out.ok && out.rule).toBe('crypto-high-risk');
  });

  it('never changes the agents\' analysis', () => {
    const i = input({ instrument: 'EQ:AAPL', momentum: 0.9, risk: 'low', correlation: true });
    const before = JSON.stringify(i.signals);
    engine.decide(i);
    expect(JSON.stringify(i.signals)).toBe(before);
  });

  it('the JSON example holds the same rules as the YAML one (same version)', () => {
    const json = RuleSet.fromText(readFileSync(new URL('../../../../../examples/workflow/rules.json', import.meta.url), 'utf8'), 'rules.json');
    expect(json.version).toBe(engine.rules.version);
    expect(json.rules.map((r) => r.name)).toEqual(engine.rules.rules.map((r) => r.name));
  });
});

const doc = (rules: RulesDocumentInput['rules'], dflt: Partial<RulesDocumentInput['default']> = {}): RulesDocumentInput => ({
  rules,
  default: { required_agents: ['momentum', 'risk'], channels: ['execution'], ...dflt },
});
const engineFor = (d: RulesDocumentInput) => new WorkflowEngine(RuleSet.fromDocument(d));

describe('matching', () => {
  it('first match wins, in file order', () => {
    const engine = engineFor(
      doc([
        { name: 'first', match: { instrument: 'EQ:*' }, required_agents: ['risk'], channels: ['a'] },
        { name: 'second', match: { instrument: 'EQ:AAPL' }, required_agents: ['risk'], channels: ['b'] },
      ]),
    );
    const out = engine.decide(input({ instrument: 'EQ:AAPL', momentum: 0.9, risk: 'low' }));
    expect(out.ok && [out.rule, out.channels]).toEqual(['first', ['a']]);
  });

  it('the default rule decides when nothing matches, with its own name, set and channels', () => {
    const engine = engineFor(doc([{ name: 'eq', match: { instrument: 'EQ:*' }, required_agents: ['risk'] }], { name: 'fallback', channels: ['audit'] }));
    const out = engine.decide(input({ instrument: 'CRYPTO:X', momentum: 0.9, risk: 'low' }));
    expect(out.ok && [out.rule, out.channels, out.decision.action]).toEqual(['fallback', ['audit'], 'trade']);
    expect(engine.requiredAgents({ instrument: 'CRYPTO:X', signals: {} })).toEqual(['momentum', 'risk']);
  });

  const conditions = [
    { name: 'glob * crosses "/"', match: { instrument: 'FX:*' }, c: { instrument: 'FX:EUR/USD' }, hit: true },
    { name: 'glob ? is one character', match: { instrument: 'EQ:?' }, c: { instrument: 'EQ:AB' }, hit: false },
    { name: 'glob dots are literal', match: { instrument: 'EQ:A.B' }, c: { instrument: 'EQ:AxB' }, hit: false },
    { name: 'glob is anchored', match: { instrument: 'BTC*' }, c: { instrument: 'CRYPTO:BTC-USD' }, hit: false },
    { name: 'glob list: any of', match: { instrument: ['EQ:*', 'CRYPTO:*'] }, c: { instrument: 'CRYPTO:BTC' }, hit: true },
    { name: 'regex', match: { instrument_regex: '^CRYPTO:(BTC|ETH)-' }, c: { instrument: 'CRYPTO:ETH-USD' }, hit: true },
    { name: 'glob and regex both apply', match: { instrument: 'CRYPTO:*', instrument_regex: 'USD$' }, c: { instrument: 'CRYPTO:ETH-EUR' }, hit: false },
    { name: 'instrument condition, no instrument', match: { instrument: '*' }, c: {}, hit: false },
    { name: 'risk level listed', match: { risk_levels: ['medium', 'high'] }, c: { risk: 'high' }, hit: true },
    { name: 'risk level not listed', match: { risk_levels: ['medium'] }, c: { risk: 'low' }, hit: false },
    { name: 'risk condition before risk reported', match: { risk_levels: ['low'] }, c: { momentum: 0.5 }, hit: false },
    { name: 'agents present: all of them', match: { agents_present: ['momentum', 'correlation'] }, c: { momentum: 0.5, correlation: true }, hit: true },
    { name: 'agents present: one missing', match: { agents_present: ['momentum', 'correlation'] }, c: { momentum: 0.5 }, hit: false },
    { name: 'confidence min is inclusive', match: { momentum_confidence: { min: 0.5 } }, c: { momentum: 0.5 }, hit: true },
    { name: 'confidence max is inclusive', match: { momentum_confidence: { max: 0.5 } }, c: { momentum: 0.5 }, hit: true },
    { name: 'confidence outside range', match: { momentum_confidence: { min: 0.2, max: 0.4 } }, c: { momentum: 0.5 }, hit: false },
    { name: 'confidence condition before momentum reported', match: { momentum_confidence: { max: 1 } }, c: { risk: 'low' }, hit: false },
  ] satisfies Array<{ name: string; match: Rule['match']; c: Case; hit: boolean }>;

  it.each(conditions)('$name', ({ match, c, hit }) => {
    const engine = engineFor(doc([{ name: 'r', match, required_agents: ['risk'] }]));
    expect(engine.matchRule({ instrument: 'instrument' in c ? c.instrument : undefined, signals: signalsOf(c) }).name).toBe(hit ? 'r' : 'default');
  });
});

describe('override and adjust', () => {
  const rows = [
    { name: 'override to monitor', rule: { override: { action: 'monitor', reason: 'manual_review' } }, c: { momentum: 0.9, risk: 'low' }, action: 'monitor', reason: 'manual_review', confidence: 0.9 },
    { name: 'override to trade takes momentum direction and risk size', rule: { override: { action: 'trade', reason: 'forced' }, required_agents: ['momentum', 'risk'] }, c: { momentum: 0.3, risk: 'high' }, action: 'trade', reason: 'forced', size: 1500, confidence: 0.15 },
    { name: 'override to trade without momentum → monitor', rule: { override: { action: 'trade', reason: 'forced' }, required_agents: ['momentum', 'risk'] }, c: { risk: 'low' }, action: 'monitor', reason: 'override_trade_needs_momentum', confidence: 0 },
    { name: 'no override lifts a risk block', rule: { override: { action: 'trade', reason: 'forced' }, required_agents: ['momentum', 'risk'] }, c: { momentum: 0.9, risk: 'blocked' }, action: 'no_trade', reason: 'risk_blocked', confidence: 0 },
    { name: 'confidence multiplier', rule: { adjust: { confidence_multiplier: 0.5 } }, c: { momentum: 0.9, risk: 'low' }, action: 'trade', reason: 'high_confidence_momentum', size: 1500, confidence: 0.45 },
    { name: 'confidence is clamped to 1', rule: { adjust: { confidence_multiplier: 3 } }, c: { momentum: 0.9, risk: 'low' }, action: 'trade', reason: 'high_confidence_momentum', size: 1500, confidence: 1 },
    { name: 'size multiplier', rule: { adjust: { size_multiplier: 0.5 } }, c: { momentum: 0.9, risk: 'low' }, action: 'trade', reason: 'high_confidence_momentum', size: 750, confidence: 0.9 },
    { name: 'size multiplier then cap', rule: { adjust: { size_multiplier: 2, max_size: 2000 } }, c: { momentum: 0.9, risk: 'low' }, action: 'trade', reason: 'high_confidence_momentum', size: 2000, confidence: 0.9 },
    { name: 'size adjusted to zero → monitor', rule: { adjust: { max_size: 0 } }, c: { momentum: 0.9, risk: 'low' }, action: 'monitor', reason: 'size_adjusted_to_zero', confidence: 0.9 },
    { name: 'min trade confidence (after multiplier)', rule: { adjust: { confidence_multiplier: 0.8, min_trade_confidence: 0.75 } }, c: { momentum: 0.9, risk: 'low' }, action: 'monitor', reason: 'below_rule_confidence', confidence: 0.72 },
    { name: 'adjust leaves a monitor alone except confidence', rule: { adjust: { size_multiplier: 5, confidence_multiplier: 0.5 } }, c: { momentum: 0.5, risk: 'low' }, action: 'monitor', reason: 'insufficient_confidence', confidence: 0.25 },
    { name: 'override then adjust', rule: { override: { action: 'trade', reason: 'forced' }, required_agents: ['momentum', 'risk'], adjust: { max_size: 10 } }, c: { momentum: 0.5, risk: 'medium' }, action: 'trade', reason: 'forced', size: 10, confidence: 0.4 },
  ] satisfies Array<{ name: string; rule: Partial<Rule>; c: Case; action: string; reason: string; size?: number; confidence: number }>;

  it.each(rows)('$name', ({ rule, c, action, reason, confidence, ...rest }) => {
    const engine = engineFor(doc([{ name: 'r', match: { risk_levels: ['low', 'medium', 'high', 'blocked'] }, required_agents: ['risk'], ...rule }]));
    const out = engine.decide(input(c));
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(out.rule).toBe('r');
    expect(out.decision.action).toBe(action);
    expect(out.decision.reason).toBe(reason);
    expect(out.confidence).toBeCloseTo(confidence, 10);
    if (action === 'trade') {
      expect(out.decision.direction).toBe('bullish');
      expect(out.decision.size).toBe('size' in rest ? rest.size : undefined);
    } else {
      expect(out.decision.direction).toBeUndefined();
      expect(out.decision.size).toBeUndefined();
    }
  });
});

describe('500 rules', () => {
  const rules = RuleSet.fromDocument(generateRules(500), 'generated');
  const engine = new WorkflowEngine(rules);

  it('generates a valid file of exactly that many rules, deterministically', () => {
    expect(rules.rules).toHaveLength(500);
    expect(RuleSet.fromDocument(generateRules(500)).version).toBe(rules.version);
  });

  it('a crypto correlation walks the whole list and matches the seed routing at the end', () => {
    const out = engine.decide(input({ instrument: 'CRYPTO:BTC-USD', momentum: 0.9, risk: 'high' }));
    expect(out.ok && [out.rule, out.channels]).toEqual(['crypto-high-risk', ['crypto_specialist', 'risk_monitor', 'audit']]);
  });

  it('synthetic rules match their instruments', () => {
    expect(engine.matchRule({ instrument: 'EQ:S10X', signals: signalsOf({ risk: 'low' }) }).name).toBe('eq-10');
    expect(engine.matchRule({ instrument: 'EQ:S4.N', signals: signalsOf({ risk: 'high' }) }).name).toBe('eq-4');
    expect(engine.matchRule({ instrument: 'EQ:S4.N', signals: signalsOf({ risk: 'low' }) }).name).toBe('default');
  });

  it('decides many correlations across many instruments consistently (candidate cache)', () => {
    const seen = new Map<string, string>();
    for (let i = 0; i < 20_000; i++) {
      const instrument = i % 3 === 0 ? `CRYPTO:C${i % 50}` : `EQ:S${i % 600}`;
      const out = engine.decide(input({ instrument, momentum: 0.9, risk: 'low' }));
      if (!out.ok) throw new Error('expected a decision');
      const previous = seen.get(instrument);
      if (previous !== undefined) expect(out.rule).toBe(previous);
      seen.set(instrument, out.rule);
    }
    expect(seen.get('CRYPTO:C0')).toBe('crypto');
  });
});

describe('createEngine', () => {
  it('ORCHESTRATOR_TYPE=workflow loads the shipped example rules by default, or the given file', async () => {
    const { createEngine } = await import('../index.js');
    const engine = createEngine({ orchestratorType: 'workflow', requiredAgents: ['momentum', 'risk'] });
    expect(engine.type).toBe('workflow');
    expect(engine.requiredAgents({ instrument: 'EQ:AAPL', signals: {} })).toEqual(['momentum', 'risk', 'correlation']);
    const json = new URL('../../../../../examples/workflow/rules.json', import.meta.url).pathname;
    expect((createEngine({ orchestratorType: 'workflow', requiredAgents: [] }, { rulesFile: json }) as WorkflowEngine).rules.version).toBe(
      (engine as WorkflowEngine).rules.version,
    );
    expect(() => createEngine({ orchestratorType: 'workflow', requiredAgents: [] }, { rulesFile: '/nonexistent/rules.yaml' })).toThrow(
      /rules file \/nonexistent\/rules\.yaml cannot be read/,
    );
    expect(createEngine({ orchestratorType: 'simple', requiredAgents: ['risk'] }).requiredAgents({ instrument: undefined, signals: {} })).toEqual(['risk']);
  });
});
