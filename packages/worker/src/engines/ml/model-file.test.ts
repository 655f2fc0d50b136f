import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@at-orchestrator/contracts';
import { DEFAULT_MODEL_FILE, ModelFile, loadModelFile, modelChecksum, parseModel } from './index.js';

const shippedText = readFileSync(DEFAULT_MODEL_FILE, 'utf8');
const shipped = ModelFile.parse(JSON.parse(shippedText));

/** A copy of the shipped file with one change, optionally re-signed (as a careless editor might). */
function variant(change: (m: Record<string, unknown>) => void, resign = false): string {
  const m = structuredClone(shipped) as unknown as Record<string, unknown>;
  change(m);
  if (resign) m.checksum = modelChecksum(m as unknown as ModelFile);
  return JSON.stringify(m);
}

function rejection(text: string): string {
  try {
    parseModel(text, 'model.json');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected the model file to be rejected');
}

describe('model file', () => {
  it('the shipped file loads, with its version and checksum', () => {
    const model = loadModelFile(DEFAULT_MODEL_FILE);
    expect(model.version).toBe('synthetic-lr-1');
    expect(model.checksum).toBe(modelChecksum(shipped));
    expect(model.features).toEqual(shipped.features);
  });

  const tampered = [
    { name: 'a weight changed', change: (m: Record<string, unknown>) => ((m.weights as number[])[0] = 99) },
    { name: 'the bias changed', change: (m: Record<string, unknown>) => (m.bias = 0) },
    { name: 'the threshold lowered', change: (m: Record<string, unknown>) => (m.threshold = 0.1) },
    { name: 'the version renamed', change: (m: Record<string, unknown>) => (m.version = 'synthetic-lr-2') },
    { name: 'two features swapped', change: (m: Record<string, unknown>) => (m.features as string[]).reverse() },
    { name: 'the checksum replaced', change: (m: Record<string, unknown>) => (m.checksum = `sha256:${'0'.repeat(64)}`) },
  ];
  it.each(tampered)('tampered: $name → rejected by the checksum', ({ change }) => {
    const message = rejection(variant(change));
    expect(message).toMatch(/^model file model\.json failed its checksum: it says sha256:[0-9a-f]{64}, its weights hash to sha256:[0-9a-f]{64}; the file was changed after training/);
  });

  it('the training notes are informative and not covered by the checksum', () => {
    expect(() => parseModel(variant((m) => ((m.training as Record<string, unknown>).rows = 1)), 'model.json')).not.toThrow();
  });

  const invalid = [
    { name: 'not JSON', text: '{"format":', expect: 'is not valid JSON' },
    { name: 'wrong format', text: variant((m) => (m.format = 'sklearn'), true), expect: 'field format' },
    { name: 'checksum missing', text: variant((m) => delete m.checksum), expect: 'field checksum' },
    { name: 'checksum malformed', text: variant((m) => (m.checksum = 'md5:abc')), expect: 'field checksum: "sha256:" followed by 64' },
    { name: 'a weight missing', text: variant((m) => (m.weights as number[]).pop(), true), expect: 'field weights: has 8 entries for 9 features' },
    { name: 'a weight not a number', text: variant((m) => ((m.weights as unknown[])[2] = 'x')), expect: 'field weights.2' },
    { name: 'threshold out of range', text: variant((m) => (m.threshold = 1), true), expect: 'field threshold' },
    { name: 'unknown field', text: variant((m) => (m.extra = 1)), expect: 'unknown field extra' },
    { name: 'feature listed twice', text: variant((m) => ((m.features as string[])[1] = 'momentum.confidence'), true), expect: 'field features.1: lists "momentum.confidence" twice' },
    { name: 'unknown feature', text: variant((m) => ((m.features as string[])[0] = 'momentum.vibes'), true), expect: 'lists an unknown feature "momentum.vibes"' },
  ];
  it.each(invalid)('invalid: $name', ({ text, expect: part }) => {
    const message = rejection(text);
    expect(message.startsWith('model file model.json ')).toBe(true);
    expect(message).toContain(part);
  });

  it('an unreadable file is a ConfigError naming the path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'model-'));
    try {
      expect(() => loadModelFile(join(dir, 'missing.json'))).toThrow(/model file .*missing\.json cannot be read/);
      writeFileSync(join(dir, 'bad.json'), variant((m) => (m.bias = 1)));
      expect(() => loadModelFile(join(dir, 'bad.json'))).toThrow(ConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
