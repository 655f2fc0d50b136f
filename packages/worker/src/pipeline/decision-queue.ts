import type { Logger } from '@at-orchestrator/runtime';
import { engineInput, shapeDecision, type DecisionContext, type DecisionJob } from '../emit/decision-builder.js';
import type { BatchDecider } from '../engines/decider.js';
import type { DecisionEngine } from '../engines/index.js';
import type { Correlations } from '../fanin/correlations.js';
import type { OpenCorrelation } from '../fanin/fan-in-buffer.js';
import type { TokenBucket } from '../rate-limiter.js';

/** The emit path as the queue sees it (DecisionEmitter). */
export interface DecisionSink {
  emit(jobs: DecisionJob[]): Promise<void>;
  /** Decisions claimed or published right now, or waiting for a retry. */
  readonly pending: number;
  /** True while the sink can take no more decisions (its own bound is full): deciding stops. */
  readonly blocked?: boolean;
}

export interface DecisionQueueOptions {
  correlations: Correlations;
  engine: DecisionEngine;
  decider: BatchDecider;
  sink: DecisionSink;
  ctx: DecisionContext;
  bucket: TokenBucket;
  /** Ready plus emitting decisions at which intake pauses (backpressure). */
  maxPending: number;
  /** Open correlations at which intake pauses (MAX_OPEN_CORRELATIONS); signals not yet taken in count too. */
  maxOpen?: number;
  /** Called when intake is paused by a bound (for the metric). */
  onPause?: (bound: 'pending_decisions' | 'open_correlations' | 'unsynced_done') => void;
  /** The epoch a decision for a partition is claimed under; -1 when the partition is not ours. */
  decisionEpoch: (partition: number) => number;
  /** While false (draining), capacity never blocks: what was received must be able to finish. */
  accepting: () => boolean;
  log: Logger;
}

interface Ready {
  corr: OpenCorrelation;
  atDeadline: boolean;
}

/**
 * Ready correlations on their way to a decision: those whose agents have reported and those whose
 * deadline passed, decided in batches as fast as RATE_LIMIT_RPS allows and handed to the emit path.
 * It is also the bound on decisions in flight: intake waits on `capacity()` while it is full.
 */
export class DecisionQueue {
  private readonly ready: Ready[] = [];
  /** corr_id → the correlation from the moment it is ready until the emit path is done with it. */
  private readonly undecided = new Map<string, OpenCorrelation>();
  /** corr_id → the correlation while it is in `ready` (not handed to the engine, or back from it). */
  private readonly queued = new Map<string, OpenCorrelation>();
  private readonly emits = new Set<Promise<void>>();
  /** Taken from `ready`, with the engine, not yet handed to the emit path. */
  private deciding = 0;
  private capacityWaiters: Array<() => void> = [];
  private drainTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private mayEmit: () => boolean = () => true;

  constructor(private readonly o: DecisionQueueOptions) {}

  /**
   * A coordinated worker decides only while its heartbeat lease holds (WorkerMembership.holdsLease):
   * past it, the leader may have given its partitions to another worker, and the emit path's only
   * fence is the claim — which it skips while Redis is unreachable and gives up on when the claim
   * itself fails (publishing with the Nats-Msg-Id window alone). So a worker woken past its lease
   * (SIGSTOP, a long stall) during a Redis failover, or cut off from Redis longer than its lease while
   * the leader is not, decides nothing from memory: ready decisions wait here, retried each tick,
   * until a heartbeat is written again — Redis answers, and the claims then carry the fence. Checked
   * before deciding and again just before the emit path takes a batch (a batch decided meanwhile goes
   * back to the front of the queue).
   */
  gate(mayEmit: () => boolean): void {
    this.mayEmit = mayEmit;
  }

  /** Ready, being decided and emitting decisions. */
  get pending(): number {
    return this.ready.length + this.deciding + this.o.sink.pending;
  }

  /** Checks deadlines every `tickMs` from now on. */
  start(tickMs: number): void {
    this.tickTimer ??= setInterval(() => this.expireDeadlines(), tickMs);
  }

  enqueue(corr: OpenCorrelation, atDeadline: boolean): void {
    this.ready.push({ corr, atDeadline });
    this.undecided.set(corr.corrId, corr);
    this.queued.set(corr.corrId, corr);
  }

  /**
   * The correlation with this corr_id from the moment it is ready until its decision has been through
   * the emit path (published, found published, or fenced): waiting (the rate limit, the lease gate),
   * being decided, or being claimed and published. It has left the fan-in and may not be in the
   * decided set yet, and its claim may still be fenced: a signal that arrives for it meanwhile must
   * not open it a second time (two decisions for one corr_id), nor be acked before the decision is
   * published (if it is fenced, the signal belongs to the partition's new owner).
   */
  waiting(corrId: string): OpenCorrelation | undefined {
    return this.undecided.get(corrId);
  }

  /**
   * Whether a correlation with this corr_id is in the queue, not yet handed to the engine: a resume
   * from Redis leaves it alone. (One being decided or claimed is in the decided set until its claim is
   * refused — and then it must be loadable again: PartitionOwner.claimRefused.)
   */
  isQueued(corrId: string): boolean {
    return this.queued.has(corrId);
  }

  /** Decides what is ready, as fast as the rate limit allows, and hands the batch to the emit path. */
  drain(ignoreRateLimit = false): void {
    if (this.ready.length === 0) return;
    // Our lease has lapsed: wait until it is renewed (the tick drains again).
    if (!this.mayEmit()) return;
    // The emit path's own bound is full (done-markers waiting for Redis): wait, retried each tick.
    if (this.o.sink.blocked === true && !ignoreRateLimit) return;
    const n = ignoreRateLimit ? this.ready.length : this.o.bucket.take(this.ready.length);
    if (n > 0) this.launch(this.ready.splice(0, n));
    if (this.ready.length > 0 && this.drainTimer === undefined) {
      this.drainTimer = setTimeout(() => {
        this.drainTimer = undefined;
        this.drain();
      }, Math.max(1, this.o.bucket.msUntilNext()));
    }
    this.wake();
  }

  /** Decides the ready correlations of `partitions` now, whatever the rate limit (a revoke finishes its work). */
  takePartitions(partitions: ReadonlySet<number>): void {
    const mine = this.ready.filter((r) => partitions.has(r.corr.partition));
    if (mine.length === 0 || !this.mayEmit()) return;
    let kept = 0;
    for (const r of this.ready) if (!partitions.has(r.corr.partition)) this.ready[kept++] = r;
    this.ready.length = kept;
    this.launch(mine);
  }

  /** Resolves when every decision handed to the emit path so far has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.emits]);
  }

  /**
   * Backpressure: undefined when there is room, else a promise that resolves when there is.
   * `inHand` is signals pulled but not yet taken in: each may open a correlation, so they count
   * against MAX_OPEN_CORRELATIONS before they are in the fan-in.
   */
  capacity(inHand = 0): Promise<void> | undefined {
    const full = this.fullBound(inHand);
    if (full === undefined || !this.o.accepting()) return undefined;
    this.o.onPause?.(full);
    return new Promise((resolve) => this.capacityWaiters.push(resolve));
  }

  /** Which bound is full, if any. */
  fullBound(inHand = 0): 'pending_decisions' | 'open_correlations' | 'unsynced_done' | undefined {
    if (this.pending >= this.o.maxPending) return 'pending_decisions';
    if (this.o.maxOpen !== undefined && this.o.correlations.open.size + inHand >= this.o.maxOpen) return 'open_correlations';
    if (this.o.sink.blocked === true) return 'unsynced_done';
    return undefined;
  }

  /** Lets waiting intake go on when there is room again, or when the worker stops accepting. */
  wake(): void {
    if (this.capacityWaiters.length === 0) return;
    if (this.fullBound() !== undefined && this.o.accepting()) return;
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const w of waiters) w();
  }

  /** Stops the timers; what is queued stays for `drain(true)` or the next owner. */
  close(): void {
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    if (this.drainTimer !== undefined) clearTimeout(this.drainTimer);
    this.tickTimer = undefined;
    this.drainTimer = undefined;
  }

  private expireDeadlines(): void {
    const { correlations } = this.o;
    const expired = correlations.open.takeExpired(Date.now());
    // Correlations also leave the fan-in where nobody wakes intake (a partition given up, a fenced
    // store); the tick lets paused intake see the room, and retries decisions a blocked sink held.
    if (expired.length === 0) {
      if (this.ready.length > 0 && this.drainTimer === undefined) this.drain();
      this.wake();
      return;
    }
    for (const corr of expired) this.enqueue(corr, true);
    this.drain();
  }

  private launch(batch: Ready[]): void {
    for (const { corr } of batch) {
      if (this.queued.get(corr.corrId) === corr) this.queued.delete(corr.corrId);
      this.o.correlations.markDecided(corr);
    }
    const emit = this.decideAndEmit(batch).then(
      (requeued) => {
        // Back in `ready` (the lease lapsed meanwhile), a batch stays undecided.
        if (!requeued) this.forget(batch);
      },
      (err: unknown) => {
        this.forget(batch);
        this.o.log.error({ err }, 'emit failed');
      },
    );
    this.emits.add(emit);
    void emit.finally(() => {
      this.emits.delete(emit);
      this.wake();
    });
  }

  private forget(batch: readonly Ready[]): void {
    for (const { corr } of batch) if (this.undecided.get(corr.corrId) === corr) this.undecided.delete(corr.corrId);
  }

  /** Resolves true when the batch went back to the queue instead of the emit path. */
  private async decideAndEmit(batch: Ready[]): Promise<boolean> {
    const { engine, ctx, decisionEpoch } = this.o;
    this.deciding += batch.length;
    let jobs: DecisionJob[];
    try {
      const results = await this.o.decider.decide(batch.map(({ corr, atDeadline }) => engineInput(corr, atDeadline)));
      const now = Date.now();
      jobs = batch.map(({ corr, atDeadline }, i) => shapeDecision(engine, corr, results[i]!, atDeadline, ctx, decisionEpoch(corr.partition), now));
    } finally {
      this.deciding -= batch.length;
    }
    if (!this.mayEmit()) {
      // The lease lapsed while the engine decided (the process was stopped or stalled): decided again
      // once it is renewed, under the epoch of that moment.
      this.ready.unshift(...batch);
      for (const { corr } of batch) this.queued.set(corr.corrId, corr);
      return true;
    }
    await this.o.sink.emit(jobs);
    return false;
  }
}
