import { parseSignal, type EnrichedSignal } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
import type { Correlations } from '../fanin/correlations.js';
import type { OpenCorrelation } from '../fanin/fan-in-buffer.js';
import type { WorkerMetrics } from '../metrics.js';
import type { CorrelationStore, SignalToStore, StoredCorrelation } from '../state/correlation-store.js';
import type { DecisionQueue } from './decision-queue.js';

/** What recovery asks of the partition owner and the emit path, in this order. */
export interface RecoverySteps {
  /** Self-owned partitions: take (or restore) their epochs in Redis. */
  takeEpochs(): Promise<void>;
  /** Load again the correlations whose claims were refused while we owned their partition anew. */
  resumeRefused(): Promise<void>;
  /** Write the done-markers of decisions published while Redis was away. */
  syncDoneMarkers(): Promise<void>;
}

export interface CorrelationSyncOptions {
  correlations: Correlations;
  queue: DecisionQueue;
  store: CorrelationStore;
  redisAvailable: () => boolean;
  /** The epoch this worker owns the partition at, if it does. */
  ownedEpoch: (partition: number) => number | undefined;
  decisionTimeoutMs: number;
  /** MAX_OPEN_CORRELATIONS: resumed pages wait for room under it. */
  maxOpen?: number;
  metrics: WorkerMetrics;
  log: Logger;
}

const encoder = new TextEncoder();

/** Correlations read from Redis per page when a partition is taken over. */
const PAGE_SIZE = 500;

/**
 * The worker's memory and Redis kept in step: open correlations loaded from Redis when a partition is
 * taken over, signals kept only in memory while Redis was down written once it is back (their
 * sources settled by what Redis answers), open correlations flushed when a partition is given up.
 */
export class CorrelationSync {
  private recovering: Promise<void> | undefined;

  constructor(private readonly o: CorrelationSyncOptions) {}

  /** Runs when Redis becomes available; one run at a time. Never rejects: what failed waits for the next time. */
  recover(steps: RecoverySteps): Promise<void> {
    this.recovering ??= this.runRecovery(steps).finally(() => {
      this.recovering = undefined;
    });
    return this.recovering;
  }

  /**
   * Loads the open correlations of partitions from Redis, deadlines included (only those `only`
   * names, when given), a page at a time: before each page it waits until the fan-in has room for
   * it (MAX_OPEN_CORRELATIONS), so a big partition taken over neither fills memory nor overtakes the
   * bound; the correlations already open time out and make room. A partition no longer ours by the
   * time Redis answered is left alone.
   */
  async resume(partitions: number[], only?: ReadonlySet<string>): Promise<void> {
    const { correlations, queue } = this.o;
    const pageSize = Math.max(1, Math.min(PAGE_SIZE, this.o.maxOpen ?? PAGE_SIZE));
    const counts = { resumed: 0, loaded: 0 };
    const pages = this.o.store.loadOpenPages(partitions, only, pageSize);
    for (;;) {
      await this.roomFor(pageSize);
      const next = await pages.next();
      if (next.done === true) break;
      this.resumePage(next.value, counts);
      queue.drain();
    }
    if (counts.loaded > 0) this.o.log.info(counts, 'resumed open correlations from redis');
  }

  private async roomFor(n: number): Promise<void> {
    // capacity(k) waits while open + k >= max: room for n more is open + n <= max.
    for (let wait = this.o.queue.capacity(n - 1); wait !== undefined; wait = this.o.queue.capacity(n - 1)) await wait;
  }

  private resumePage(loaded: StoredCorrelation[], counts: { resumed: number; loaded: number }): void {
    const { correlations, queue, ownedEpoch } = this.o;
    const { open, decided } = correlations;
    const stored = loaded.filter((s) => ownedEpoch(s.partition) !== undefined);
    counts.loaded += stored.length;
    for (const s of stored) {
      let corr = open.get(s.corrId);
      if (corr === undefined) {
        if (decided.has(s.corrId) || queue.isQueued(s.corrId)) continue;
        const firstSeen = s.deadlineMs - this.o.decisionTimeoutMs;
        corr = open.create(s.corrId, s.partition, firstSeen, s.deadlineMs);
        counts.resumed += 1;
      }
      for (const payload of Object.values(s.signals)) {
        const parsed = parseSignal(encoder.encode(payload), Number.MAX_SAFE_INTEGER);
        if (parsed.ok) open.add(corr, parsed.signal as EnrichedSignal);
      }
      corr.claimedNotPublished = s.claimedNotPublished;
      if (s.claimedNotPublished || open.isReady(corr)) {
        open.remove(corr.corrId);
        queue.enqueue(corr, !open.isReady(corr));
      }
    }
  }

  /**
   * Drops the open correlations of `partitions` (no longer ours) from memory; what is only in memory
   * is written under `epochs` (a partition without one is not written) or given back to JetStream.
   * They leave the fan-in at once, before any await: should a partition come back to us meanwhile,
   * its assign resumes it from Redis into fresh correlations, which this flush must not remove.
   */
  async flush(partitions: ReadonlySet<number>, epochs: ReadonlyMap<number, number>): Promise<void> {
    const { correlations, log } = this.o;
    const leaving = [...correlations.open.values()].filter((c) => partitions.has(c.partition));
    for (const c of leaving) correlations.open.remove(c.corrId);
    if (this.o.redisAvailable()) {
      try {
        await this.writeUnsynced(leaving, (p) => epochs.get(p));
      } catch (err) {
        log.warn({ err }, 'could not write held signals before release; returning them to JetStream');
      }
    }
    for (const c of leaving) correlations.returnHeld(c);
  }

  private async runRecovery(steps: RecoverySteps): Promise<void> {
    try {
      await steps.takeEpochs();
      const written = await this.writeUnsynced([...this.o.correlations.open.values()], this.o.ownedEpoch);
      if (written.signals > 0) this.o.log.info(written, 'signals held in memory written to redis');
      await steps.resumeRefused();
      await steps.syncDoneMarkers();
    } catch (err) {
      this.o.log.warn({ err }, 'redis recovery incomplete; will retry when redis is next available');
    }
  }

  /**
   * Writes what open correlations hold only in memory under the epoch `epochOf` gives their
   * partition (none: not written), and settles each correlation's held sources by what Redis
   * answered: acked once stored (or decided before), given back when fenced, since then the signal
   * belongs to the partition's new owner and must reach it by redelivery.
   */
  private async writeUnsynced(corrs: OpenCorrelation[], epochOf: (partition: number) => number | undefined): Promise<{ signals: number; correlations: number }> {
    const { correlations, metrics } = this.o;
    const items: SignalToStore[] = [];
    const owners: Array<{ corr: OpenCorrelation; from: number; to: number; epoch: number }> = [];
    for (const corr of corrs) {
      const epoch = epochOf(corr.partition);
      if (corr.unsynced.size === 0 || epoch === undefined) continue;
      const from = items.length;
      for (const [agent, payload] of corr.unsynced) {
        items.push({ corrId: corr.corrId, agent, partition: corr.partition, payload, deadlineMs: corr.deadlineMs, epoch });
      }
      owners.push({ corr, from, to: items.length, epoch });
    }
    if (items.length === 0) return { signals: 0, correlations: 0 };
    metrics.countStateOps('store', items.length);
    const verdicts = await this.o.store.storeSignals(items);
    for (const { corr, from, to, epoch } of owners) {
      const mine = verdicts.slice(from, to);
      if (mine.some((v) => v.kind === 'fenced')) {
        correlations.giveBackFenced(corr, epoch);
        continue;
      }
      correlations.synced(corr);
      const done = mine.find((v) => v.kind === 'done');
      // Decided before (while it is still ours to close): what we held is late.
      if (done !== undefined && correlations.open.get(corr.corrId) === corr) correlations.decidedBefore(corr, done.agents);
    }
    return { signals: items.length, correlations: owners.length };
  }
}
