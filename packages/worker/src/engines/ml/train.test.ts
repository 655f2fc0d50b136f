import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@at-orchestrator/contracts';
import { DEFAULT_MODEL_FILE, ModelFile, evaluateModel, loadModelFile, parseModel, runTrainCommand, trainModel } from './index.js';

const examples = (name: string) => new URL(`../../../../../examples/ml/${name}`, import.meta.url);
const trainCsv = readFileSync(examples('train.csv'), 'utf8');
const holdoutCsv = readFileSync(examples('holdout.csv'), 'utf8');

/** The accuracy docs/engines.md states for the shipped model on examples/ml/holdout.csv. */
const STATED_HOLDOUT_ACCURACY = 0.87;

describe('the shipped model', () => {
  it(`scores the held-out file above ${STATED_HOLDOUT_ACCURACY}`, () => {
    const evaluation = evaluateModel(loadModelFile(DEFAULT_MODEL_FILE), holdoutCsv);
    expect(evaluation.rows).toBe(1000);
    expect(evaluation.accuracy).toBeGreaterThan(STATED_HOLDOUT_ACCURACY);
  });

  it('is reproducible: retraining on the shipped data with the options it records gives the same file, byte for byte', () => {
    const shippedText = readFileSync(DEFAULT_MODEL_FILE, 'utf8');
    const shipped = ModelFile.parse(JSON.parse(shippedText));
    const t = shipped.training as { label_column: string; iterations: number; learning_rate: number; l2: number; data_sha256: string };
    const { json } = trainModel(trainCsv, {
      features: shipped.features,
      labelColumn: t.label_column,
      iterations: t.iterations,
      learningRate: t.learning_rate,
      l2: t.l2,
      threshold: shipped.threshold,
      version: shipped.version,
    });
    expect(json).toBe(shippedText);
  });
});

describe('trainModel', () => {
  const small = trainCsv.split('\n').slice(0, 1201).join('\n');

  it('is deterministic: the same data and options give the same file', () => {
    const a = trainModel(small, { iterations: 300 });
    const b = trainModel(small, { iterations: 300 });
    expect(a.json).toBe(b.json);
    expect(a.summary.version).toMatch(/^lr-[0-9a-f]{8}$/);
    expect(() => parseModel(a.json)).not.toThrow();
  });

  it('learns the direction of each effect in the data', () => {
    const { model } = trainModel(small, { iterations: 500 });
    const w = Object.fromEntries(model.features.map((f, i) => [f, model.weights[i]!]));
    expect(w['momentum.confidence']).toBeGreaterThan(0);
    expect(w['num:correlation.correlation_score']).toBeGreaterThan(0);
    expect(w['risk.high']).toBeLessThan(w['risk.low']!);
  });

  it('skips rows the engine would never score (no risk, or risk blocked)', () => {
    const csv = ['momentum.confidence,risk.risk_level,profitable', '0.9,low,1', '0.9,blocked,0', '0.2,,0', '0.1,high,0'].join('\n');
    const { summary } = trainModel(csv, { features: ['momentum.confidence', 'risk.high'], iterations: 10 });
    expect([summary.rows, summary.skipped]).toEqual([2, 2]);
  });

  const bad = [
    { name: 'no label column', csv: 'momentum.confidence,risk.risk_level\n0.5,low\n', expect: 'no label column "profitable"' },
    { name: 'a label that is not 0/1', csv: 'momentum.confidence,risk.risk_level,profitable\n0.5,low,yes\n', expect: 'line 2: profitable must be 0 or 1, got "yes"' },
    { name: 'a column that is not agent.field', csv: 'confidence,risk.risk_level,profitable\n0.5,low,1\n', expect: 'column "confidence" is not <agent>.<field>' },
    { name: 'ragged rows', csv: 'momentum.confidence,risk.risk_level,profitable\n0.5,low\n', expect: 'is not valid CSV' },
    { name: 'one label only', csv: 'momentum.confidence,risk.risk_level,profitable\n0.5,low,1\n0.6,low,1\n', expect: 'every row has the same label' },
    { name: 'no usable rows', csv: 'momentum.confidence,risk.risk_level,profitable\n0.5,blocked,1\n', expect: 'no rows to train on' },
  ];
  it.each(bad)('bad data: $name', ({ csv, expect: part }) => {
    expect(() => trainModel(csv, {}, 'data.csv')).toThrow(ConfigError);
    expect(() => trainModel(csv, {}, 'data.csv')).toThrow(part);
  });

  it('bad options are ConfigErrors naming the option', () => {
    expect(() => trainModel(small, { iterations: 0 })).toThrow(/train option iterations is not valid/);
    expect(() => trainModel(small, { threshold: 1 })).toThrow(/train option threshold is not valid/);
    expect(() => trainModel(small, { features: ['nope'] })).toThrow(/train option features lists an unknown feature "nope"/);
  });
});

describe('runTrainCommand', () => {
  it('trains from a file, writes a loadable model and reports held-out accuracy', () => {
    const dir = mkdtempSync(join(tmpdir(), 'train-'));
    try {
      const outPath = join(dir, 'model.json');
      const summary = runTrainCommand({
        dataPath: examples('train.csv').pathname,
        holdoutPath: examples('holdout.csv').pathname,
        outPath,
        version: 'test-1',
        iterations: 400,
      });
      expect(summary).toMatchObject({ version: 'test-1', rows: 5000, skipped: 0, outPath, iterations: 400 });
      expect(summary.holdout?.accuracy).toBeGreaterThan(STATED_HOLDOUT_ACCURACY);
      expect(loadModelFile(outPath).version).toBe('test-1');
      expect(() => runTrainCommand({ dataPath: join(dir, 'missing.csv'), outPath })).toThrow(/cannot read the training data .*missing\.csv/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
