import type { JetStreamClient } from '@nats-io/jetstream';
import type { Lock } from 'redlock';
import { DECISION_SUBJECT, channelSubject } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
import type { CorrelationStore } from '../state/correlation-store.js';
import type { CorrelationLock } from './correlation-lock.js';
import type { WorkerMetrics } from '../metrics.js';
import { encodeDecision, type DecisionJob } from './decision-builder.js';

export interface EmitterDeps {
  js: JetStreamClient;
  store: CorrelationStore;
  /** Redlock held from claim to publish; absent = no lock. */
  lock?: CorrelationLock;
  redisAvailable: () => boolean;
  metrics: WorkerMetrics;
  log: Logger;
  workerId: string;
  /** Called once a correlation is closed for good (published, or found already published). */
  onClosed: (job: DecisionJob, outcome: 'published' | 'already_published' | 'fenced') => void;
  retryDelayMs?: number;
}

/**
 * The guarded emit path: claim (epoch fence + done-marker in one Lua script) → publish on JetStream
 * with Nats-Msg-Id = corr_id (and corr_id:channel for fan-out) → mark published. A fenced claim is
 * counted and never published. Without Redis the claim is skipped (degraded) and the Nats-Msg-Id
 * duplicate window is what keeps the decision single; the done-markers are written when Redis returns.
 * A failed publish is retried with the same bytes until it succeeds or the process stops.
 */
export class DecisionEmitter {
  private readonly retry: DecisionJob[] = [];
  private readonly unsyncedDone = new Map<string, { corrId: string; partition: number; agents: string[] }>();
  private retryTimer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private closed = false;

  constructor(private readonly deps: EmitterDeps) {}

  /** Decisions being claimed or published right now, plus those waiting to be retried. */
  get pending(): number {
    return this.inFlight + this.retry.length;
  }

  async emit(jobs: DecisionJob[]): Promise<void> {
    if (jobs.length === 0) return;
    this.inFlight += jobs.length;
    const { lock } = this.deps;
    const locking = lock !== undefined && this.deps.redisAvailable() ? lock.acquire(jobs.map((j) => j.corr.corrId)) : Promise.resolve(undefined);
    try {
      // On the state connection the lock and the claims share one round trip: acquire() has written
      // its request before claim() writes the claims, and Redis runs a connection's commands in
      // order, so the lock (when had) is held when the claims run. On other masters there is no
      // order between connections, so the lock comes first.
      if (lock?.sharesConnectionWithStore !== true) await locking;
      const [, toPublish] = await Promise.all([locking, this.claim(jobs)]);
      await this.publishAll(toPublish);
    } finally {
      await lock?.release(await locking);
      this.inFlight -= jobs.length;
      if (this.inFlight === 0 && this.retry.length === 0) this.notifyIdle();
    }
  }

  /** After a Redis outage: write the done-markers of decisions published while it was down. */
  async syncAfterRecovery(): Promise<void> {
    if (this.unsyncedDone.size === 0) return;
    const items = [...this.unsyncedDone.values()];
    try {
      this.deps.metrics.stateOperations.inc({ operation: 'mark_published' }, items.length);
      await this.deps.store.markPublished(items);
      for (const it of items) this.unsyncedDone.delete(it.corrId);
      this.deps.log.info({ count: items.length }, 'done-markers written after redis recovery');
    } catch (err) {
      this.deps.metrics.stateFailures.inc({ operation: 'mark_published' }, items.length);
      this.deps.log.warn({ err }, 'could not write done-markers after recovery; will retry');
    }
  }

  /** Resolves when nothing is in flight or waiting for retry (or when closed). */
  idle(): Promise<void> {
    if (this.pending === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops retrying; what is still unpublished stays un-acked and open in Redis for the next owner. */
  close(): void {
    this.closed = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.notifyIdle();
  }

  private async claim(all: DecisionJob[]): Promise<DecisionJob[]> {
    const { store, metrics, log } = this.deps;
    // A job with no epoch (-1) belongs to a partition this worker no longer owns: refused here, so
    // that it is not published from memory while Redis, which would refuse it, is away.
    const jobs = all.filter((j) => j.epoch >= 0);
    for (const job of all) if (job.epoch < 0) this.fence(job, undefined);
    if (jobs.length === 0) return [];
    if (!this.deps.redisAvailable()) {
      metrics.stateFailures.inc({ operation: 'claim' }, jobs.length);
      return jobs;
    }
    metrics.stateOperations.inc({ operation: 'claim' }, jobs.length);
    let verdicts;
    try {
      verdicts = await store.claim(
        jobs.map((j) => ({ corrId: j.corr.corrId, partition: j.corr.partition, epoch: j.epoch, agents: j.decision.agents_present })),
        this.deps.workerId,
      );
    } catch (err) {
      metrics.stateFailures.inc({ operation: 'claim' }, jobs.length);
      log.warn({ err, count: jobs.length }, 'claim failed; publishing with Nats-Msg-Id deduplication only');
      return jobs;
    }
    const out: DecisionJob[] = [];
    verdicts.forEach((v, i) => {
      const job = jobs[i]!;
      switch (v.kind) {
        case 'claimed':
          out.push(job);
          break;
        case 'exists':
          if (v.published) {
            metrics.suppressedDecisions.inc({ reason: 'already_published' });
            this.closeJob(job, 'already_published');
          } else {
            // Claimed earlier (by us before a restart, or an owner that died before publishing).
            out.push(job);
          }
          break;
        case 'fenced':
          this.fence(job, v.currentEpoch);
          break;
      }
    });
    return out;
  }

  private fence(job: DecisionJob, currentEpoch: number | undefined): void {
    this.deps.metrics.fencedWrites.inc();
    this.deps.log.warn({ corr_id: job.corr.corrId, partition: job.corr.partition, epoch: job.epoch, current_epoch: currentEpoch }, 'decision fenced: partition has a newer owner');
    for (const m of job.corr.held) m.nak();
    job.corr.held.length = 0;
    this.deps.onClosed(job, 'fenced');
  }

  private async publishAll(jobs: DecisionJob[]): Promise<void> {
    if (jobs.length === 0) return;
    const results = await Promise.allSettled(jobs.map((j) => this.publish(j)));
    const published: DecisionJob[] = [];
    results.forEach((r, i) => {
      const job = jobs[i]!;
      if (r.status === 'fulfilled') {
        published.push(job);
      } else {
        this.deps.metrics.publishFailures.inc();
        if (this.retry.length === 0) this.deps.log.warn({ err: r.reason, corr_id: job.corr.corrId }, 'decision publish failed; will retry');
        this.retry.push(job);
      }
    });
    if (this.retry.length > 0) this.scheduleRetry();
    if (published.length > 0) await this.markPublished(published);
  }

  private async publish(job: DecisionJob): Promise<void> {
    const data = encodeDecision(job);
    const { js } = this.deps;
    const corrId = job.corr.corrId;
    const sends = [js.publish(DECISION_SUBJECT, data, { msgID: corrId })];
    for (const channel of job.decision.channels) {
      sends.push(js.publish(channelSubject(channel), data, { msgID: `${corrId}:${channel}` }));
    }
    await Promise.all(sends);
  }

  private async markPublished(jobs: DecisionJob[]): Promise<void> {
    const { metrics, store } = this.deps;
    const items = jobs.map((j) => ({ corrId: j.corr.corrId, partition: j.corr.partition, agents: j.decision.agents_present }));
    const now = Date.now();
    for (const job of jobs) {
      metrics.decisionsMade.inc({ type: job.type });
      if (job.atDeadline) metrics.correlationTimeouts.inc();
      metrics.decisionLatency.observe((now - job.corr.firstSeenMs) / 1000);
    }
    if (this.deps.redisAvailable()) {
      metrics.stateOperations.inc({ operation: 'mark_published' }, items.length);
      try {
        await store.markPublished(items);
      } catch (err) {
        metrics.stateFailures.inc({ operation: 'mark_published' }, items.length);
        this.deps.log.warn({ err }, 'mark published failed; will write after recovery');
        for (const it of items) this.unsyncedDone.set(it.corrId, it);
      }
    } else {
      metrics.stateFailures.inc({ operation: 'mark_published' }, items.length);
      for (const it of items) this.unsyncedDone.set(it.corrId, it);
    }
    // Only now are held source messages safe to ack: the decision is on JetStream.
    for (const job of jobs) this.closeJob(job, 'published');
  }

  private closeJob(job: DecisionJob, outcome: 'published' | 'already_published'): void {
    for (const m of job.corr.held) m.ack();
    job.corr.held.length = 0;
    this.deps.onClosed(job, outcome);
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const jobs = this.retry.splice(0, this.retry.length);
      this.inFlight += jobs.length;
      this.publishAll(jobs)
        .catch((err: unknown) => this.deps.log.error({ err }, 'retry failed'))
        .finally(() => {
          this.inFlight -= jobs.length;
          if (this.pending === 0) this.notifyIdle();
        });
    }, this.deps.retryDelayMs ?? 500);
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
