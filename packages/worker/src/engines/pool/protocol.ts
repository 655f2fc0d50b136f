import type { EngineInput, EngineResult } from '../engine.js';
import type { RulesDocument } from '../workflow/index.js';

/**
 * What crosses the thread boundary between the PoolDecider and its decision threads. Everything here
 * is plain data (structured clone): no classes, no functions, no errors as exceptions.
 */

/** How a thread builds its engine, once. Carries the content, not file paths, so that every thread runs exactly what the main thread loaded. */
export type ThreadEngineSpec =
  | { readonly type: 'simple'; readonly requiredAgents: readonly string[] }
  | { readonly type: 'workflow'; readonly rules: RulesSnapshot }
  | {
      readonly type: 'ml';
      readonly requiredAgents: readonly string[];
      /** The model file's text and where it came from (for error messages); the thread validates it again. */
      readonly model: { readonly source: string; readonly text: string };
    };

/** A rules version and its validated document (RuleSet.version, RuleSet.document). */
export interface RulesSnapshot {
  readonly version: string;
  readonly document: RulesDocument;
}

/** The Piscina workerData of every decision thread. */
export interface ThreadData {
  readonly engine: ThreadEngineSpec;
  /** Enables TEST_HOOKS. Only PoolDecider's `testHooks` option sets it; configuration cannot. */
  readonly testHooks: boolean;
}

export interface DecisionTask {
  readonly inputs: readonly EngineInput[];
  /** 1 for the first run of a batch, 2 for its retry. */
  readonly attempt: number;
  /** workflow: the rules version the decider has in force; a thread that has another asks for the document. */
  readonly rulesVersion?: string;
  /** workflow: sent only after a thread answered 'stale_rules'. */
  readonly rules?: RulesDocument;
}

export type ThreadReply =
  /** One result per input, in input order. */
  | { readonly kind: 'results'; readonly results: readonly EngineResult[] }
  /** The thread's rules are not the task's rulesVersion: send the task again with `rules`. */
  | { readonly kind: 'stale_rules'; readonly have: string | undefined }
  /** The thread could not decide at all (its engine could not be built): the batch failed. */
  | { readonly kind: 'failed'; readonly reason: string };

/**
 * corr_id prefixes that make a decision thread misbehave, for tests of the failure paths. They act
 * only in a pool created with `testHooks: true` (never by createDecider), so a signal in production
 * cannot trigger them.
 */
export const TEST_HOOKS = {
  /** process.exit(1) inside the thread: the thread dies mid-task. */
  exit: '__pool_test_exit__',
  /** Same, on the first attempt only: the retry succeeds. */
  exitOnce: '__pool_test_exit_once__',
  /** The task function throws. */
  throw: '__pool_test_throw__',
  /** An uncaught exception from a timer inside the thread while the task is pending. */
  uncaught: '__pool_test_uncaught__',
  /** A synchronous endless loop: only the task timeout ends it. */
  hang: '__pool_test_hang__',
  /** A synchronous endless loop on the first attempt only. */
  hangOnce: '__pool_test_hang_once__',
} as const;
