import { workerData } from 'node:worker_threads';
import type { DecisionEngine, EngineResult } from '../engine.js';
import { MlEngine, parseModel } from '../ml/index.js';
import { SimpleEngine } from '../simple.js';
import { RuleSet, WorkflowEngine } from '../workflow/index.js';
import { TEST_HOOKS, type DecisionTask, type ThreadData, type ThreadEngineSpec, type ThreadReply } from './protocol.js';

/**
 * The body of a decision thread (Piscina loads the compiled file, dist/engines/pool/decision-thread.js).
 *
 * The engine is built once per thread, on the first task rather than at import: a module that throws
 * while loading makes Piscina stop replacing threads, whereas a build error kept here is answered to
 * every task as a 'failed' reply, which the decider turns into results. Nothing is thrown across
 * the boundary on purpose; an engine exception for one input is that input's result, as inline.
 */

const data = workerData as ThreadData;

let engine: DecisionEngine | undefined;
let buildError: string | undefined;
/** workflow: the version of the rules this thread's engine has. */
let rulesVersion: string | undefined;

function build(spec: ThreadEngineSpec): DecisionEngine {
  switch (spec.type) {
    case 'simple':
      return new SimpleEngine(spec.requiredAgents);
    case 'workflow':
      rulesVersion = spec.rules.version;
      return new WorkflowEngine(RuleSet.fromDocument(spec.rules.document, `rules ${spec.rules.version}`));
    case 'ml':
      return new MlEngine(parseModel(spec.model.text, spec.model.source), spec.requiredAgents);
  }
}

function engineOrReason(): DecisionEngine | string {
  if (engine !== undefined) return engine;
  if (buildError !== undefined) return buildError;
  try {
    engine = build(data.engine);
    return engine;
  } catch (err) {
    buildError = `cannot build the ${data.engine.type} engine in a decision thread: ${(err as Error).message}`;
    return buildError;
  }
}

export default function decideBatch(task: DecisionTask): ThreadReply | Promise<ThreadReply> {
  if (data.testHooks) {
    const hooked = testHook(task);
    if (hooked !== undefined) return hooked;
  }
  const built = engineOrReason();
  if (typeof built === 'string') return { kind: 'failed', reason: built };

  if (built instanceof WorkflowEngine && task.rulesVersion !== undefined && task.rulesVersion !== rulesVersion) {
    if (task.rules === undefined) return { kind: 'stale_rules', have: rulesVersion };
    try {
      built.setRules(RuleSet.fromDocument(task.rules, `rules ${task.rulesVersion}`));
      rulesVersion = task.rulesVersion;
    } catch (err) {
      return { kind: 'failed', reason: `rules ${task.rulesVersion} refused by a decision thread: ${(err as Error).message}` };
    }
  }

  const results: EngineResult[] = new Array<EngineResult>(task.inputs.length);
  for (let i = 0; i < task.inputs.length; i++) {
    try {
      results[i] = built.decide(task.inputs[i]!);
    } catch (err) {
      results[i] = { ok: false, reason: `engine_error: ${(err as Error).message}` };
    }
  }
  return { kind: 'results', results };
}

/** Misbehaviour on request, for the failure-path tests (see TEST_HOOKS). */
function testHook(task: DecisionTask): Promise<ThreadReply> | undefined {
  const first = task.attempt === 1;
  for (const input of task.inputs) {
    const id = input.corrId;
    if (id.startsWith(TEST_HOOKS.exitOnce)) {
      if (first) process.exit(1);
    } else if (id.startsWith(TEST_HOOKS.exit)) {
      process.exit(1);
    } else if (id.startsWith(TEST_HOOKS.throw)) {
      throw new Error(`test hook: thrown for ${id}`);
    } else if (id.startsWith(TEST_HOOKS.uncaught)) {
      setTimeout(() => {
        throw new Error(`test hook: uncaught for ${id}`);
      }, 0);
      return new Promise<ThreadReply>(() => undefined);
    } else if (id.startsWith(TEST_HOOKS.hangOnce)) {
      if (first) for (;;);
    } else if (id.startsWith(TEST_HOOKS.hang)) {
      for (;;);
    }
  }
  return undefined;
}
