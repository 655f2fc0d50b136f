/**
 * The worker's second face, `@at-orchestrator/worker/internal`: pieces that are not part of the
 * package's public face (index.ts) but that benchmarks, tools and tests of internals need. Nothing
 * outside this package reaches into its files by path; what it needs from inside is named here.
 */
export {
  InlineDecider,
  RuleSet,
  WorkflowEngine,
  createDecider,
  createEngine,
  generateRules,
  runTrainCommand,
  type BatchDecider,
  type DecisionEngine,
  type EngineInput,
} from './engines/index.js';
export { DecidedSet } from './fanin/decided-set.js';
export { DeadLetterPublisher } from './emit/dead-letters.js';
export { JetStreamPublisher, jetStreamClientPublisher, type StreamPublisher } from './emit/jetstream-publisher.js';
export { MaxDeliveriesWatch } from './ingest/max-deliveries.js';
export { pullExpiryFor } from './ingest/signal-consumer.js';
export { SignalRouter } from './ingest/signal-router.js';
export { CorrelationStore, type SignalToStore } from './state/correlation-store.js';
export { groupByPartition } from './state/partition-groups.js';
