import { fileURLToPath } from 'node:url';

/** The model loaded when none is configured: trained on examples/ml/train.csv (copied to dist by the build). */
export const DEFAULT_MODEL_FILE = fileURLToPath(new URL('./model.json', import.meta.url));

export { MlEngine } from './ml-engine.js';
export { MODEL_FORMAT, ModelFile, ScoringModel, loadModelFile, modelChecksum, parseModel, sigmoid } from './model-file.js';
export type { ModelParameters } from './model-file.js';
export { BUILTIN_FEATURES, DEFAULT_FEATURES, compileFeatures } from './features.js';
export type { AnalysisCarrier, FeatureExtractor, SignalsByAgent } from './features.js';
export { TrainOptions, evaluateModel, runTrainCommand, trainModel } from './train.js';
export type { Evaluation, TrainCommandOptions, TrainCommandSummary, TrainResult, TrainSummary } from './train.js';
