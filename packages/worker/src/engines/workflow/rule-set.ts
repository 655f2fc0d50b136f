import { createHash } from 'node:crypto';
import type { EnrichedSignal, MomentumSignal, RiskLevel, RiskSignal } from '@at-orchestrator/contracts';
import { parseDocument } from 'yaml';
import { RulesFileError, validateRulesDocument } from './rules-schema.js';
import type { RuleAdjust, RuleOverride, RulesDocument } from './rules-schema.js';

/** One rule, compiled for matching: patterns turned into functions, lists into sets. */
export interface CompiledRule {
  readonly name: string;
  /** Where the rule sits in its file: `rules[3]` or `default`. */
  readonly at: string;
  readonly requiredAgents: readonly string[];
  readonly override: RuleOverride | undefined;
  readonly adjust: RuleAdjust | undefined;
  readonly channels: readonly string[];
  /** Undefined: the rule does not look at the instrument. */
  readonly instrument: ((instrument: string) => boolean) | undefined;
  readonly riskLevels: ReadonlySet<RiskLevel> | undefined;
  readonly agentsPresent: readonly string[];
  readonly momentumConfidence: { readonly min: number; readonly max: number } | undefined;
}

export type RulesFormat = 'yaml' | 'json';

type Signals = Readonly<Record<string, EnrichedSignal | undefined>>;

/** Instruments seen per rule set before the candidate cache starts over (it is a cache, not state). */
const CANDIDATE_CACHE_LIMIT = 4096;
const NO_INSTRUMENT = '\u0000';

/**
 * A validated, compiled rules file. Immutable: a reload builds a new RuleSet and swaps it in whole,
 * so a decision never sees half of one file and half of another.
 *
 * Matching 500 rules stays cheap because the instrument patterns (the only costly test) are run once
 * per instrument and cached as the list of rules that can match it; the remaining tests are a set
 * lookup and two comparisons per candidate.
 */
export class RuleSet {
  /** `rules-` + the first 12 hex digits of sha256 over the validated rules (same rules, same version, YAML or JSON). */
  readonly version: string;
  readonly rules: readonly CompiledRule[];
  readonly defaultRule: CompiledRule;
  readonly document: RulesDocument;
  private readonly candidates = new Map<string, Int32Array>();

  private constructor(document: RulesDocument) {
    this.document = document;
    this.version = `rules-${createHash('sha256').update(canonicalJson(document)).digest('hex').slice(0, 12)}`;
    this.rules = Object.freeze(document.rules.map((rule, i) => compileRule(rule, `rules[${i}]`)));
    this.defaultRule = compileRule(document.default, 'default');
  }

  /** Validates a parsed document (an object, e.g. from generateRules); throws RulesFileError. */
  static fromDocument(raw: unknown, source = '(in memory)'): RuleSet {
    return new RuleSet(validateRulesDocument(raw, source));
  }

  /**
   * Parses and validates the text of a rules file; throws RulesFileError naming the rule and field.
   * The format is taken from the source's extension (.json, else YAML); YAML also reads JSON.
   */
  static fromText(text: string, source = '(in memory)', format: RulesFormat = formatOf(source)): RuleSet {
    return RuleSet.fromDocument(parseRulesText(text, source, format), source);
  }

  /** The first rule that matches what is present so far, or the default rule. */
  match(instrument: string | undefined, signals: Signals): CompiledRule {
    const risk = (signals.risk as RiskSignal | undefined)?.analysis.risk_level;
    const momentum = (signals.momentum as MomentumSignal | undefined)?.analysis.confidence;
    const candidates = this.candidatesFor(instrument ?? instrumentOf(signals));
    for (let c = 0; c < candidates.length; c++) {
      const rule = this.rules[candidates[c]!]!;
      if (rule.riskLevels !== undefined && (risk === undefined || !rule.riskLevels.has(risk))) continue;
      const range = rule.momentumConfidence;
      if (range !== undefined && (momentum === undefined || momentum < range.min || momentum > range.max)) continue;
      if (!allPresent(rule.agentsPresent, signals)) continue;
      return rule;
    }
    return this.defaultRule;
  }

  /** Indices of the rules whose instrument condition passes for this instrument (or that have none). */
  private candidatesFor(instrument: string | undefined): Int32Array {
    const key = instrument ?? NO_INSTRUMENT;
    const cached = this.candidates.get(key);
    if (cached !== undefined) return cached;
    const picked: number[] = [];
    this.rules.forEach((rule, i) => {
      if (rule.instrument === undefined || (instrument !== undefined && rule.instrument(instrument))) picked.push(i);
    });
    const list = Int32Array.from(picked);
    if (this.candidates.size >= CANDIDATE_CACHE_LIMIT) this.candidates.clear();
    this.candidates.set(key, list);
    return list;
  }
}

/** The instrument a correlation is about: the first signal that names one. */
export function instrumentOf(signals: Signals): string | undefined {
  for (const agent in signals) {
    const instrument = signals[agent]?.instrument;
    if (instrument !== undefined) return instrument;
  }
  return undefined;
}

function allPresent(agents: readonly string[], signals: Signals): boolean {
  for (const agent of agents) if (signals[agent] === undefined) return false;
  return true;
}

function compileRule(rule: RulesDocument['default'] | RulesDocument['rules'][number], at: string): CompiledRule {
  const match = 'match' in rule ? rule.match : undefined;
  let instrument: ((s: string) => boolean) | undefined;
  const tests: RegExp[] = [];
  if (match?.instrument !== undefined) {
    const globs = typeof match.instrument === 'string' ? [match.instrument] : match.instrument;
    tests.push(new RegExp(`^(?:${globs.map(globToRegexSource).join('|')})$`, 'su'));
  }
  if (match?.instrument_regex !== undefined) tests.push(new RegExp(match.instrument_regex, 'u'));
  if (tests.length > 0) instrument = (s) => tests.every((re) => re.test(s));
  const confidence = match?.momentum_confidence;
  return Object.freeze({
    name: rule.name,
    at,
    requiredAgents: Object.freeze([...rule.required_agents]),
    override: rule.override,
    adjust: rule.adjust,
    channels: Object.freeze([...rule.channels]),
    instrument,
    riskLevels: match?.risk_levels === undefined ? undefined : new Set(match.risk_levels),
    agentsPresent: Object.freeze([...(match?.agents_present ?? [])]),
    momentumConfidence: confidence === undefined ? undefined : { min: confidence.min ?? 0, max: confidence.max ?? 1 },
  });
}

/**
 * `*` is any run of characters and `?` one character; everything else is literal. Hand-written
 * because the glob libraries are path globs, where `*` stops at `/`, and instruments such as
 * `FX:EUR/USD` are not paths.
 */
export function globToRegexSource(glob: string): string {
  let out = '';
  for (const ch of glob) {
    if (ch === '*') out += '.*';
    else if (ch === '?') out += '.';
    else out += ch.replace(/[\\^$.|+()[\]{}*?]/g, '\\$&');
  }
  return out;
}

export function formatOf(source: string): RulesFormat {
  return /\.json$/i.test(source) ? 'json' : 'yaml';
}

function parseRulesText(text: string, source: string, format: RulesFormat): unknown {
  if (format === 'json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new RulesFileError(source, `is not valid JSON: ${(err as Error).message}`);
    }
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first !== undefined) throw new RulesFileError(source, `is not valid YAML: ${first.message.split('\n')[0]}`);
  if (doc.contents === null) throw new RulesFileError(source, 'is empty');
  return doc.toJS({ maxAliasCount: 100 }) as unknown;
}

/** JSON with object keys sorted, so that the same rules hash the same whatever the key order in the file. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
