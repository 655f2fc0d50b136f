import { describe, expect, it } from 'vitest';
import { ConfigError } from '@at-orchestrator/contracts';
import { RuleSet, RulesFileError } from './index.js';

const DEFAULT = 'default:\n  required_agents: [momentum, risk]\n  channels: [execution]\n';
const rule = (body: string, name = 'crypto-high') => `  - name: ${name}\n${body.replace(/^/gm, '    ')}\n`;
const file = (rules: string, dflt = DEFAULT) => `version: 1\nrules:\n${rules}${dflt}`;

function errorOf(text: string, source = 'rules.yaml'): RulesFileError {
  try {
    RuleSet.fromText(text, source);
  } catch (err) {
    expect(err).toBeInstanceOf(RulesFileError);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('CONFIG_INVALID');
    return err as RulesFileError;
  }
  throw new Error('expected the rules file to be rejected');
}

describe('rules file errors name the rule and the field', () => {
  const OK = 'match: { instrument: "CRYPTO:*" }\nrequired_agents: [risk]';
  const cases = [
    { name: 'bad risk level', text: file(rule('match: { risk_levels: [hihg] }\nrequired_agents: [risk]')), expect: ['rule "crypto-high" (rules[0])', 'field match.risk_levels[0]', 'low'] },
    { name: 'misspelt field', text: file(rule(`${OK}\nchanels: [audit]`)), expect: ['rule "crypto-high" (rules[0]): unknown field chanels'] },
    { name: 'misspelt match field', text: file(rule('match: { instrumnt: "X*" }\nrequired_agents: [risk]')), expect: ['rules[0]', 'field match', 'unknown field instrumnt'] },
    { name: 'second rule, by index and name', text: file(rule(OK) + rule('match: { instrument: "EQ:*" }\nrequired_agents: [momentum]', 'equities')), expect: ['rule "equities" (rules[1])', 'field required_agents', 'must include "risk"'] },
    { name: 'rule without a name: by index', text: file('  - match: { instrument: "EQ:*" }\n    required_agents: [risk]\n'), expect: ['rule rules[0], field name'] },
    { name: 'empty match', text: file(rule('match: {}\nrequired_agents: [risk]')), expect: ['rules[0]', 'field match', 'at least one condition'] },
    { name: 'bad regex', text: file(rule('match: { instrument_regex: "^(CRYPTO" }\nrequired_agents: [risk]')), expect: ['rules[0]', 'field match.instrument_regex', 'not a valid regular expression'] },
    { name: 'confidence out of range', text: file(rule('match: { momentum_confidence: { min: 1.5 } }\nrequired_agents: [risk]')), expect: ['field match.momentum_confidence.min', 'from 0 to 1'] },
    { name: 'confidence min > max', text: file(rule('match: { momentum_confidence: { min: 0.8, max: 0.2 } }\nrequired_agents: [risk]')), expect: ['field match.momentum_confidence', 'min is greater than max'] },
    { name: 'bad override action', text: file(rule(`${OK}\noverride: { action: buy, reason: x }`)), expect: ['field override.action'] },
    { name: 'override to trade without momentum required', text: file(rule(`${OK}\noverride: { action: trade, reason: x }`)), expect: ['field required_agents', 'direction from momentum'] },
    { name: 'negative size multiplier', text: file(rule(`${OK}\nadjust: { size_multiplier: -1 }`)), expect: ['field adjust.size_multiplier'] },
    { name: 'empty adjust', text: file(rule(`${OK}\nadjust: {}`)), expect: ['field adjust', 'at least one adjustment'] },
    { name: 'channel with a dot', text: file(rule(`${OK}\nchannels: [risk.monitor]`)), expect: ['field channels[0]', 'orchestrated.<channel>'] },
    { name: 'channel listed twice', text: file(rule(`${OK}\nchannels: [audit, audit]`)), expect: ['field channels', 'twice'] },
    { name: 'duplicate rule names', text: file(rule(OK) + rule(OK)), expect: ['rule "crypto-high" (rules[1])', 'field name', 'duplicates the name of rules[0]'] },
    { name: 'missing default rule', text: `rules:\n${rule(OK)}`, expect: ['field default', 'a default rule is required'] },
    { name: 'default rule with a match', text: file('', `default:\n  match: { instrument: "X" }\n  required_agents: [risk]\n`), expect: ['rule default: unknown field match'] },
    { name: 'default rule without risk', text: file('', 'default:\n  required_agents: [momentum]\n'), expect: ['rule default', 'field required_agents', 'must include "risk"'] },
    { name: 'unknown format version', text: `version: 2\n${DEFAULT}`, expect: ['field version'] },
    { name: 'not YAML', text: 'rules: [\n', expect: ['rules.yaml is not valid YAML'] },
    { name: 'empty file', text: '', expect: ['rules.yaml', 'is empty'] },
    { name: 'duplicate YAML key', text: `${DEFAULT}default:\n  required_agents: [risk]\n`, expect: ['not valid YAML'] },
  ] as const;

  it.each(cases)('$name', ({ text, expect: parts }) => {
    const err = errorOf(text);
    expect(err.message.startsWith('rules file rules.yaml ')).toBe(true);
    for (const part of parts) expect(err.message).toContain(part);
  });

  it('structured issues carry rule, position and field', () => {
    const err = errorOf(file(rule('match: { risk_levels: [hihg] }\nrequired_agents: [risk]')));
    expect(err.issues[0]).toMatchObject({ rule: 'crypto-high', at: 'rules[0]', field: 'match.risk_levels[0]' });
  });

  it('lists at most five problems and counts the rest', () => {
    const many = Array.from({ length: 8 }, (_, i) => rule('match: { risk_levels: [x] }\nrequired_agents: [risk]', `r${i}`)).join('');
    const err = errorOf(file(many));
    expect(err.issues).toHaveLength(8);
    expect(err.message).toContain('and 3 more');
  });

  it('JSON files are read as JSON, with JSON errors', () => {
    const err = errorOf('{"rules": [', 'rules.json');
    expect(err.message).toContain('rules.json is not valid JSON');
    const ok = RuleSet.fromText('{"default": {"required_agents": ["risk"]}}', 'rules.json');
    expect(ok.defaultRule).toMatchObject({ name: 'default', requiredAgents: ['risk'], channels: [] });
  });
});
