import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, type OrchestratorConfig } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
import { Piscina } from 'piscina';
import type { BatchDecider, EngineMetrics } from '../decider.js';
import type { DecisionEngine, EngineInput, EngineResult } from '../engine.js';
import { DEFAULT_MODEL_FILE, MlEngine, parseModel } from '../ml/index.js';
import { SimpleEngine } from '../simple.js';
import { WorkflowEngine, type RuleSet } from '../workflow/index.js';
import type { DecisionTask, RulesSnapshot, ThreadData, ThreadEngineSpec, ThreadReply } from './protocol.js';

export interface PoolDeciderOptions {
  /** What each thread builds (see threadEngineSpec). */
  readonly engine: ThreadEngineSpec;
  /** DECISION_POOL_THREADS (≥ 1): the pool is fixed at this size. */
  readonly threads: number;
  /** DECISION_BATCH_SIZE: at most this many inputs per task; bigger batches are split. */
  readonly batchSize: number;
  /**
   * DECISION_TASK_TIMEOUT_MS: a task unanswered this long after it was handed to a thread is aborted
   * and its thread replaced. Tasks wait for a free thread in the decider, not in Piscina's queue, so
   * that waiting behind other tasks does not count against it.
   */
  readonly taskTimeoutMs: number;
  readonly log?: Logger;
  readonly metrics?: EngineMetrics;
  /**
   * Called once per batch that failed twice (crash, throw, timeout), with its inputs and the reason,
   * after which each of those inputs is answered { ok: false, reason: 'engine_failed: <reason>' }.
   * For the caller's dead-letter queue; must not throw (an exception is logged and ignored).
   */
  readonly onBatchFailed?: (inputs: readonly EngineInput[], reason: string) => void;
  /** The compiled thread file; default: resolveThreadFile(). */
  readonly filename?: string;
  /** Lets TEST_HOOKS corr_ids crash, hang or throw inside threads. Tests only. */
  readonly testHooks?: boolean;
}

type Attempt = { readonly ok: true; readonly results: readonly EngineResult[] } | { readonly ok: false; readonly reason: string };

/**
 * Decides batches on a fixed Piscina pool of decision threads, each with its own engine.
 *
 * A batch is split into tasks of at most batchSize inputs, which run in parallel across threads and
 * come back in input order. Failure never escapes as an exception and never drops an input: a task
 * whose thread crashed, threw, timed out or could not build its engine is run once more (on a
 * fresh thread where the old one died); if that fails too, onBatchFailed hears about it and every
 * input of the task is answered { ok: false, reason: 'engine_failed: …' } — a timeout outcome
 * for the worker, never a silently missing decision.
 *
 * workflow rules reload: reloadRules records the new version; every task carries the version in
 * force, and a thread that has another one answers 'stale_rules' and is sent the task again with the
 * rules document. So every decision started after reloadRules returns uses the new rules, threads
 * that start later (replacing a crashed one) included, at the cost of one extra round trip per
 * thread per reload; a broadcast would give no such guarantee.
 */
export class PoolDecider implements BatchDecider {
  readonly kind = 'pool' as const;
  private readonly pool: Piscina<DecisionTask, ThreadReply>;
  private readonly batchSize: number;
  private readonly taskTimeoutMs: number;
  private readonly log: Logger | undefined;
  private readonly metrics: EngineMetrics | undefined;
  private readonly onBatchFailed: PoolDeciderOptions['onBatchFailed'];
  private readonly inFlight = new Set<Promise<unknown>>();
  private rules: RulesSnapshot | undefined;
  private closing: Promise<void> | undefined;
  /** Threads not running one of our tasks right now. */
  private freeThreads: number;
  private readonly threadWaiters: Array<() => void> = [];

  constructor(options: PoolDeciderOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new ConfigError(`DECISION_POOL_THREADS=${options.threads} is not valid for a pool: expected an integer ≥ 1`);
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new ConfigError(`DECISION_BATCH_SIZE=${options.batchSize} is not valid: expected an integer ≥ 1`);
    this.batchSize = options.batchSize;
    this.taskTimeoutMs = options.taskTimeoutMs;
    this.log = options.log;
    this.metrics = options.metrics;
    this.onBatchFailed = options.onBatchFailed;
    this.freeThreads = options.threads;
    if (options.engine.type === 'workflow') this.rules = options.engine.rules;
    const workerData: ThreadData = { engine: options.engine, testHooks: options.testHooks === true };
    this.pool = new Piscina<DecisionTask, ThreadReply>({
      filename: options.filename ?? resolveThreadFile(),
      name: 'default',
      minThreads: options.threads,
      maxThreads: options.threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      execArgv: threadExecArgv(process.execArgv),
      workerData,
    });
    // A thread that dies with no task on it is reported here; without a listener it would crash the process.
    this.pool.on('error', (err: unknown) => this.log?.error({ err }, 'decision thread failed outside a task; it is replaced'));
    // Build an engine now rather than on the first batch, and say at once if threads cannot start.
    const warmUp = this.run({ inputs: [], attempt: 1 }).then((reply) => {
      if (reply.kind === 'failed') this.log?.error({ reason: reply.reason }, 'decision pool cannot decide: every batch will fail');
    });
    this.inFlight.add(warmUp);
    void warmUp.finally(() => this.inFlight.delete(warmUp));
  }

  /** Threads running now (Piscina replaces a dead one). */
  get threads(): number {
    return this.pool.threads.length;
  }

  decide(inputs: readonly EngineInput[]): Promise<EngineResult[]> {
    if (this.closing !== undefined) return Promise.resolve(inputs.map(() => failed('decision pool is closed')));
    if (inputs.length === 0) return Promise.resolve([]);
    const work =
      inputs.length <= this.batchSize
        ? this.runBatch(inputs)
        : Promise.all(sliced(inputs, this.batchSize).map((slice) => this.runBatch(slice))).then((parts) => parts.flat());
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
    return work;
  }

  reloadRules(rules: RuleSet): void {
    if (this.rules === undefined) return; // not a workflow pool
    this.rules = { version: rules.version, document: rules.document };
  }

  /** Idempotent: new batches are answered 'decision pool is closed'; batches in flight finish (each bounded by its task timeouts, retry included); then the threads stop. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.inFlight]);
      await this.pool.destroy();
    })();
    return this.closing;
  }

  private async runBatch(inputs: readonly EngineInput[]): Promise<EngineResult[]> {
    const started = performance.now();
    const first = await this.attempt(inputs, 1);
    if (first.ok) {
      this.metrics?.record('pool', 'ok', (performance.now() - started) / 1000);
      return first.results as EngineResult[];
    }
    this.log?.warn({ reason: first.reason, inputs: inputs.length, first_corr_id: inputs[0]?.corrId }, 'decision batch failed; retrying it once');
    const second = await this.attempt(inputs, 2);
    if (second.ok) {
      this.metrics?.record('pool', 'retried', (performance.now() - started) / 1000);
      return second.results as EngineResult[];
    }
    this.metrics?.record('pool', 'failed', (performance.now() - started) / 1000);
    const reason = second.reason === first.reason ? first.reason : `${first.reason}; retry: ${second.reason}`;
    this.log?.error({ reason, inputs: inputs.length, corr_ids: inputs.slice(0, 10).map((i) => i.corrId) }, 'decision batch failed twice; its correlations get engine_failed results');
    try {
      this.onBatchFailed?.(inputs, reason);
    } catch (err) {
      this.log?.error({ err }, 'onBatchFailed threw; ignored');
    }
    return inputs.map(() => failed(reason));
  }

  /** One run of a task; never throws. */
  private async attempt(inputs: readonly EngineInput[], attempt: number): Promise<Attempt> {
    const rules = this.rules;
    const task: DecisionTask = rules === undefined ? { inputs, attempt } : { inputs, attempt, rulesVersion: rules.version };
    let reply = await this.run(task);
    if (reply.kind === 'stale_rules' && rules !== undefined) reply = await this.run({ ...task, rules: rules.document });
    switch (reply.kind) {
      case 'results':
        if (reply.results.length !== inputs.length) return { ok: false, reason: `a decision thread answered ${reply.results.length} results for ${inputs.length} inputs` };
        return { ok: true, results: reply.results };
      case 'stale_rules':
        return { ok: false, reason: `a decision thread kept rules ${reply.have ?? '(none)'} after being sent ${rules?.version ?? '(none)'}` };
      case 'failed':
        return { ok: false, reason: reply.reason };
    }
  }

  /** Piscina.run on a free thread, with the task timeout; a rejection (crash, throw, abort) becomes a 'failed' reply. */
  private async run(task: DecisionTask): Promise<ThreadReply> {
    if (this.freeThreads > 0) this.freeThreads--;
    else await new Promise<void>((resolve) => this.threadWaiters.push(resolve));
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.taskTimeoutMs);
    try {
      return await this.pool.run(task, { signal: abort.signal });
    } catch (err) {
      if (abort.signal.aborted) return { kind: 'failed', reason: `task timed out after ${this.taskTimeoutMs} ms (thread replaced)` };
      return { kind: 'failed', reason: `decision thread failed: ${(err as Error | undefined)?.message ?? String(err)}` };
    } finally {
      clearTimeout(timer);
      const next = this.threadWaiters.shift();
      if (next !== undefined) next();
      else this.freeThreads++;
    }
  }
}

/**
 * The parent's Node flags minus export conditions: a process started with `--conditions source`
 * (vitest, the loadtest driver) resolves our packages to their TypeScript sources, which a thread
 * without a TypeScript loader cannot run. Threads always run the build output.
 */
export function threadExecArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--conditions' || arg === '-C') i++;
    else if (!arg.startsWith('--conditions=') && !arg.startsWith('-C=')) out.push(arg);
  }
  return out;
}

function failed(reason: string): EngineResult {
  return { ok: false, reason: `engine_failed: ${reason}` };
}

function sliced<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The compiled thread file. Threads load JavaScript, so the pool always runs the build output:
 * beside this module when it runs from dist/, and packages/worker/dist/engines/pool/ when this
 * module runs from its TypeScript source (vitest) — build first (`pnpm build`).
 */
export function resolveThreadFile(): string {
  const beside = fileURLToPath(new URL('./decision-thread.js', import.meta.url));
  if (existsSync(beside)) return beside;
  const built = fileURLToPath(new URL('../../../dist/engines/pool/decision-thread.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new ConfigError(`the decision thread file is missing (looked for ${beside} and ${built}): run "pnpm build" first`);
}

/**
 * What each decision thread builds to decide as `engine` does: the same engine type, required
 * agents and — read back from the engine itself, not from the file on disk, which may have changed
 * since — the same rules. The ml model is re-read from its file and must have the checksum of the
 * one the engine loaded.
 */
export function threadEngineSpec(
  config: Pick<OrchestratorConfig, 'requiredAgents'> & { readonly engines: Pick<OrchestratorConfig['engines'], 'mlModelFile'> },
  engine: DecisionEngine,
): ThreadEngineSpec {
  if (engine instanceof WorkflowEngine) return { type: 'workflow', rules: { version: engine.rules.version, document: engine.rules.document } };
  if (engine instanceof SimpleEngine) return { type: 'simple', requiredAgents: [...config.requiredAgents] };
  if (engine instanceof MlEngine) {
    const source = config.engines.mlModelFile === '' ? DEFAULT_MODEL_FILE : config.engines.mlModelFile;
    let text: string;
    try {
      text = readFileSync(source, 'utf8');
    } catch (err) {
      throw new ConfigError(`model file ${source} cannot be read for the decision pool: ${(err as Error).message}`);
    }
    const reread = parseModel(text, source);
    if (reread.checksum !== engine.model.checksum) {
      throw new ConfigError(`model file ${source} changed while the worker started (loaded ${engine.model.checksum}, now ${reread.checksum}): restart to use one model everywhere`);
    }
    return { type: 'ml', requiredAgents: [...config.requiredAgents], model: { source, text } };
  }
  throw new ConfigError(`the decision pool runs the built-in engines only (simple, workflow, ml), not ${engine.type}`);
}
