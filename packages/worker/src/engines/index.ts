import type { OrchestratorConfig } from '@at-orchestrator/contracts';
import { ConfigError } from '@at-orchestrator/contracts';
import type { DecisionEngine } from './engine.js';
import { DEFAULT_MODEL_FILE, MlEngine, loadModelFile } from './ml/index.js';
import { SimpleEngine } from './simple.js';
import { DEFAULT_RULES_FILE, WorkflowEngine, loadRulesFile } from './workflow/index.js';

export type { DecisionEngine, EngineInput, EngineResult } from './engine.js';
export { SimpleEngine, decideSimple } from './simple.js';
export * from './workflow/index.js';
export * from './ml/index.js';

/** Files the workflow and ml engines load at construction; each defaults to the one shipped beside the code. */
export interface EngineFiles {
  /** Workflow rules, YAML or JSON (default: the seed routing example, workflow/default-rules.yaml). */
  readonly rulesFile?: string | undefined;
  /** ml model weights (default: ml/model.json, trained on examples/ml/train.csv). */
  readonly modelFile?: string | undefined;
}

/**
 * Builds the engine ORCHESTRATOR_TYPE names. Loading a rules or model file happens here, once (a
 * bad file throws ConfigError naming the problem); decide() itself does no I/O. The workflow engine
 * takes its required agents from the rules (REQUIRED_AGENTS is not used); to follow rules-file
 * changes, watch the file with RulesFile and hand each new RuleSet to WorkflowEngine.setRules.
 */
export function createEngine(
  config: Pick<OrchestratorConfig, 'orchestratorType' | 'requiredAgents'>,
  files: EngineFiles = {},
): DecisionEngine {
  switch (config.orchestratorType) {
    case 'simple':
      return new SimpleEngine(config.requiredAgents);
    case 'workflow':
      return new WorkflowEngine(loadRulesFile(files.rulesFile ?? DEFAULT_RULES_FILE));
    case 'ml':
      return new MlEngine(loadModelFile(files.modelFile ?? DEFAULT_MODEL_FILE), config.requiredAgents);
    default:
      throw new ConfigError(
        `ORCHESTRATOR_TYPE=${JSON.stringify(config.orchestratorType as string)} is not valid: expected simple, workflow or ml`,
      );
  }
}
