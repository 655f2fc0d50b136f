import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '@at-orchestrator/contracts';
import { parse as parseCsv } from 'csv-parse/sync';
import { z } from 'zod';
import { DEFAULT_FEATURES, compileFeatures } from './features.js';
import type { AnalysisCarrier } from './features.js';
import { MODEL_FORMAT, ModelFile, ScoringModel, modelChecksum, parseModel, sigmoid } from './model-file.js';

/**
 * Fits the ml engine's logistic regression on a labelled CSV.
 *
 * CSV layout: one row per correlation, one column per field of an agent's analysis, named
 * `<agent>.<path>` (`momentum.confidence`, `risk.position_sizing.recommended_size`,
 * `correlation.correlation_score`), an empty cell where the agent or field was absent, and a 0/1
 * label column (`profitable`). Rows are turned back into signals and go through the same feature
 * extractors the engine uses when it scores. Rows the engine would never score (no risk analysis, or
 * risk blocked) are skipped and counted.
 *
 * Deterministic by construction: zero initial weights, full-batch gradient descent, a fixed number of
 * iterations, fixed rounding, no clock and no randomness, so the same CSV and options give a
 * byte-identical model file.
 */

export const TrainOptions = z.strictObject({
  features: z.array(z.string().min(1)).min(1).optional(),
  labelColumn: z.string().min(1).default('profitable'),
  iterations: z.number().int().min(1).max(1_000_000).default(1500),
  learningRate: z.number().gt(0).max(100).default(1),
  /** L2 penalty on the (standardised) weights. */
  l2: z.number().min(0).max(100).default(1e-4),
  threshold: z.number().gt(0).lt(1).default(0.5),
  /** Model version; default `lr-` + 8 hex digits of a hash of the weights. */
  version: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/)
    .optional(),
});
export type TrainOptions = z.input<typeof TrainOptions>;

export interface TrainSummary {
  readonly version: string;
  readonly checksum: string;
  readonly rows: number;
  readonly skipped: number;
  /** Share of rows labelled 1. */
  readonly positiveRate: number;
  readonly iterations: number;
  /** Mean log loss of the final (rounded) model on the training rows. */
  readonly logLoss: number;
  readonly trainAccuracy: number;
}

export interface TrainResult {
  readonly model: ModelFile;
  /** The model file's content, as written by runTrainCommand. */
  readonly json: string;
  readonly summary: TrainSummary;
}

const WEIGHT_DIGITS = 6;

export function trainModel(csvText: string, options: TrainOptions = {}, source = '(training data)'): TrainResult {
  const opts = parseOptions(options);
  const features = opts.features ?? [...DEFAULT_FEATURES];
  const data = readLabelled(csvText, opts.labelColumn, source);
  const extractors = compileFeatures(features, 'train option features');
  const n = data.rows.length;
  const d = features.length;
  if (n === 0) throw new ConfigError(`${source}: no rows to train on (${data.skipped} skipped: no risk analysis or risk blocked)`);
  const positives = data.labels.reduce((s, y) => s + y, 0);
  if (positives === 0 || positives === n) throw new ConfigError(`${source}: every row has the same label; nothing to learn`);

  // Standardise columns so that one learning rate suits every feature; fold the scaling back afterwards.
  const x = new Float64Array(n * d);
  data.rows.forEach((signals, r) => extractors.forEach((extract, j) => (x[r * d + j] = extract(signals))));
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    let s = 0;
    for (let r = 0; r < n; r++) s += x[r * d + j]!;
    mean[j] = s / n;
    let v = 0;
    for (let r = 0; r < n; r++) v += (x[r * d + j]! - mean[j]!) ** 2;
    std[j] = Math.sqrt(v / n) || 1;
    for (let r = 0; r < n; r++) x[r * d + j] = (x[r * d + j]! - mean[j]!) / std[j]!;
  }

  const w = new Float64Array(d);
  let b = 0;
  const grad = new Float64Array(d);
  const labels = data.labels;
  for (let it = 0; it < opts.iterations; it++) {
    grad.fill(0);
    let gb = 0;
    for (let r = 0, row = 0; r < n; r++, row += d) {
      let z = b;
      for (let j = 0; j < d; j++) z += w[j]! * x[row + j]!;
      const err = 1 / (1 + Math.exp(-z)) - labels[r]!;
      gb += err;
      for (let j = 0; j < d; j++) grad[j]! += err * x[row + j]!;
    }
    for (let j = 0; j < d; j++) w[j]! -= opts.learningRate * (grad[j]! / n + opts.l2 * w[j]!);
    b -= opts.learningRate * (gb / n);
  }

  const weights = Array.from(w, (wj, j) => round(wj / std[j]!));
  const bias = round(b - Array.from(w).reduce((s, wj, j) => s + (wj * mean[j]!) / std[j]!, 0));
  const version = opts.version ?? `lr-${createHash('sha256').update(JSON.stringify([features, weights, bias, opts.threshold])).digest('hex').slice(0, 8)}`;
  const params = { format: MODEL_FORMAT, version, features, weights, bias, threshold: opts.threshold } as const;
  const checksum = modelChecksum(params);

  const scorer = new ScoringModel({ ...params, checksum }, source);
  let loss = 0;
  let correct = 0;
  data.rows.forEach((signals, r) => {
    const p = scorer.score(signals);
    const y = data.labels[r]!;
    loss -= y === 1 ? Math.log(Math.max(p, 1e-15)) : Math.log(Math.max(1 - p, 1e-15));
    if ((p > scorer.threshold ? 1 : 0) === y) correct++;
  });
  const summary: TrainSummary = {
    version,
    checksum,
    rows: n,
    skipped: data.skipped,
    positiveRate: round(positives / n),
    iterations: opts.iterations,
    logLoss: round(loss / n),
    trainAccuracy: round(correct / n),
  };
  const model: ModelFile = {
    ...params,
    checksum,
    training: {
      algorithm: 'logistic regression, full-batch gradient descent on standardised features, zero initial weights',
      data_sha256: createHash('sha256').update(csvText).digest('hex'),
      label_column: opts.labelColumn,
      rows: n,
      skipped: data.skipped,
      positive_rate: summary.positiveRate,
      iterations: opts.iterations,
      learning_rate: opts.learningRate,
      l2: opts.l2,
      train_accuracy: summary.trainAccuracy,
      log_loss: summary.logLoss,
    },
  };
  return { model, json: `${JSON.stringify(model, null, 2)}\n`, summary };
}

export interface Evaluation {
  readonly rows: number;
  readonly skipped: number;
  /** Share of rows where (p > threshold) equals the label. */
  readonly accuracy: number;
  /** Of the rows predicted profitable, the share that were. */
  readonly precision: number;
  /** Of the profitable rows, the share predicted so. */
  readonly recall: number;
}

/** Scores a labelled CSV (same layout as training) with a model, at the model's threshold. */
export function evaluateModel(model: ScoringModel, csvText: string, labelColumn = 'profitable', source = '(evaluation data)'): Evaluation {
  const data = readLabelled(csvText, labelColumn, source);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let correct = 0;
  data.rows.forEach((signals, r) => {
    const predicted = model.score(signals) > model.threshold ? 1 : 0;
    const y = data.labels[r]!;
    if (predicted === y) correct++;
    if (predicted === 1 && y === 1) tp++;
    if (predicted === 1 && y === 0) fp++;
    if (predicted === 0 && y === 1) fn++;
  });
  const n = data.rows.length;
  return {
    rows: n,
    skipped: data.skipped,
    accuracy: n === 0 ? 0 : round(correct / n),
    precision: tp + fp === 0 ? 0 : round(tp / (tp + fp)),
    recall: tp + fn === 0 ? 0 : round(tp / (tp + fn)),
  };
}

export interface TrainCommandOptions extends TrainOptions {
  /** Labelled CSV to train on. */
  readonly dataPath: string;
  /** Where the model file goes (written atomically: a temporary file beside it, then a rename). */
  readonly outPath: string;
  /** Optional labelled CSV held out from training, to report accuracy on. */
  readonly holdoutPath?: string;
}

export interface TrainCommandSummary extends TrainSummary {
  readonly dataPath: string;
  readonly outPath: string;
  readonly holdout?: Evaluation & { readonly path: string };
}

/**
 * `at-orchestrator train --data <csv> --out <json> [--holdout <csv>]`: the file I/O around
 * trainModel. Throws ConfigError for unreadable or bad input; the caller prints the summary.
 */
export function runTrainCommand(options: TrainCommandOptions): TrainCommandSummary {
  const { dataPath, outPath, holdoutPath, ...trainOptions } = options;
  const csv = readText(dataPath, 'training data');
  const result = trainModel(csv, trainOptions, dataPath);
  const written = parseModel(result.json, outPath); // the file we are about to write must load
  const tmp = join(dirname(outPath), `.${basename(outPath)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, result.json);
    renameSync(tmp, outPath);
  } catch (err) {
    throw new ConfigError(`cannot write the model file ${outPath}: ${(err as Error).message}`);
  }
  const summary: TrainCommandSummary = { ...result.summary, dataPath, outPath };
  if (holdoutPath === undefined) return summary;
  const evaluation = evaluateModel(written, readText(holdoutPath, 'held-out data'), trainOptions.labelColumn ?? 'profitable', holdoutPath);
  return { ...summary, holdout: { path: holdoutPath, ...evaluation } };
}

function parseOptions(options: TrainOptions): z.output<typeof TrainOptions> {
  const parsed = TrainOptions.safeParse(options);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new ConfigError(`train option ${issue.path.join('.') || '(options)'} is not valid: ${issue.message}`);
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the ${what} ${path}: ${(err as Error).message}`);
  }
}

const NUMBER = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

interface Labelled {
  readonly rows: Record<string, AnalysisCarrier>[];
  readonly labels: Uint8Array;
  readonly skipped: number;
}

/** CSV rows → (signals, label); see the layout at the top of this file. */
function readLabelled(csvText: string, labelColumn: string, source: string): Labelled {
  let records: string[][];
  try {
    records = parseCsv(csvText, { skip_empty_lines: true, trim: true, relax_column_count: false }) as string[][];
  } catch (err) {
    throw new ConfigError(`${source} is not valid CSV: ${(err as Error).message}`);
  }
  const header = records[0];
  if (header === undefined) throw new ConfigError(`${source} is empty`);
  const labelAt = header.indexOf(labelColumn);
  if (labelAt < 0) throw new ConfigError(`${source} has no label column ${JSON.stringify(labelColumn)} (columns: ${header.join(', ')})`);
  const columns = header.map((name, i) => {
    if (i === labelAt) return undefined;
    const dot = name.indexOf('.');
    if (dot <= 0 || dot === name.length - 1) {
      throw new ConfigError(`${source}: column ${JSON.stringify(name)} is not <agent>.<field> (e.g. momentum.confidence) nor the label column`);
    }
    return { agent: name.slice(0, dot), path: name.slice(dot + 1).split('.') };
  });

  const rows: Record<string, AnalysisCarrier>[] = [];
  const labels: number[] = [];
  let skipped = 0;
  for (let r = 1; r < records.length; r++) {
    const record = records[r]!;
    const cell = record[labelAt] ?? '';
    const label = cell === '1' || cell.toLowerCase() === 'true' ? 1 : cell === '0' || cell.toLowerCase() === 'false' ? 0 : undefined;
    if (label === undefined) throw new ConfigError(`${source} line ${r + 1}: ${labelColumn} must be 0 or 1, got ${JSON.stringify(cell)}`);
    const signals: Record<string, { analysis: Record<string, unknown> }> = {};
    columns.forEach((column, i) => {
      const value = record[i];
      if (column === undefined || value === undefined || value === '') return;
      const analysis = (signals[column.agent] ??= { analysis: {} }).analysis;
      let node = analysis;
      column.path.slice(0, -1).forEach((key) => {
        const next = node[key];
        node = (typeof next === 'object' && next !== null ? next : (node[key] = {})) as Record<string, unknown>;
      });
      node[column.path[column.path.length - 1]!] = NUMBER.test(value) ? Number(value) : value;
    });
    const riskLevel = signals.risk?.analysis.risk_level;
    if (riskLevel === undefined || riskLevel === 'blocked') {
      skipped++;
      continue;
    }
    rows.push(signals);
    labels.push(label);
  }
  return { rows, labels: Uint8Array.from(labels), skipped };
}

function round(x: number): number {
  const f = 10 ** WEIGHT_DIGITS;
  const r = Math.round(x * f) / f;
  return Object.is(r, -0) ? 0 : r;
}
