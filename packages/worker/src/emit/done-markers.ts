import type { Logger } from '@at-orchestrator/runtime';
import type { CorrelationStore } from '../state/correlation-store.js';
import type { WorkerMetrics } from '../metrics.js';

/**
 * How long published decisions may wait to be marked in Redis together: one script call for the
 * batches of MARK_DELAY_MS rather than one per batch (at 500 decisions/s, about one call per ten
 * decisions instead of one per decision). Until a mark lands, a new owner (after a kill -9 or a pause
 * past the lease) finds the done-marker `pending` and publishes the decision again; since cluster
 * protocol 2 that publish is dropped by the decisions stream's Nats-Msg-Id window before anything is
 * stored or republished, so neither JetStream consumers nor core subscribers of
 * orchestrated.decision see it twice (docs/delivery.md). The wait costs a takeover at most the
 * decisions of its last MARK_DELAY_MS published again, each answered "duplicate". (Before the
 * republish, such a repeat reached core subscribers, which is why the wait was 0 then.) A partition
 * leaving the worker and the worker's shutdown write waiting marks first.
 */
export const MARK_DELAY_MS = 20;
const MAX_MARK_BATCH = 512;

export interface MarkItem {
  corrId: string;
  partition: number;
  agents: string[];
}

/**
 * The done-markers of published decisions ("published" in Redis, so that no later owner decides the
 * correlation again): written in one script call per batch (or per MARK_DELAY_MS), and kept in memory
 * while Redis cannot take them — never dropped — until `syncAfterRecovery` writes them.
 */
export class DoneMarkers {
  private readonly unsynced = new Map<string, MarkItem>();
  private waiting: MarkItem[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: {
      store: CorrelationStore;
      redisAvailable: () => boolean;
      metrics: WorkerMetrics;
      log: Logger;
      markDelayMs?: number;
    },
  ) {}

  /** Done-markers waiting for Redis. */
  get unsyncedCount(): number {
    return this.unsynced.size;
  }

  /** Marks these decisions published: now, or with the next batch within the mark delay. */
  async add(items: MarkItem[]): Promise<void> {
    if (!this.deps.redisAvailable()) {
      this.deps.metrics.stateFailures.inc({ operation: 'mark_published' }, items.length);
      for (const it of items) this.unsynced.set(it.corrId, it);
      return;
    }
    for (const it of items) this.waiting.push(it);
    const delay = this.deps.markDelayMs ?? MARK_DELAY_MS;
    if (this.waiting.length >= MAX_MARK_BATCH || delay <= 0) await this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), delay);
  }

  /** Writes every mark waiting (a partition leaving, shutdown); resolves when they are written or kept. */
  flush(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const items = this.waiting;
    if (items.length > 0) {
      this.waiting = [];
      this.writing = this.writing.then(() => this.write(items));
    }
    return this.writing;
  }

  /** After a Redis outage: writes the done-markers of decisions published while it was down. */
  async syncAfterRecovery(): Promise<void> {
    if (this.unsynced.size === 0) return;
    const items = [...this.unsynced.values()];
    const { metrics, log } = this.deps;
    try {
      metrics.countStateOps('mark_published', items.length);
      const unmarked = new Set(await this.deps.store.markPublished(items));
      for (const it of items) if (!unmarked.has(it)) this.unsynced.delete(it.corrId);
      if (unmarked.size > 0) metrics.stateFailures.inc({ operation: 'mark_published' }, unmarked.size);
      log.info({ count: items.length - unmarked.size, unwritten: unmarked.size }, 'done-markers written after redis recovery');
    } catch (err) {
      metrics.stateFailures.inc({ operation: 'mark_published' }, items.length);
      log.warn({ err }, 'could not write done-markers after recovery; will retry');
    }
  }

  /** One script call for the marks; what fails is kept for the next recovery, never dropped. */
  private async write(items: MarkItem[]): Promise<void> {
    const { metrics, store, log } = this.deps;
    if (!this.deps.redisAvailable()) {
      metrics.stateFailures.inc({ operation: 'mark_published' }, items.length);
      for (const it of items) this.unsynced.set(it.corrId, it);
      return;
    }
    metrics.countStateOps('mark_published', items.length);
    try {
      // On a Redis Cluster, a partition whose call failed leaves its marks only: they wait for the
      // next recovery, the others are written.
      const unmarked = await store.markPublished(items);
      if (unmarked.length > 0) {
        metrics.stateFailures.inc({ operation: 'mark_published' }, unmarked.length);
        log.warn({ count: unmarked.length }, 'mark published failed for some partitions; will write after recovery');
        for (const it of unmarked) this.unsynced.set(it.corrId, it);
      }
    } catch (err) {
      metrics.stateFailures.inc({ operation: 'mark_published' }, items.length);
      log.warn({ err }, 'mark published failed; will write after recovery');
      for (const it of items) this.unsynced.set(it.corrId, it);
    }
  }
}
