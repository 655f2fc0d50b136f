import type { OrchestratorConfig } from '@at-orchestrator/contracts';
import { ConfigError } from '@at-orchestrator/contracts';
import type { DecisionEngine } from './engine.js';
import { SimpleEngine } from './simple.js';

export type { DecisionEngine, EngineInput, EngineResult } from './engine.js';
export { SimpleEngine, decideSimple } from './simple.js';

/** Builds the engine ORCHESTRATOR_TYPE names. */
export function createEngine(config: Pick<OrchestratorConfig, 'orchestratorType' | 'requiredAgents'>): DecisionEngine {
  switch (config.orchestratorType) {
    case 'simple':
      return new SimpleEngine(config.requiredAgents);
    default:
      throw new ConfigError(`ORCHESTRATOR_TYPE=${JSON.stringify(config.orchestratorType)} is not available yet: expected simple`);
  }
}
