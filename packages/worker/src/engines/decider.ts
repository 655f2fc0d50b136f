import { Counter, Histogram, type Registry } from '@at-orchestrator/runtime';
import type { DecisionEngine, EngineInput, EngineResult } from './engine.js';
import type { RuleSet } from './workflow/index.js';

/**
 * Runs the engine over a batch of ready correlations. Inline on the event loop, or in a thread pool
 * (pool/pool-decider.ts); either way a batch always comes back with one result per input, in input
 * order — an engine error is a result value, never an exception and never a lost correlation.
 */
export interface BatchDecider {
  readonly kind: 'inline' | 'pool';
  decide(inputs: readonly EngineInput[]): Promise<EngineResult[]>;
  /**
   * A workflow rules file was reloaded and the main thread's engine already has `rules`
   * (WorkflowEngine.setRules): make every decision started after this call use them too.
   * Inline there is nothing to do, the engine is shared; the pool tells its threads.
   */
  reloadRules(rules: RuleSet): void;
  /** Idempotent. Waits for batches in flight, then releases threads. */
  close(): Promise<void>;
}

export type BatchOutcome = 'ok' | 'retried' | 'failed';

/**
 * orchestrator_engine_batches_total{mode,outcome} and orchestrator_engine_batch_seconds{mode}, one
 * observation per task (a batch of at most DECISION_BATCH_SIZE inputs). Registered once per registry,
 * however many deciders share it.
 */
export class EngineMetrics {
  readonly batches: Counter<'mode' | 'outcome'>;
  readonly batchSeconds: Histogram<'mode'>;

  private constructor(registry: Registry) {
    this.batches =
      (registry.getSingleMetric('orchestrator_engine_batches_total') as Counter<'mode' | 'outcome'> | undefined) ??
      new Counter({
        name: 'orchestrator_engine_batches_total',
        help: 'Decision batches run by the engine, by mode (inline, pool) and outcome (ok, retried = ok on the retry, failed = every input got engine_failed)',
        labelNames: ['mode', 'outcome'],
        registers: [registry],
      });
    this.batchSeconds =
      (registry.getSingleMetric('orchestrator_engine_batch_seconds') as Histogram<'mode'> | undefined) ??
      new Histogram({
        name: 'orchestrator_engine_batch_seconds',
        help: 'Time to decide one batch, from submission to results (pool: includes queueing, the thread round trip and a retry)',
        labelNames: ['mode'],
        buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [registry],
      });
  }

  static for(registry: Registry): EngineMetrics {
    return new EngineMetrics(registry);
  }

  record(mode: 'inline' | 'pool', outcome: BatchOutcome, seconds: number): void {
    this.batches.inc({ mode, outcome });
    this.batchSeconds.observe({ mode }, seconds);
  }
}

export interface InlineDeciderOptions {
  readonly metrics?: EngineMetrics;
  /**
   * Inputs decided between two turns of the event loop (DECISION_BATCH_SIZE). A bigger batch is
   * decided in slices of this size with a setImmediate between them, so that a burst of ready
   * correlations does not hold the loop (and the lease timers) for long. Default: the whole batch at once.
   */
  readonly batchSize?: number;
}

export class InlineDecider implements BatchDecider {
  readonly kind = 'inline' as const;
  private readonly metrics: EngineMetrics | undefined;
  private readonly batchSize: number;

  constructor(
    private readonly engine: DecisionEngine,
    options: InlineDeciderOptions = {},
  ) {
    this.metrics = options.metrics;
    this.batchSize = options.batchSize ?? Number.POSITIVE_INFINITY;
  }

  async decide(inputs: readonly EngineInput[]): Promise<EngineResult[]> {
    if (inputs.length <= this.batchSize) return this.decideSlice(inputs);
    const out: EngineResult[] = [];
    for (let start = 0; start < inputs.length; start += this.batchSize) {
      if (start > 0) await yieldToLoop();
      out.push(...this.decideSlice(inputs.slice(start, start + this.batchSize)));
    }
    return out;
  }

  reloadRules(): void {
    // The engine is shared with the caller, which has already swapped its rules.
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private decideSlice(inputs: readonly EngineInput[]): EngineResult[] {
    const started = this.metrics === undefined ? 0 : performance.now();
    const results = inputs.map((input): EngineResult => {
      try {
        return this.engine.decide(input);
      } catch (err) {
        return { ok: false, reason: `engine_error: ${(err as Error).message}` };
      }
    });
    this.metrics?.record('inline', 'ok', (performance.now() - started) / 1000);
    return results;
  }
}

function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
