import { fileURLToPath } from 'node:url';

/** The rules file loaded when none is configured: the seed's routing example (copied to dist by the build). */
export const DEFAULT_RULES_FILE = fileURLToPath(new URL('./default-rules.yaml', import.meta.url));

export { WorkflowEngine, applyRule } from './workflow-engine.js';
export type { WorkflowResult } from './workflow-engine.js';
export { RuleSet, globToRegexSource, instrumentOf } from './rule-set.js';
export type { CompiledRule, RulesFormat } from './rule-set.js';
export { RulesFile, loadRulesFile } from './rules-file.js';
export type { ReloadOutcome, RulesFileOptions, RulesRejected, RulesReloaded } from './rules-file.js';
export { RulesDocument, RulesFileError, validateRulesDocument, MAX_RULES } from './rules-schema.js';
export type { RuleIssue, RulesDocumentInput } from './rules-schema.js';
export { generateRules } from './generate.js';
