export { SimulatedAgents, type AgentsOptions } from './agents.js';
export { DecisionSink, type SinkCounts } from './sink.js';
export {
  CLEAN_MIX,
  REALISTIC_MIX,
  makeCorrelation,
  seededRandom,
  type MixOptions,
  type SyntheticCorrelation,
  type SyntheticSignal,
} from './scenario.js';
