import Redlock, { type Lock } from 'redlock';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
import type { WorkerMetrics } from '../metrics.js';

/**
 * Redlock over the correlations of a decision batch (one multi-resource lock: one round trip per
 * Redis master for the whole batch), held from claim to publish, on the independent masters of
 * REDLOCK_URLS — only when those are configured. It is advisory: a lock cannot stop a process paused
 * past its TTL, so when it cannot be had the batch goes on and the epoch fence in claimDecisions
 * decides; that fence is what keeps a decision single (docs/architecture.md, "Why no lock by default").
 */
export class CorrelationLock {
  private readonly redlock: Redlock;
  private readonly ttlMs: number;

  constructor(
    clients: Redis[],
    private readonly keys: RedisKeys,
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
    options: { ttlMs?: number } = {},
  ) {
    this.ttlMs = options.ttlMs ?? 5_000;
    this.redlock = new Redlock(clients, { retryCount: 2, retryDelay: 20, retryJitter: 20, driftFactor: 0.01 });
    // Per-attempt client errors are reported through acquire's result; no unhandled 'error' events.
    this.redlock.on('error', () => undefined);
  }

  async acquire(corrIds: readonly string[]): Promise<Lock | undefined> {
    try {
      return await this.redlock.acquire(
        corrIds.map((c) => this.keys.lock(c)),
        this.ttlMs,
      );
    } catch (err) {
      this.metrics.lockFailures.inc();
      this.log.debug({ err, count: corrIds.length }, 'correlation lock not acquired; the epoch fence decides');
      return undefined;
    }
  }

  async release(lock: Lock | undefined): Promise<void> {
    if (lock === undefined) return;
    try {
      await lock.release();
    } catch {
      // expires with its TTL
    }
  }
}
