import { ConfigError, DecisionAction, RiskLevel } from '@at-orchestrator/contracts';
import { z } from 'zod';

/**
 * The workflow rules file, as zod schemas. Objects are strict so that a misspelt key (`chanels`) is
 * an error that names it rather than a rule that silently does less than its author meant.
 * docs/engines.md describes every field; keep the two in step.
 */

const AGENT = /^[a-z0-9][a-z0-9_-]*$/i;
const agentName = z.string().max(64).regex(AGENT, 'an agent name: letters, digits, "_" or "-"');
const agentSet = z
  .array(agentName)
  .min(1, 'at least one agent')
  .refine((list) => new Set(list).size === list.length, 'lists an agent twice');

/** A channel becomes one subject token (`orchestrated.<channel>`): no dots, spaces or wildcards. */
export const ChannelName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/i, 'a channel name: letters, digits, "_" or "-" (it becomes the subject orchestrated.<channel>)');

const ruleName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, 'a rule name: letters, digits, "_", "-", ".", ":" (at most 128)');

const regexSource = z.string().min(1).superRefine((source, ctx) => {
  try {
    new RegExp(source, 'u');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${(err as Error).message}` });
  }
});

const unit = z.number().min(0, 'a number from 0 to 1').max(1, 'a number from 0 to 1');

export const RuleMatch = z
  .strictObject({
    /** Glob over the instrument (`*` any run of characters, `?` one character), or a list: any of them. */
    instrument: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /** A regular expression over the instrument (JavaScript syntax, unicode mode). */
    instrument_regex: regexSource.optional(),
    /** The risk agent's level is one of these (a rule with this condition needs risk to have reported). */
    risk_levels: z.array(RiskLevel).min(1).optional(),
    /** All of these agents have reported. */
    agents_present: agentSet.optional(),
    /** The momentum agent's confidence is within [min, max] (inclusive; needs momentum to have reported). */
    momentum_confidence: z
      .strictObject({ min: unit.optional(), max: unit.optional() })
      .refine((r) => r.min !== undefined || r.max !== undefined, 'give min, max or both')
      .refine((r) => r.min === undefined || r.max === undefined || r.min <= r.max, 'min is greater than max')
      .optional(),
  })
  .refine(
    (m) => Object.values(m).some((v) => v !== undefined),
    'needs at least one condition (a rule that matches everything is the default rule\'s job)',
  );
export type RuleMatch = z.infer<typeof RuleMatch>;

/** Replaces the base decision's action and reason. It never lifts a risk block. */
export const RuleOverride = z.strictObject({
  action: DecisionAction,
  reason: z.string().min(1).max(128),
});
export type RuleOverride = z.infer<typeof RuleOverride>;

/** Scales the base decision. Applied after an override. */
export const RuleAdjust = z
  .strictObject({
    /** Multiplies the confidence (the result is clamped to [0, 1]). */
    confidence_multiplier: z.number().min(0).max(100).optional(),
    /** Multiplies a trade's size. */
    size_multiplier: z.number().min(0).max(1_000_000).optional(),
    /** Caps a trade's size. */
    max_size: z.number().min(0).optional(),
    /** A trade whose (adjusted) confidence is below this becomes monitor / below_rule_confidence. */
    min_trade_confidence: unit.optional(),
  })
  .refine((a) => Object.values(a).some((v) => v !== undefined), 'needs at least one adjustment');
export type RuleAdjust = z.infer<typeof RuleAdjust>;

const ruleBody = {
  description: z.string().max(1000).optional(),
  /** Agents that must have reported before an early decision (before the deadline). */
  required_agents: agentSet.refine(
    (list) => list.includes('risk'),
    'must include "risk": no decision is possible without the risk analysis',
  ),
  override: RuleOverride.optional(),
  adjust: RuleAdjust.optional(),
  /** Fan-out channels beyond orchestrated.decision. */
  channels: z
    .array(ChannelName)
    .max(32)
    .refine((list) => new Set(list).size === list.length, 'lists a channel twice')
    .default([]),
};

const tradeNeedsMomentum = (r: { override?: RuleOverride | undefined; required_agents: string[] }) =>
  r.override?.action !== 'trade' || r.required_agents.includes('momentum');
const tradeNeedsMomentumIssue = {
  message: 'an override to trade takes its direction from momentum: add "momentum" to required_agents',
  path: ['required_agents'],
};

export const Rule = z
  .strictObject({ name: ruleName, match: RuleMatch, ...ruleBody })
  .refine(tradeNeedsMomentum, tradeNeedsMomentumIssue);
export type Rule = z.input<typeof Rule>;

export const DefaultRule = z
  .strictObject({ name: ruleName.default('default'), ...ruleBody }, {
    error: (issue) =>
      issue.input === undefined ? 'a default rule is required (it decides when no rule matches)' : 'an object (the default rule)',
  })
  .refine(tradeNeedsMomentum, tradeNeedsMomentumIssue);
export type DefaultRule = z.input<typeof DefaultRule>;

export const MAX_RULES = 10_000;

export const RulesDocument = z
  .strictObject({
    /** Format version of the file; 1 is the only one so far. */
    version: z.literal(1).default(1),
    description: z.string().max(4000).optional(),
    /** May be empty (or null: `rules:` with every rule commented out); the default rule then decides everything. */
    rules: z
      .array(Rule)
      .max(MAX_RULES)
      .nullish()
      .transform((rules) => rules ?? []),
    default: DefaultRule,
  })
  .superRefine((doc, ctx) => {
    const seen = new Map<string, number>();
    doc.rules.forEach((rule, i) => {
      const first = seen.get(rule.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `duplicates the name of rules[${first}]` });
      } else seen.set(rule.name, i);
    });
    if (seen.has(doc.default.name)) {
      ctx.addIssue({ code: 'custom', path: ['default', 'name'], message: 'is also the name of a rule in rules' });
    }
  });
/** What a rules file holds, as written (defaults not yet applied). */
export type RulesDocumentInput = z.input<typeof RulesDocument>;
/** A validated rules file, defaults applied. */
export type RulesDocument = z.output<typeof RulesDocument>;

export interface RuleIssue {
  /** The rule's name when it has a readable one. */
  readonly rule?: string;
  /** `rules[3]` or `default`; absent for top-level fields. */
  readonly at?: string;
  /** The field inside the rule (or the file), as a path: `match.risk_levels[0]`; empty for the rule itself. */
  readonly field: string;
  readonly message: string;
}

/** A rules file that cannot be used. `issues` names each rule and field; the message lists them. */
export class RulesFileError extends ConfigError {
  readonly issues: readonly RuleIssue[];
  /** `problem` continues the sentence "rules file <source> …": "is not valid YAML: …". */
  constructor(source: string, problem: string, issues: readonly RuleIssue[] = []) {
    super(`rules file ${source} ${problem}`);
    this.name = 'RulesFileError';
    this.issues = issues;
  }
}

/** Validates a parsed rules document; a bad one throws RulesFileError naming rule and field. */
export function validateRulesDocument(raw: unknown, source: string): RulesDocument {
  const parsed = RulesDocument.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => describeIssue(raw, issue));
  const shown = issues.slice(0, 5).map(issueText);
  const more = issues.length > 5 ? `; and ${issues.length - 5} more` : '';
  throw new RulesFileError(source, `is not valid: ${shown.join('; ')}${more}`, issues);
}

function describeIssue(raw: unknown, issue: z.core.$ZodIssue): RuleIssue {
  const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  if (path[0] === 'rules' && typeof path[1] === 'number') {
    const name = readName(raw, ['rules', path[1]]);
    return { ...(name === undefined ? {} : { rule: name }), at: `rules[${path[1]}]`, field: fieldPath(path.slice(2)), message };
  }
  // A missing default is a top-level problem; anything inside it belongs to the default rule.
  if (path[0] === 'default' && (path.length > 1 || issue.code !== 'invalid_type')) {
    const name = readName(raw, ['default']) ?? 'default';
    return { rule: name, at: 'default', field: fieldPath(path.slice(1)), message };
  }
  return { field: fieldPath(path), message };
}

function issueText(i: RuleIssue): string {
  const where = i.at === undefined ? '' : i.rule !== undefined && i.rule !== i.at ? `rule "${i.rule}" (${i.at})` : `rule ${i.at}`;
  if (i.field === '') return `${where === '' ? 'the file' : where}: ${i.message}`;
  return `${where === '' ? '' : `${where}, `}field ${i.field}: ${i.message}`;
}

/** `match.risk_levels[0]`; empty for the rule (or file) itself. */
function fieldPath(path: ReadonlyArray<string | number>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function readName(raw: unknown, path: ReadonlyArray<string | number>): string | undefined {
  let node: unknown = raw;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  if (typeof node !== 'object' || node === null) return undefined;
  const name = (node as { name?: unknown }).name;
  return typeof name === 'string' && name.length > 0 && name.length <= 128 ? name : undefined;
}
