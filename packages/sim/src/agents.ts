import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { signalSubject } from '@at-orchestrator/contracts';
import { makeCorrelation, seededRandom, REALISTIC_MIX, type MixOptions, type SyntheticCorrelation } from './scenario.js';

export interface AgentsOptions {
  /** Correlations per second. */
  rate: number;
  /** Stop after this many correlations (default: until stopped). */
  count?: number;
  seed?: number;
  mix?: MixOptions;
  /** Prefix of generated corr_ids (a run id keeps runs apart). */
  prefix?: string;
  /** Called for each correlation once all its signals were accepted by JetStream. */
  onPublished?: (corr: SyntheticCorrelation) => void;
  signal?: AbortSignal;
}

const encoder = new TextEncoder();

/**
 * Simulated momentum / risk / correlation agents: publishes correlations at a fixed rate on
 * JetStream (signals.enriched.<agent>), each signal after its own jitter, in random order.
 */
export class SimulatedAgents {
  private readonly js: JetStreamClient;
  published = 0;
  failed = 0;

  constructor(nc: NatsConnection) {
    this.js = jetstream(nc);
  }

  async run(options: AgentsOptions): Promise<void> {
    const rnd = seededRandom(options.seed ?? Date.now());
    const mix = options.mix ?? REALISTIC_MIX;
    const prefix = options.prefix ?? `sim-${Date.now().toString(36)}`;
    const intervalMs = 1000 / options.rate;
    const start = performance.now();
    const inflight = new Set<Promise<void>>();
    for (let i = 0; options.count === undefined || i < options.count; i++) {
      if (options.signal?.aborted === true) break;
      // Open loop: send at the intended time, whatever the previous send cost.
      const due = start + i * intervalMs;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait, options.signal);
      const corr = makeCorrelation(`${prefix}-${i}`, rnd, mix);
      const p = this.publishCorrelation(corr).then(
        () => {
          this.published += 1;
          options.onPublished?.(corr);
        },
        () => {
          this.failed += 1;
        },
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      if (inflight.size > 4096) await Promise.race(inflight);
    }
    await Promise.allSettled(inflight);
  }

  async publishCorrelation(corr: SyntheticCorrelation): Promise<void> {
    await Promise.all(
      corr.signals.map(async (s) => {
        if (s.delayMs > 0) await sleep(s.delayMs);
        await this.js.publish(signalSubject(s.agent), encoder.encode(s.body));
      }),
    );
  }
}

/**
 * Resolves after `ms`, or at once when the signal aborts. The abort listener goes when the timer
 * fires: run() sleeps once per correlation on the same signal, and a listener left behind per
 * sleep would pile up on it (Node warns from the eleventh).
 */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
