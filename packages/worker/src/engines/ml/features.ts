import { ConfigError } from '@at-orchestrator/contracts';

/**
 * Features of a correlation's signals, by name. The model file lists the names it was trained on,
 * in order; the same extractors serve training (rows of a CSV turned into signals) and scoring (the
 * signals the worker holds), so the two cannot drift apart.
 *
 * Every feature is a finite number; a missing agent or field reads as 0 (absence is its own feature:
 * `present:<agent>`).
 */

/** Just what feature extraction reads from a signal: its analysis. */
export interface AnalysisCarrier {
  readonly analysis: Readonly<Record<string, unknown>>;
}
export type SignalsByAgent = Readonly<Record<string, AnalysisCarrier | undefined>>;
export type FeatureExtractor = (signals: SignalsByAgent) => number;

const UP = new Set(['bullish', 'up', 'long', 'buy']);
const DOWN = new Set(['bearish', 'down', 'short', 'sell']);

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const analysis = (signals: SignalsByAgent, agent: string) => signals[agent]?.analysis;
const riskIs = (level: string): FeatureExtractor => (s) => (analysis(s, 'risk')?.risk_level === level ? 1 : 0);

/** The named features, with what they read (docs/engines.md lists the same). */
export const BUILTIN_FEATURES: Readonly<Record<string, { readonly describe: string; readonly extract: FeatureExtractor }>> = {
  'momentum.confidence': { describe: 'momentum analysis.confidence (0..1)', extract: (s) => num(analysis(s, 'momentum')?.confidence) },
  'momentum.strength': { describe: 'momentum analysis.momentum_strength', extract: (s) => num(analysis(s, 'momentum')?.momentum_strength) },
  'momentum.direction': {
    describe: 'momentum analysis.trend_direction: +1 bullish/up/long/buy, -1 bearish/down/short/sell, else 0',
    extract: (s) => {
      const d = analysis(s, 'momentum')?.trend_direction;
      if (typeof d !== 'string') return 0;
      const key = d.toLowerCase();
      return UP.has(key) ? 1 : DOWN.has(key) ? -1 : 0;
    },
  },
  'risk.low': { describe: '1 when risk_level is low', extract: riskIs('low') },
  'risk.medium': { describe: '1 when risk_level is medium', extract: riskIs('medium') },
  'risk.high': { describe: '1 when risk_level is high', extract: riskIs('high') },
  'risk.log_size': {
    describe: 'ln(1 + position_sizing.recommended_size)',
    extract: (s) => {
      const sizing = analysis(s, 'risk')?.position_sizing;
      const size = typeof sizing === 'object' && sizing !== null ? num((sizing as Record<string, unknown>).recommended_size) : 0;
      return Math.log1p(Math.max(0, size));
    },
  },
};

const AGENT = '[a-z0-9][a-z0-9_-]*';
const PRESENT = new RegExp(`^present:(${AGENT})$`, 'i');
const NUMERIC = new RegExp(`^num:(${AGENT})\\.([A-Za-z0-9_]+(?:\\.[A-Za-z0-9_]+)*)$`, 'i');

/**
 * Turns feature names into extractors. Besides BUILTIN_FEATURES:
 *   present:<agent>           1 when that agent reported, else 0
 *   num:<agent>.<path>        a numeric field of that agent's analysis (dotted path), 0 when absent
 * An unknown name is a ConfigError listing them all (`context` starts its message: "model file x.json").
 */
export function compileFeatures(names: readonly string[], context: string): FeatureExtractor[] {
  const unknown: string[] = [];
  const extractors = names.map((name): FeatureExtractor => {
    const builtin = BUILTIN_FEATURES[name];
    if (builtin !== undefined) return builtin.extract;
    const present = PRESENT.exec(name);
    if (present !== null) {
      const agent = present[1]!;
      return (s) => (s[agent] === undefined ? 0 : 1);
    }
    const numeric = NUMERIC.exec(name);
    if (numeric !== null) {
      const agent = numeric[1]!;
      const path = numeric[2]!.split('.');
      return (s) => {
        let node: unknown = s[agent]?.analysis;
        for (const key of path) {
          if (typeof node !== 'object' || node === null) return 0;
          node = (node as Record<string, unknown>)[key];
        }
        return num(node);
      };
    }
    unknown.push(name);
    return () => 0;
  });
  if (unknown.length > 0) {
    throw new ConfigError(
      `${context} lists ${unknown.length > 1 ? 'unknown features' : 'an unknown feature'} ${unknown.map((n) => JSON.stringify(n)).join(', ')}: expected one of ${Object.keys(BUILTIN_FEATURES).join(', ')}, present:<agent> or num:<agent>.<field>`,
    );
  }
  return extractors;
}

/** The features of the shipped model, in order. */
export const DEFAULT_FEATURES: readonly string[] = Object.freeze([
  'momentum.confidence',
  'momentum.strength',
  'momentum.direction',
  'risk.low',
  'risk.medium',
  'risk.high',
  'risk.log_size',
  'present:correlation',
  'num:correlation.correlation_score',
]);
