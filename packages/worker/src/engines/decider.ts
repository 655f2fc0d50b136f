import type { DecisionEngine, EngineInput, EngineResult } from './engine.js';

/**
 * Runs the engine over a batch of ready correlations. Inline on the event loop, or in a thread pool
 * (see pool-decider.ts); either way a batch always comes back with one result per input — an engine
 * error is a result value, never a lost correlation.
 */
export interface BatchDecider {
  readonly kind: 'inline' | 'pool';
  decide(inputs: readonly EngineInput[]): Promise<EngineResult[]>;
  close(): Promise<void>;
}

export class InlineDecider implements BatchDecider {
  readonly kind = 'inline' as const;
  constructor(private readonly engine: DecisionEngine) {}

  decide(inputs: readonly EngineInput[]): Promise<EngineResult[]> {
    return Promise.resolve(
      inputs.map((input): EngineResult => {
        try {
          return this.engine.decide(input);
        } catch (err) {
          return { ok: false, reason: `engine_error: ${(err as Error).message}` };
        }
      }),
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
