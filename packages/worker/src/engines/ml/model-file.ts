import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '@at-orchestrator/contracts';
import { z } from 'zod';
import { compileFeatures } from './features.js';
import type { FeatureExtractor, SignalsByAgent } from './features.js';

/** Identifies the file format; a different model family would get a different one. */
export const MODEL_FORMAT = 'at-orchestrator/logistic-regression@1';

/** What the model file holds. Field order here is the order the file is written in. */
export const ModelFile = z
  .strictObject({
    format: z.literal(MODEL_FORMAT, { error: `"${MODEL_FORMAT}"` }),
    /** Carried in every decision as engine_version. */
    version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/, 'letters, digits, ".", "_", "+" or "-" (at most 64)'),
    /** Feature names, in the order of `weights`. */
    features: z.array(z.string().min(1).max(128)).min(1).max(1024),
    weights: z.array(z.number().finite()),
    bias: z.number().finite(),
    /** Trade when the score p is above this. */
    threshold: z.number().gt(0, 'a number between 0 and 1 (exclusive)').lt(1, 'a number between 0 and 1 (exclusive)'),
    /** `sha256:` + hex over canonical {format, version, features, weights, bias, threshold}. */
    checksum: z.string().regex(/^sha256:[0-9a-f]{64}$/, '"sha256:" followed by 64 lowercase hex digits'),
    /** How the model was made: informative, not covered by the checksum. */
    training: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((m, ctx) => {
    if (m.weights.length !== m.features.length) {
      ctx.addIssue({ code: 'custom', path: ['weights'], message: `has ${m.weights.length} entries for ${m.features.length} features` });
    }
    const seen = new Set<string>();
    m.features.forEach((f, i) => {
      if (seen.has(f)) ctx.addIssue({ code: 'custom', path: ['features', i], message: `lists ${JSON.stringify(f)} twice` });
      seen.add(f);
    });
  });
export type ModelFile = z.infer<typeof ModelFile>;
export type ModelParameters = Omit<ModelFile, 'checksum' | 'training'>;

/** sha256 over the scoring parameters, in a fixed key order (JSON numbers print the same everywhere). */
export function modelChecksum(m: ModelParameters): string {
  const canonical = JSON.stringify([m.format, m.version, m.features, m.weights, m.bias, m.threshold]);
  return `sha256:${createHash('sha256').update(canonical).digest('hex')}`;
}

/**
 * A validated logistic-regression scorer: p = sigmoid(bias + Σ weight_i · feature_i(signals)).
 * Construct with parseModel or loadModelFile; both throw ConfigError naming what is wrong.
 */
export class ScoringModel {
  readonly version: string;
  readonly features: readonly string[];
  readonly threshold: number;
  readonly checksum: string;
  private readonly weights: Float64Array;
  private readonly bias: number;
  private readonly extractors: readonly FeatureExtractor[];

  constructor(file: ModelFile, source = '(in memory)') {
    this.version = file.version;
    this.features = Object.freeze([...file.features]);
    this.threshold = file.threshold;
    this.checksum = file.checksum;
    this.weights = Float64Array.from(file.weights);
    this.bias = file.bias;
    this.extractors = compileFeatures(file.features, `model file ${source}`);
  }

  /** The probability that trading on these signals is profitable, in (0, 1). */
  score(signals: SignalsByAgent): number {
    let z = this.bias;
    for (let i = 0; i < this.extractors.length; i++) z += this.weights[i]! * this.extractors[i]!(signals);
    return sigmoid(z);
  }

  /** The feature vector, in the file's order (for explanations and tests). */
  featureVector(signals: SignalsByAgent): number[] {
    return this.extractors.map((extract) => extract(signals));
  }
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** Validates model file text: schema, then checksum, then feature names. */
export function parseModel(text: string, source = '(in memory)'): ScoringModel {
  let raw: unknown;
  try {
    raw = JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(`model file ${source} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = ModelFile.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 5)
      .map((i) => `field ${i.path.length === 0 ? '(root)' : i.path.join('.')}: ${i.code === 'unrecognized_keys' ? `unknown field ${i.keys.join(', ')}` : i.message}`);
    throw new ConfigError(`model file ${source} is not valid: ${problems.join('; ')}`);
  }
  const file = parsed.data;
  const actual = modelChecksum(file);
  if (actual !== file.checksum) {
    throw new ConfigError(
      `model file ${source} failed its checksum: it says ${file.checksum}, its weights hash to ${actual}; the file was changed after training (retrain it, or restore the original)`,
    );
  }
  return new ScoringModel(file, source);
}

export function loadModelFile(path: string): ScoringModel {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`model file ${path} cannot be read: ${(err as Error).message}`);
  }
  return parseModel(text, path);
}
