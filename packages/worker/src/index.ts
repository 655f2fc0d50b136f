export { OrchestratorWorker, type WorkerOptions, type WorkerState } from './worker.js';
export { WorkerMetrics } from './metrics.js';
export { listDeadLetters, redriveDeadLetters, type ListedDeadLetter, type RedriveResult } from './emit/dead-letter-reader.js';
export { createEngine, decideSimple, SimpleEngine, type DecisionEngine, type EngineInput, type EngineResult } from './engines/index.js';
export { CorrelationStore, SCRIPTS, parseDoneMarker } from './state/correlation-store.js';
export { runTrainCommand, createDecider, watchRules, type TrainCommandOptions, type TrainCommandSummary } from './engines/index.js';
/** Tests only: the corr_id prefixes on which decision threads misbehave (WorkerOptions.decisionThreadTestHooks). */
export { TEST_HOOKS } from './engines/pool/protocol.js';
