import type { PubAck } from '@nats-io/jetstream';
import type { Lock } from 'redlock';
import { STORED_DECISION_SUBJECT, storedChannelSubject } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
import type { CorrelationStore } from '../state/correlation-store.js';
import type { CorrelationLock } from './correlation-lock.js';
import type { WorkerMetrics } from '../metrics.js';
import { encodeDecision, type DecisionJob } from './decision-builder.js';
import { DecisionClaims } from './decision-claims.js';
import { DoneMarkers } from './done-markers.js';
import type { StreamPublisher } from './jetstream-publisher.js';

export interface EmitterDeps {
  /** JetStreamPublisher in the worker; tests may wrap a JetStreamClient (jetStreamClientPublisher). */
  publisher: StreamPublisher;
  store: CorrelationStore;
  /** Redlock on the REDLOCK_URLS masters, held from claim to publish; absent (the default) = no lock. */
  lock?: CorrelationLock;
  redisAvailable: () => boolean;
  metrics: WorkerMetrics;
  log: Logger;
  workerId: string;
  /** Called once a correlation is closed for good (published, or found already published). */
  onClosed: (job: DecisionJob, outcome: 'published' | 'already_published' | 'fenced') => void;
  retryDelayMs?: number;
  /** Longest wait between two publish retries (the backoff doubles up to it). */
  maxRetryDelayMs?: number;
  /** Done-markers kept while Redis is down at most; when full, deciding stops (see `blocked`). */
  maxUnsyncedDone?: number;
  /** How long published decisions wait to be marked together (default MARK_DELAY_MS; 0 = at once). */
  markDelayMs?: number;
  /** How old a claim made with the store may be when used: half HEARTBEAT_INTERVAL_MS (DecisionClaims). */
  preclaimMaxAgeMs?: number;
  /** Called right after a batch's publishes are queued on the connection (AckBatch.flush: one write). */
  afterPublish?: () => void;
}

/**
 * The Nats-Msg-Id of a decision is its corr_id (as it always was: consumers may rely on it). A
 * channel copy's id is `<corr_id> <channel>`: a corr_id never holds a space (printable ASCII without
 * spaces, contracts/signal.ts), so no channel copy's id can equal a decision's id, and the first space
 * tells corr_id and channel apart, so two copies' ids differ too. (It used to be `<corr_id>:<channel>`,
 * which a corr_id holding ':' could collide with.)
 */
export function channelMsgId(corrId: string, channel: string): string {
  return `${corrId} ${channel}`;
}

/** After this long unpublished, a decision is logged as stuck (and again at each such interval). */
const STUCK_LOG_MS = 30_000;

/**
 * The guarded emit path: claim (epoch fence + done-marker in one Lua script) → publish on JetStream
 * with Nats-Msg-Id = corr_id (and channelMsgId for fan-out) → mark published. A fenced claim is
 * counted and never published. Without Redis the claim is skipped (degraded) and the Nats-Msg-Id
 * duplicate window is what keeps the decision single; the done-markers are written when Redis returns.
 * On a Redis Cluster a batch's claims go per partition: only the jobs of a partition whose call
 * failed are published degraded, the others keep their verdicts (a fenced one is not published).
 * A failed publish is retried with the same bytes, with a doubling backoff, until it succeeds or the
 * process stops; the orchestrator_decisions_unpublished gauge and a log line say while it is stuck.
 */
export class DecisionEmitter {
  private readonly retry: DecisionJob[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly baseRetryDelay: number;
  private retryDelay: number;
  private failingSince: number | undefined;
  private lastStuckLog = 0;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  /** Decisions whose claim Redis did not answer while publishing them unfenced was not allowed. */
  private readonly deferred: DecisionJob[] = [];
  private deferTimer: NodeJS.Timeout | undefined;
  private mayPublishUnclaimed: () => boolean = () => true;

  private readonly markers: DoneMarkers;
  private readonly claims: DecisionClaims;

  constructor(private readonly deps: EmitterDeps) {
    this.markers = new DoneMarkers(deps);
    this.claims = new DecisionClaims(deps);
    this.baseRetryDelay = deps.retryDelayMs ?? 500;
    this.retryDelay = this.baseRetryDelay;
  }

  /**
   * Whether deciding must stop for now: the done-markers kept while Redis is down (plus decisions in
   * flight, which may add theirs) reached their bound. Forgetting one could let a later owner decide
   * that correlation again once the Nats-Msg-Id window has passed, so the worker stops instead
   * (backpressure) until Redis takes them.
   */
  get blocked(): boolean {
    return this.markers.unsyncedCount + this.inFlight >= (this.deps.maxUnsyncedDone ?? Number.POSITIVE_INFINITY);
  }

  /** Decisions whose publish failed, waiting for their next try. */
  get unpublishedCount(): number {
    return this.retry.length;
  }

  /** Done-markers waiting for Redis. */
  get unsyncedCount(): number {
    return this.markers.unsyncedCount;
  }

  /** Decisions being claimed or published right now, plus those waiting to be retried. */
  get pending(): number {
    return this.inFlight + this.retry.length + this.deferred.length;
  }

  /**
   * Whether a decision may go out without a claim (Redis unreachable, or its claim failed), fenced by
   * nothing but the Nats-Msg-Id window: WorkerMembership.mayDecideFromMemory for a coordinated worker.
   * When it may not (the worker was stopped past its lease), such decisions wait and are claimed again
   * until Redis answers: a refused claim then fences them.
   */
  gate(mayPublishUnclaimed: () => boolean): void {
    this.mayPublishUnclaimed = mayPublishUnclaimed;
  }

  async emit(jobs: DecisionJob[]): Promise<void> {
    if (jobs.length === 0) return;
    this.inFlight += jobs.length;
    const { lock } = this.deps;
    // Only with REDLOCK_URLS: the lock's masters are other connections, so it is had (or given up
    // on) before the claims go out.
    const held = lock !== undefined && this.deps.redisAvailable() ? await lock.acquire(jobs.map((j) => j.corr.corrId)) : undefined;
    try {
      await this.publishAll(await this.claim(jobs));
    } finally {
      if (held !== undefined) await lock?.release(held);
      this.inFlight -= jobs.length;
      if (this.inFlight === 0 && this.retry.length === 0) this.notifyIdle();
    }
  }

  /** After a Redis outage: write the done-markers of decisions published while it was down. */
  syncAfterRecovery(): Promise<void> {
    return this.markers.syncAfterRecovery();
  }

  /** Resolves when nothing is in flight or waiting for retry (or when closed), and the marks are written. */
  async idle(): Promise<void> {
    if (this.pending !== 0 && !this.closed) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.flushMarks();
  }

  /** Writes the marks of every decision published so far (a partition leaving, shutdown). */
  flushMarks(): Promise<void> {
    return this.markers.flush();
  }

  /** Stops retrying; what is still unpublished stays un-acked and open in Redis for the next owner. */
  close(): void {
    this.closed = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    if (this.deferTimer !== undefined) clearTimeout(this.deferTimer);
    // Marks still waiting go out now (a failed one is the Nats-Msg-Id window's to absorb).
    void this.flushMarks();
    this.deps.publisher.close?.();
    this.notifyIdle();
  }

  private async claim(all: DecisionJob[]): Promise<DecisionJob[]> {
    const { metrics, log } = this.deps;
    // A job with no epoch (-1) belongs to a partition this worker no longer owns: refused here, so
    // that it is not published from memory while Redis, which would refuse it, is away.
    const jobs = all.filter((j) => j.epoch >= 0);
    for (const job of all) if (job.epoch < 0) this.fence(job, undefined);
    if (jobs.length === 0) return [];
    const verdicts = await this.claims.verdicts(jobs);
    const out: DecisionJob[] = [];
    const unanswered: DecisionJob[] = [];
    let unansweredError: unknown;
    verdicts.forEach((v, i) => {
      const job = jobs[i]!;
      switch (v.kind) {
        case 'unknown':
          // Redis away, the call failed, or (Redis Cluster) its partition's call failed while the
          // others answered: this one goes out degraded; the verdicts that came back are honoured.
          unanswered.push(job);
          unansweredError ??= v.error;
          break;
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
    if (unanswered.length > 0) {
      metrics.stateFailures.inc({ operation: 'claim' }, unanswered.length);
      // Not logged when Redis is known to be away (no call was made: the outage is logged once).
      if (unansweredError !== undefined) {
        log.warn(
          { err: unansweredError, count: unanswered.length, partitions: [...new Set(unanswered.map((j) => j.corr.partition))] },
          'claim failed; publishing with Nats-Msg-Id deduplication only',
        );
      }
      for (const job of this.unclaimed(unanswered)) out.push(job);
    }
    return out;
  }

  /**
   * Jobs Redis gave no verdict for: published with the Nats-Msg-Id window alone when the worker may
   * (see gate), otherwise kept and claimed again after a retry delay. Returns those to publish now.
   */
  private unclaimed(jobs: DecisionJob[]): DecisionJob[] {
    if (this.mayPublishUnclaimed()) return jobs;
    for (const job of jobs) this.deferred.push(job);
    this.deps.log.warn({ count: jobs.length }, 'claim unanswered after a stop past the lease: decisions wait for Redis to fence them');
    this.scheduleClaimRetry();
    return [];
  }

  private scheduleClaimRetry(): void {
    if (this.deferTimer !== undefined || this.closed) return;
    this.deferTimer = setTimeout(() => {
      this.deferTimer = undefined;
      this.runWaiting(this.deferred, (jobs) => this.claim(jobs).then((claimed) => this.publishAll(claimed)), 'claim retry failed');
    }, this.baseRetryDelay);
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
    const sent = jobs.map((j) => this.publish(j));
    this.deps.afterPublish?.();
    const results = await Promise.allSettled(sent);
    const published: DecisionJob[] = [];
    results.forEach((r, i) => {
      const job = jobs[i]!;
      if (r.status === 'fulfilled') {
        published.push(job);
      } else {
        this.deps.metrics.publishFailures.inc();
        if (this.retry.length === 0 && this.failingSince === undefined) this.deps.log.warn({ err: r.reason, corr_id: job.corr.corrId }, 'decision publish failed; will retry');
        this.retry.push(job);
      }
    });
    this.noteRetries(results.find((r) => r.status === 'rejected'));
    if (this.retry.length > 0) this.scheduleRetry();
    if (published.length > 0) await this.markPublished(published);
  }

  private async publish(job: DecisionJob): Promise<void> {
    const data = encodeDecision(job);
    const { publisher } = this.deps;
    const corrId = job.corr.corrId;
    const decision = publisher.publish(STORED_DECISION_SUBJECT, data, corrId).then((ack) => this.checkAck(ack, 'decision', corrId));
    if (job.decision.channels.length === 0) return decision;
    const sends = [decision];
    for (const channel of job.decision.channels) {
      sends.push(publisher.publish(storedChannelSubject(channel), data, channelMsgId(corrId, channel)).then((ack) => this.checkAck(ack, 'channel', corrId)));
    }
    await Promise.all(sends);
  }

  /**
   * A "duplicate" PubAck means JetStream already holds a message with this Nats-Msg-Id in its window:
   * this same decision, published by us (a retry whose first ack was lost) or by a previous owner of
   * the partition (which died before marking it published). Ids are unambiguous (channelMsgId), so it
   * cannot be another decision's: the decision is on the stream and is marked published. Counted, so
   * that many of them (owners racing) are visible.
   */
  private checkAck(ack: PubAck, kind: 'decision' | 'channel', corrId: string): void {
    if (!ack.duplicate) return;
    this.deps.metrics.duplicateAcks.inc({ kind });
    this.deps.log.debug({ corr_id: corrId, kind, stream: ack.stream, seq: ack.seq }, 'decision already on the stream (duplicate ack)');
  }

  /** Keeps the unpublished gauge, the backoff and the "stuck" log line in step with the retries. */
  private noteRetries(failure: PromiseRejectedResult | undefined): void {
    this.deps.metrics.decisionsUnpublished.set(this.retry.length);
    const now = Date.now();
    if (failure === undefined) {
      if (this.retry.length === 0 && this.failingSince !== undefined) {
        this.deps.log.info({ unpublished_ms: now - this.failingSince }, 'decision publishes succeed again');
        this.failingSince = undefined;
        this.retryDelay = this.baseRetryDelay;
      }
      return;
    }
    if (this.failingSince === undefined) this.failingSince = now;
    else this.retryDelay = Math.min(this.retryDelay * 2, this.deps.maxRetryDelayMs ?? 10_000);
    if (now - this.failingSince >= STUCK_LOG_MS && now - this.lastStuckLog >= STUCK_LOG_MS) {
      this.lastStuckLog = now;
      this.deps.log.error({ err: failure.reason as unknown, unpublished: this.retry.length, stuck_ms: now - this.failingSince }, 'decisions stuck unpublished; retrying with backoff');
    }
  }

  private async markPublished(jobs: DecisionJob[]): Promise<void> {
    const { metrics } = this.deps;
    const now = Date.now();
    for (const job of jobs) {
      metrics.countDecision(job.type);
      if (job.atDeadline) metrics.correlationTimeouts.inc();
      metrics.decisionLatency.observe((now - job.corr.firstSeenMs) / 1000);
    }
    await this.markers.add(jobs.map((j) => ({ corrId: j.corr.corrId, partition: j.corr.partition, agents: j.decision.agents_present })));
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
      this.runWaiting(this.retry, (jobs) => this.publishAll(jobs), 'retry failed');
    }, this.retryDelay);
  }

  /** Takes every job waiting in `list` and runs them again, counted in flight until they settle. */
  private runWaiting(list: DecisionJob[], run: (jobs: DecisionJob[]) => Promise<void>, failure: string): void {
    const jobs = list.splice(0, list.length);
    this.inFlight += jobs.length;
    run(jobs)
      .catch((err: unknown) => this.deps.log.error({ err }, failure))
      .finally(() => {
        this.inFlight -= jobs.length;
        if (this.pending === 0) this.notifyIdle();
      });
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
