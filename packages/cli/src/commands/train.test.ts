import { describe, expect, it } from 'vitest';
import { ConfigError } from '@at-orchestrator/contracts';
import { runTrain, trainCommand, type TrainInvocation, type TrainSummaryView, type Trainer } from './train.js';

const SUMMARY: TrainSummaryView = {
  dataPath: 'train.csv',
  outPath: 'model.json',
  version: 'm-1',
  checksum: 'sha256:abc',
  rows: 5000,
  skipped: 12,
  positiveRate: 0.481,
  iterations: 1500,
  logLoss: 0.2712,
  trainAccuracy: 0.903,
  holdout: { path: 'holdout.csv', rows: 1000, skipped: 3, accuracy: 0.891, precision: 0.872, recall: 0.886 },
};

function run(args: string[], trainer: Trainer = () => SUMMARY): { code: number; out: string; err: string; calls: TrainInvocation[] } {
  let out = '';
  let err = '';
  const calls: TrainInvocation[] = [];
  const code = runTrain(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) }, (o) => {
    calls.push(o);
    return trainer(o);
  });
  return { code, out, err, calls };
}

describe('at-orchestrator train', () => {
  it('passes every option to the trainer and prints the summary', () => {
    const r = run(['--data', 'train.csv', '--out', 'model.json', '--holdout', 'holdout.csv', '--version', 'm-1', '--iterations', '200', '--learning-rate', '0.5', '--l2', '0', '--threshold', '0.6', '--label-column', 'won']);
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([
      { dataPath: 'train.csv', outPath: 'model.json', holdoutPath: 'holdout.csv', version: 'm-1', iterations: 200, learningRate: 0.5, l2: 0, threshold: 0.6, labelColumn: 'won' },
    ]);
    expect(r.out).toBe(
      [
        'model written to model.json',
        '  version         m-1',
        '  checksum        sha256:abc',
        '  data            train.csv: 5000 rows trained on, 12 skipped (no risk analysis or risk blocked)',
        '  positive rate   0.481',
        '  iterations      1500',
        '  log loss        0.271',
        '  train accuracy  0.903',
        '  holdout         holdout.csv: accuracy 0.891, precision 0.872, recall 0.886 (1000 rows, 3 skipped)',
        '',
      ].join('\n'),
    );
    expect(r.err).toBe('');
  });

  it('--json prints the summary for scripts', () => {
    const r = run(['--data', 'd.csv', '--out', 'm.json', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual(SUMMARY);
    expect(r.calls).toEqual([{ dataPath: 'd.csv', outPath: 'm.json' }]);
  });

  it.each([
    [[], '--data <csv> is required'],
    [['--data', 'd.csv'], '--out <json> is required'],
    [['--data', 'd.csv', '--out', 'm.json', 'extra'], 'unexpected argument "extra"'],
    [['--data', 'd.csv', '--out', 'm.json', '--epochs', '3'], "Unknown option '--epochs'"],
  ])('usage error %j → exit 2 with the reason and the usage', (args, message) => {
    const r = run(args);
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
    expect(r.err).toContain('Usage: at-orchestrator train');
    expect(r.calls).toEqual([]);
  });

  it('a non-numeric option → exit 1 naming the flag, without training', () => {
    const r = run(['--data', 'd.csv', '--out', 'm.json', '--learning-rate', 'fast']);
    expect(r).toMatchObject({ code: 1, err: 'at-orchestrator train: --learning-rate="fast" is not valid: expected a number\n', calls: [] });
  });

  it.each([
    ['train option learningRate is not valid: Too big: expected number to be <=100', 'at-orchestrator train: --learning-rate is not valid: Too big: expected number to be <=100\n'],
    ['cannot read the training data nope.csv: ENOENT: no such file or directory', 'at-orchestrator train: cannot read the training data nope.csv: ENOENT: no such file or directory\n'],
    ['d.csv: every row has the same label; nothing to learn', 'at-orchestrator train: d.csv: every row has the same label; nothing to learn\n'],
  ])('bad input (ConfigError "%s") → exit 1 with its message', (thrown, printed) => {
    const r = run(['--data', 'd.csv', '--out', 'm.json', '--learning-rate', '1000'], () => {
      throw new ConfigError(thrown);
    });
    expect(r).toMatchObject({ code: 1, out: '', err: printed });
  });

  it('any other error is not swallowed', () => {
    expect(() =>
      run(['--data', 'd.csv', '--out', 'm.json'], () => {
        throw new TypeError('bug');
      }),
    ).toThrow('bug');
  });

  it('--help text names every option', () => {
    expect(trainCommand.name).toBe('train');
    for (const flag of ['--data', '--out', '--holdout', '--version', '--iterations', '--learning-rate', '--l2', '--threshold', '--label-column', '--json']) {
      expect(trainCommand.usage).toContain(flag);
    }
  });
});
