#!/usr/bin/env node
// Makes the synthetic labelled data set the ml engine's shipped model is trained on.
//
//   node scripts/ml/make-dataset.mjs [--out examples/ml] [--train 5000] [--holdout 1000] [--seed 20240611]
//
// Deterministic: the same arguments write byte-identical files (a seeded mulberry32 PRNG, fixed
// rounding, no clock). The data are made up. Each row is what the agents would have said about one
// correlation, flattened to `<agent>.<path in its analysis>` columns, plus a 0/1 `profitable` label.
// The label comes from a known linear score of the same features the engine computes, plus logistic
// noise, so a logistic regression can learn it but not perfectly: the best possible accuracy (the
// Bayes rate) is printed at the end, and the shipped model should land close to it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'examples/ml' },
    train: { type: 'string', default: '5000' },
    holdout: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '20240611' },
  },
});

/** mulberry32: small, fast, and the same sequence on every platform. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = mulberry32(Number(values.seed));
const pick = (items, weights) => {
  let u = rand() * weights.reduce((s, w) => s + w, 0);
  for (let i = 0; i < items.length; i++) {
    u -= weights[i];
    if (u < 0) return items[i];
  }
  return items[items.length - 1];
};
/** Standard normal by Box-Muller (one of the pair; the other is dropped to keep the stream simple). */
const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
const round = (x, digits) => Number(x.toFixed(digits));

// The hidden truth: log-odds that acting on this signal set is profitable, linear in the engine's features.
const TRUE = {
  bias: -0.4,
  'momentum.confidence': 11.0, // centred below by subtracting 0.55
  'momentum.strength': 3.5,
  'momentum.direction': 0.6, // a mild bullish drift in the made-up market
  'risk.low': 1.8,
  'risk.medium': 0.0,
  'risk.high': -3.0,
  'risk.log_size': -0.7, // bigger positions do slightly worse (slippage), centred at ln(1+500)
  'present:correlation': 0.5,
  'num:correlation.correlation_score': 4.5,
};
const SIZE_MEDIAN = { low: 1000, medium: 500, high: 200 };

function row() {
  const direction = pick(['bullish', 'bearish', 'neutral'], [0.45, 0.45, 0.1]);
  const confidence = rand();
  const strength = Math.min(1, Math.max(0, 0.6 * confidence + 0.4 * rand()));
  const riskLevel = pick(['low', 'medium', 'high'], [0.35, 0.35, 0.3]);
  const size = Math.round(SIZE_MEDIAN[riskLevel] * Math.exp(0.5 * normal()));
  const hasCorrelation = rand() < 0.7;
  const correlation = hasCorrelation ? round(2 * rand() - 1, 4) : undefined;
  const c = round(confidence, 4);
  const s = round(strength, 4);
  const dir = direction === 'bullish' ? 1 : direction === 'bearish' ? -1 : 0;
  const z =
    TRUE.bias +
    TRUE['momentum.confidence'] * (c - 0.55) +
    TRUE['momentum.strength'] * (s - 0.5) +
    TRUE['momentum.direction'] * dir +
    TRUE[`risk.${riskLevel}`] +
    TRUE['risk.log_size'] * (Math.log1p(size) - Math.log1p(500)) +
    (hasCorrelation ? TRUE['present:correlation'] + TRUE['num:correlation.correlation_score'] * correlation : 0);
  // Logistic noise: P(label = 1) = sigmoid(z), so the Bayes-optimal accuracy is E[max(p, 1 - p)].
  const u = Math.min(Math.max(rand(), 1e-12), 1 - 1e-12);
  const label = z + Math.log(u / (1 - u)) > 0 ? 1 : 0;
  const p = 1 / (1 + Math.exp(-z));
  return { cells: [c, s, direction, riskLevel, size, correlation ?? '', label], bayes: Math.max(p, 1 - p), label };
}

const HEADER = [
  'momentum.confidence',
  'momentum.momentum_strength',
  'momentum.trend_direction',
  'risk.risk_level',
  'risk.position_sizing.recommended_size',
  'correlation.correlation_score',
  'profitable',
];

function write(file, n) {
  const lines = [HEADER.join(',')];
  let bayes = 0;
  let positives = 0;
  for (let i = 0; i < n; i++) {
    const r = row();
    lines.push(r.cells.join(','));
    bayes += r.bayes;
    positives += r.label;
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
  return { rows: n, positives: round(positives / n, 3), bayesAccuracy: round(bayes / n, 3) };
}

const out = resolve(values.out);
mkdirSync(out, { recursive: true });
const train = write(join(out, 'train.csv'), Number(values.train));
const holdout = write(join(out, 'holdout.csv'), Number(values.holdout));
console.log(JSON.stringify({ out, seed: Number(values.seed), train, holdout }));
