import type { OrchestratorConfig } from '@at-orchestrator/contracts';
import { ConfigError } from '@at-orchestrator/contracts';
import { Counter, type Logger, type Registry } from '@at-orchestrator/runtime';
import { EngineMetrics, InlineDecider, type BatchDecider } from './decider.js';
import type { DecisionEngine, EngineInput } from './engine.js';
import { DEFAULT_MODEL_FILE, MlEngine, loadModelFile } from './ml/index.js';
import { PoolDecider, threadEngineSpec } from './pool/index.js';
import { SimpleEngine } from './simple.js';
import { DEFAULT_RULES_FILE, RulesFile, WorkflowEngine, loadRulesFile, type RuleSet } from './workflow/index.js';

export type { DecisionEngine, EngineInput, EngineResult } from './engine.js';
export { EngineMetrics, InlineDecider } from './decider.js';
export type { BatchDecider, BatchOutcome, InlineDeciderOptions } from './decider.js';
export * from './pool/index.js';
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

export interface DeciderDeps {
  readonly log: Logger;
  readonly registry: Registry;
  /**
   * Pool only: a batch failed twice (thread crash, throw, timeout). Its inputs are answered
   * { ok: false, reason: 'engine_failed: <reason>' } (timeout outcomes); this is where the worker
   * dead-letters them with the reason. Must not throw.
   */
  readonly onBatchFailed?: (inputs: readonly EngineInput[], reason: string) => void;
  /** Pool only, tests only: threads misbehave on TEST_HOOKS corr_ids. */
  readonly testHooks?: boolean;
}

/**
 * The BatchDecider the configuration asks for: inline on the event loop when
 * DECISION_POOL_THREADS=0, else a Piscina pool of that many threads, each building its own copy of
 * `engine` (same type, required agents, rules or model). Batches are cut at DECISION_BATCH_SIZE;
 * pool tasks time out after DECISION_TASK_TIMEOUT_MS. Metrics go to deps.registry.
 */
export function createDecider(config: OrchestratorConfig, engine: DecisionEngine, deps: DeciderDeps): BatchDecider {
  const metrics = EngineMetrics.for(deps.registry);
  const { poolThreads, batchSize, taskTimeoutMs } = config.engines;
  if (poolThreads === 0) return new InlineDecider(engine, { metrics, batchSize });
  const options = { engine: threadEngineSpec(config, engine), threads: poolThreads, batchSize, taskTimeoutMs, log: deps.log, metrics, testHooks: deps.testHooks === true };
  return new PoolDecider(deps.onBatchFailed === undefined ? options : { ...options, onBatchFailed: deps.onBatchFailed });
}

/**
 * Keeps a workflow engine (and the decider's threads) on the rules file while it changes:
 * RULES_FILE, or the shipped example when it is empty, watched with RulesFile
 * (RULES_RELOAD_DEBOUNCE_MS). A valid change → engine.setRules + decider.reloadRules, logged at info
 * and counted as orchestrator_rules_reload_total{outcome="applied"}; a bad, unreadable or deleted
 * file → the rules in force stay, a warning names the reason, counted as outcome="rejected".
 * Undefined for the other engine types. close() is idempotent.
 */
export function watchRules(
  config: OrchestratorConfig,
  engine: DecisionEngine,
  decider: BatchDecider,
  deps: { readonly log: Logger; readonly registry: Registry },
): { close(): Promise<void> } | undefined {
  if (config.orchestratorType !== 'workflow' || !(engine instanceof WorkflowEngine)) return undefined;
  const reloads =
    (deps.registry.getSingleMetric('orchestrator_rules_reload_total') as Counter<'outcome'> | undefined) ??
    new Counter({
      name: 'orchestrator_rules_reload_total',
      help: 'Workflow rules file changes, by outcome (applied, or rejected: the previous rules stay in force)',
      labelNames: ['outcome'],
      registers: [deps.registry],
    });
  const apply = (rules: RuleSet, previousVersion: string): void => {
    engine.setRules(rules);
    decider.reloadRules(rules);
    reloads.inc({ outcome: 'applied' });
    deps.log.info({ rules_file: file.path, rules_version: rules.version, previous_version: previousVersion, rules: rules.rules.length }, 'workflow rules reloaded');
  };
  const file = new RulesFile(config.engines.rulesFile === '' ? DEFAULT_RULES_FILE : config.engines.rulesFile, {
    debounceMs: config.engines.rulesReloadDebounceMs,
  });
  // The file may have changed between the engine's load and this one.
  if (file.current.version !== engine.rules.version) apply(file.current, engine.rules.version);
  file.on('reloaded', ({ rules, previousVersion }) => apply(rules, previousVersion));
  file.on('rejected', ({ error, keptVersion }) => {
    reloads.inc({ outcome: 'rejected' });
    deps.log.warn({ rules_file: file.path, reason: error.message, kept_version: keptVersion }, 'workflow rules file refused; the rules in force stay');
  });
  file.start();
  return {
    close: () => {
      file.close();
      return Promise.resolve();
    },
  };
}
