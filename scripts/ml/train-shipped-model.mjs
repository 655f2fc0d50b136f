#!/usr/bin/env node
// Trains the ml engine's shipped model from the shipped synthetic data set:
//
//   node scripts/ml/make-dataset.mjs            # examples/ml/train.csv + holdout.csv (deterministic)
//   pnpm build && node scripts/ml/train-shipped-model.mjs
//
// It is `at-orchestrator train --data examples/ml/train.csv --holdout examples/ml/holdout.csv
// --out packages/worker/src/engines/ml/model.json --version synthetic-lr-1` with the default options;
// the result is byte-identical on every run (a unit test retrains it and compares).
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
// The worker's internal face; plain node resolves it to the build (dist/internal.js).
const { runTrainCommand } = await import('@at-orchestrator/worker/internal').catch((err) => {
  console.error(`cannot load the built worker package (run "pnpm build" first): ${err.message}`);
  process.exit(1);
});

const summary = runTrainCommand({
  dataPath: `${root}examples/ml/train.csv`,
  holdoutPath: `${root}examples/ml/holdout.csv`,
  outPath: `${root}packages/worker/src/engines/ml/model.json`,
  version: 'synthetic-lr-1',
});
console.log(JSON.stringify(summary, null, 2));
