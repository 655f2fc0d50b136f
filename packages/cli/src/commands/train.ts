import { parseArgs } from 'node:util';
import { ConfigError } from '@at-orchestrator/contracts';
import { runTrainCommand } from '@at-orchestrator/worker';
import type { Command } from '../command.js';

/** What `train` hands to the worker package's runTrainCommand (a subset of its TrainCommandOptions). */
export interface TrainInvocation {
  dataPath: string;
  outPath: string;
  holdoutPath?: string;
  version?: string;
  iterations?: number;
  learningRate?: number;
  l2?: number;
  threshold?: number;
  labelColumn?: string;
}

/** What `train` prints (a subset of runTrainCommand's TrainCommandSummary). */
export interface TrainSummaryView {
  readonly dataPath: string;
  readonly outPath: string;
  readonly version: string;
  readonly checksum: string;
  readonly rows: number;
  readonly skipped: number;
  readonly positiveRate: number;
  readonly iterations: number;
  readonly logLoss: number;
  readonly trainAccuracy: number;
  readonly holdout?: { readonly path: string; readonly rows: number; readonly skipped: number; readonly accuracy: number; readonly precision: number; readonly recall: number };
}

export type Trainer = (options: TrainInvocation) => TrainSummaryView;

export interface TrainIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const USAGE = [
  'Usage: at-orchestrator train --data <csv> --out <json> [--holdout <csv>] [--version V]',
  '                             [--iterations N] [--learning-rate X] [--l2 X] [--threshold X]',
  '                             [--label-column NAME] [--json]',
  '',
  'Fits the ml engine\'s logistic regression on a labelled CSV and writes a versioned, checksummed',
  'model file (atomically: a temporary file, then a rename). Deterministic: the same data and',
  'options give a byte-identical file. Point ML_MODEL_FILE at it and run ORCHESTRATOR_TYPE=ml.',
  '',
  '  --data <csv>          training data: one row per correlation, columns <agent>.<field>',
  '                        (momentum.confidence, risk.risk_level, …) and a 0/1 label column',
  '  --out <json>          where the model file goes',
  '  --holdout <csv>       data held out from training (same layout): reports accuracy on it',
  '  --version V           the model version stamped on every decision (default lr-<hash>)',
  '  --iterations N        gradient-descent iterations (default 1500)',
  '  --learning-rate X     (default 1)',
  '  --l2 X                L2 penalty on the standardised weights (default 0.0001)',
  '  --threshold X         trade when the score is above X, 0 < X < 1 (default 0.5)',
  '  --label-column NAME   the 0/1 column (default profitable)',
  '  --json                print the summary as JSON',
  '',
  'Example: at-orchestrator train --data examples/ml/train.csv --holdout examples/ml/holdout.csv --out model.json',
  'Exit codes: 0 written; 1 bad input (unreadable or invalid data, an option out of range); 2 usage.',
  'docs/engines.md (ml) describes the file format, the features and what the model is not.',
].join('\n');

const FLAG_OF: Readonly<Record<string, string>> = {
  iterations: '--iterations',
  learningRate: '--learning-rate',
  l2: '--l2',
  threshold: '--threshold',
  version: '--version',
  labelColumn: '--label-column',
};

/**
 * `train` with its I/O and the trainer passed in (tests pass their own). Resolves to the exit code.
 */
export function runTrain(args: string[], io: TrainIo, trainer: Trainer): number {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        data: { type: 'string' },
        out: { type: 'string' },
        holdout: { type: 'string' },
        version: { type: 'string' },
        iterations: { type: 'string' },
        'learning-rate': { type: 'string' },
        l2: { type: 'string' },
        threshold: { type: 'string' },
        'label-column': { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    io.stderr(`at-orchestrator train: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const usage = (message: string): number => {
    io.stderr(`at-orchestrator train: ${message}\n${USAGE}\n`);
    return 2;
  };
  if (positionals.length > 0) return usage(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const data = values.data;
  const out = values.out;
  if (typeof data !== 'string' || data === '') return usage('--data <csv> is required');
  if (typeof out !== 'string' || out === '') return usage('--out <json> is required');

  const invocation: TrainInvocation = { dataPath: data, outPath: out };
  if (typeof values.holdout === 'string') invocation.holdoutPath = values.holdout;
  if (typeof values.version === 'string') invocation.version = values.version;
  if (typeof values['label-column'] === 'string') invocation.labelColumn = values['label-column'];
  const numbers: Array<[flag: string, key: 'iterations' | 'learningRate' | 'l2' | 'threshold']> = [
    ['iterations', 'iterations'],
    ['learning-rate', 'learningRate'],
    ['l2', 'l2'],
    ['threshold', 'threshold'],
  ];
  for (const [flag, key] of numbers) {
    const raw = values[flag];
    if (typeof raw !== 'string') continue;
    const n = raw.trim() === '' ? Number.NaN : Number(raw);
    if (!Number.isFinite(n)) {
      io.stderr(`at-orchestrator train: --${flag}=${JSON.stringify(raw)} is not valid: expected a number\n`);
      return 1;
    }
    invocation[key] = n;
  }

  let summary: TrainSummaryView;
  try {
    summary = trainer(invocation);
  } catch (err) {
    if (err instanceof ConfigError) {
      // The trainer names its options as in code (learningRate); say the flag instead.
      const message = err.message.replace(/^train option (\w+)/, (whole, key: string) => FLAG_OF[key] ?? whole);
      io.stderr(`at-orchestrator train: ${message}\n`);
      return 1;
    }
    throw err;
  }
  io.stdout(values.json === true ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
  return 0;
}

export function formatSummary(s: TrainSummaryView): string {
  const rows: Array<[string, string]> = [
    ['version', s.version],
    ['checksum', s.checksum],
    ['data', `${s.dataPath}: ${s.rows} rows trained on, ${s.skipped} skipped (no risk analysis or risk blocked)`],
    ['positive rate', fixed(s.positiveRate)],
    ['iterations', String(s.iterations)],
    ['log loss', fixed(s.logLoss)],
    ['train accuracy', fixed(s.trainAccuracy)],
  ];
  if (s.holdout !== undefined) {
    const h = s.holdout;
    rows.push(['holdout', `${h.path}: accuracy ${fixed(h.accuracy)}, precision ${fixed(h.precision)}, recall ${fixed(h.recall)} (${h.rows} rows, ${h.skipped} skipped)`]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  return [`model written to ${s.outPath}`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)].join('\n') + '\n';
}

function fixed(x: number): string {
  return x.toFixed(3);
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'fit the ml engine\'s model on a labelled CSV and write a versioned model file',
  usage: USAGE,
  run(args) {
    const trainer: Trainer = runTrainCommand;
    return Promise.resolve(runTrain(args, { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) }, trainer));
  },
};
