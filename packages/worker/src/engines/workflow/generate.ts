import type { Rule, RulesDocumentInput } from './rules-schema.js';

/**
 * A valid rules document with `count` rules (at least 3), for tests and the benchmark.
 *
 * The first count − 3 rules are synthetic equity rules (`EQ:S<i>*` globs, regexes, risk levels,
 * momentum ranges, agents present, overrides and adjustments, in rotation); the last three are the
 * seed's routing (blocked, CRYPTO + high risk, CRYPTO), so that a crypto correlation walks the whole
 * list before it matches: the worst case for first-match-wins. Deterministic: the same count gives
 * the same document.
 */
export function generateRules(count: number): RulesDocumentInput {
  if (!Number.isInteger(count) || count < 3) throw new RangeError(`generateRules: count must be an integer ≥ 3, got ${count}`);
  const rules: Rule[] = [];
  for (let i = 0; i < count - 3; i++) rules.push(syntheticRule(i));
  rules.push(
    { name: 'risk-blocked', match: { risk_levels: ['blocked'] }, required_agents: ['risk'], channels: ['risk_monitor', 'audit'] },
    {
      name: 'crypto-high-risk',
      match: { instrument: 'CRYPTO:*', risk_levels: ['high'] },
      required_agents: ['risk'],
      channels: ['crypto_specialist', 'risk_monitor', 'audit'],
    },
    { name: 'crypto', match: { instrument: 'CRYPTO:*' }, required_agents: ['momentum', 'risk'], channels: ['execution', 'risk_monitor', 'audit'] },
  );
  return {
    version: 1,
    description: `generated: ${count} rules`,
    rules,
    default: { name: 'default', required_agents: ['momentum', 'risk'], channels: ['execution', 'risk_monitor', 'audit'] },
  };
}

const LEVELS = ['low', 'medium', 'high'] as const;

function syntheticRule(i: number): Rule {
  const base = { name: `eq-${i}`, required_agents: ['momentum', 'risk'], channels: ['execution', 'audit'] };
  switch (i % 5) {
    case 0:
      return { ...base, match: { instrument: `EQ:S${i}*` } };
    case 1:
      return { ...base, match: { instrument_regex: `^EQ:S${i}(\\.[A-Z]+)?$`, risk_levels: [LEVELS[i % 3]!] }, adjust: { size_multiplier: 0.5 } };
    case 2:
      return {
        ...base,
        match: { instrument: [`EQ:S${i}`, `EQ:S${i}.*`], momentum_confidence: { min: 0.2, max: 0.9 } },
        adjust: { confidence_multiplier: 0.9, max_size: 1000 },
      };
    case 3:
      return {
        ...base,
        match: { instrument: `EQ:S${i}?*`, agents_present: ['correlation'] },
        required_agents: ['momentum', 'risk', 'correlation'],
      };
    default:
      return { ...base, match: { instrument: `EQ:S${i}*`, risk_levels: ['high'] }, override: { action: 'monitor', reason: `eq_${i}_review` } };
  }
}
