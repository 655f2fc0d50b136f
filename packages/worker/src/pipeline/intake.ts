import type { EnrichedSignal } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
import type { Correlations } from '../fanin/correlations.js';
import type { OpenCorrelation, Preclaim } from '../fanin/fan-in-buffer.js';
import { RETRY_DELAY_MS, type SignalSource } from '../ingest/signal-source.js';
import type { WorkerMetrics } from '../metrics.js';
import type { CorrelationStore, SignalToStore, StoreVerdict } from '../state/correlation-store.js';
import type { DecisionQueue } from './decision-queue.js';
import { ParkedSignals } from './parked-signals.js';

/** A valid signal of a partition this worker owns, with the way to settle its source. */
export interface Inbound {
  signal: EnrichedSignal;
  payload: string;
  partition: number;
  source: SignalSource;
  /** Dead-letters the signal with a reason and settles its source (acked once the letter is stored). */
  reject: (reason: string, detail: string) => Promise<void>;
}

/** The ownership facts intake writes under (PartitionOwner). */
export interface WriteEpochs {
  /** The epoch this worker owns the partition at, if it does. */
  ownedEpoch(partition: number): number | undefined;
  /** False while self-owned partitions have no epochs yet (Redis not reached since start). */
  readonly canWrite: boolean;
}

export interface IntakeOptions {
  correlations: Correlations;
  queue: DecisionQueue;
  store: CorrelationStore;
  redisAvailable: () => boolean;
  epochs: WriteEpochs;
  /** MAX_AGENTS_PER_CORRELATION: a signal from one more agent goes to the DLQ (too_many_agents). */
  maxAgentsPerCorrelation: number;
  /** Written into the claims made with a store (the done-marker names the claiming worker). */
  workerId: string;
  metrics: WorkerMetrics;
  log: Logger;
}

interface Pending {
  source: SignalSource;
  corr: OpenCorrelation;
  agent: string;
  payload: string;
}

/** A correlation the batch completes, and the epoch its claim is made under. */
interface Completed {
  corr: OpenCorrelation;
  epoch: number;
}

interface Late {
  corrId: string;
  agent: string;
  payload: string;
}

/**
 * Takes signals of our partitions into the fan-in: new, duplicate or late; stores the new ones in
 * Redis in one round trip under the partition's epoch and settles their sources by Redis's answer
 * (held in memory while Redis is down); hands correlations that became ready to the decision queue.
 */
export class Intake {
  private readonly inFlight = new Set<Promise<void>>();
  /**
   * Agents of a correlation taken in whose store Redis has not answered yet (this batch's and the
   * parked ones included). Their signal is neither in Redis nor kept as unsynced: a repeat delivery
   * must not be acked meanwhile.
   */
  private readonly storing = new Map<OpenCorrelation, Set<string>>();
  /**
   * New signals of correlations they did not complete, waiting (PARK_MS at most) to go in the next
   * store call: a correlation's first signal rides with the one that completes it. Marked storing.
   */
  private readonly parked = new ParkedSignals<Pending>((batch) => this.storeParked(batch));

  constructor(private readonly o: IntakeOptions) {}

  take(items: Inbound[]): Promise<void> {
    const p = this.run(items);
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }

  /** Stores what is parked now, and resolves when every intake started so far has finished. */
  async settled(): Promise<void> {
    this.parked.flush();
    await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Whether a batch's new signals wait to ride with the next store instead of costing a round trip
   * of their own: when they complete no correlation (nothing to claim or decide) and every source can
   * stay unsettled meanwhile (a JetStream message; a forwarding worker awaits its answer).
   */
  private parks(pending: readonly Pending[], touched: ReadonlySet<OpenCorrelation>): boolean {
    const { open } = this.o.correlations;
    for (const p of pending) if (!p.source.holdable) return false;
    for (const corr of touched) if (open.get(corr.corrId) === corr && open.isReady(corr)) return false;
    return true;
  }

  /** Stores signals parked and not taken by a later store (its timer fired, or the bound or a flush). */
  private storeParked(batch: Pending[]): void {
    const late: Late[] = [];
    const p = this.persist(batch, late)
      .finally(() => this.unmarkStoring(batch))
      .then(() => {
        if (late.length > 0) this.recordLate(late);
      })
      // persist settles every outcome itself; anything else leaves the sources unacked (redelivered).
      .catch((err: unknown) => this.o.log.error({ err, count: batch.length }, 'storing parked signals failed; JetStream redelivers them'));
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async run(items: Inbound[]): Promise<void> {
    const { correlations, metrics } = this.o;
    const { open, decided } = correlations;
    const now = Date.now();
    const pending: Pending[] = [];
    const late: Late[] = [];
    const touched = new Set<OpenCorrelation>();
    const rejected: Array<Promise<void>> = [];

    for (const { signal, payload, partition, source, reject } of items) {
      const corrId = signal.corr_id;
      const agent = signal.agent_name;
      // Counted where the signal is taken in (its partition's owner), once per delivery taken.
      metrics.countSignal(agent);
      let corr = open.get(corrId);
      if (corr !== undefined && corr.agentCount >= this.o.maxAgentsPerCorrelation && corr.signals[agent] === undefined) {
        // A correlation's memory grows with its agents: one more than the bound is bad input.
        rejected.push(reject('too_many_agents', `correlation ${corrId} already has ${corr.agentCount} agents (MAX_AGENTS_PER_CORRELATION)`));
        continue;
      }
      if (corr === undefined) {
        const waiting = this.o.queue.waiting(corrId);
        if (waiting !== undefined) {
          // Ready and not yet through the emit path (waiting for the lease gate or the rate limit,
          // being decided or claimed): the same correlation, never a second one.
          this.settleWaiting(waiting, source, corrId, agent, late, payload);
          continue;
        }
        if (decided.has(corrId)) {
          this.lateOrDuplicate(source, corrId, agent, late, payload);
          continue;
        }
        corr = open.create(corrId, partition, now);
      }
      if (!open.add(corr, signal)) {
        metrics.duplicateSignals.inc();
        this.settleRepeat(corr, agent, source);
        continue;
      }
      pending.push({ source, corr, agent, payload });
      this.markStoring(corr, agent, true);
      touched.add(corr);
    }

    if (pending.length > 0 && this.canStore()) {
      if (this.parks(pending, touched)) {
        this.parked.add(pending);
      } else {
        // The store is written first; correlations it completes are decided without waiting for its
        // answer, so their claims follow it on the same connection (Redis runs them in that order) and
        // the decision path pays one round trip, not two. The claim re-checks what the store's answer
        // would have told: the partition's epoch and the done-marker (docs/architecture.md, step 6).
        // With one Redis the claims even go in the store's own script run (storeAndClaim). Parked
        // signals ride along: the round trip is paid anyway.
        const batch = this.parked.take(pending);
        const stored = this.persist(batch, late, this.completed(touched)).finally(() => this.unmarkStoring(batch));
        this.enqueueReady(touched);
        await stored;
      }
    } else {
      if (pending.length > 0) await this.persist(pending, late).finally(() => this.unmarkStoring(pending));
      this.enqueueReady(touched);
    }
    if (late.length > 0) this.recordLate(late);
    await Promise.all(rejected);
  }

  private canStore(): boolean {
    return this.o.redisAvailable() && this.o.epochs.canWrite;
  }

  /** Hands the correlations that became ready to the decision queue and lets it decide. */
  private enqueueReady(touched: ReadonlySet<OpenCorrelation>): void {
    const { correlations, queue } = this.o;
    const { open } = correlations;
    for (const corr of touched) {
      // A correlation closed meanwhile (a fenced store, decided before) is not decided here.
      if (open.get(corr.corrId) === corr && open.isReady(corr)) {
        open.remove(corr.corrId);
        queue.enqueue(corr, false);
      }
    }
    queue.drain();
  }

  /**
   * The correlations this batch completes, with the epoch we own their partition at, to be claimed
   * with its store — when one script may do both (one Redis or Sentinel, not a Cluster) and the
   * partition is ours to write.
   */
  private completed(touched: ReadonlySet<OpenCorrelation>): Completed[] {
    if (!this.o.store.claimsWithStore) return [];
    const { open } = this.o.correlations;
    const out: Completed[] = [];
    for (const corr of touched) {
      if (open.get(corr.corrId) !== corr || !open.isReady(corr)) continue;
      const epoch = this.o.epochs.ownedEpoch(corr.partition);
      if (epoch !== undefined) out.push({ corr, epoch });
    }
    return out;
  }

  /**
   * Stores the batch (and claims `completed`, when given) in one call, starting it before returning
   * its promise: the claims' verdicts are on the correlations (`preclaim`) before the caller hands
   * them to the decision queue.
   */
  private storeCall(items: SignalToStore[], completed: readonly Completed[]): Promise<StoreVerdict[]> {
    const { store, metrics } = this.o;
    if (completed.length === 0) return store.storeSignals(items);
    const claims = completed.map(({ corr, epoch }) => ({ corrId: corr.corrId, partition: corr.partition, epoch, agents: Object.keys(corr.signals).sort() }));
    metrics.countStateOps('claim', claims.length);
    const both = store.storeAndClaim(items, claims, this.o.workerId);
    completed.forEach(({ corr, epoch }, i) => {
      const preclaim: Preclaim = {
        epoch,
        answeredAt: undefined,
        verdict: both.then(
          (r) => {
            preclaim.answeredAt = performance.now();
            return r.claimed[i];
          },
          () => undefined,
        ),
      };
      corr.preclaim = preclaim;
    });
    return both.then((r) => r.stored);
  }

  /** Writes new signals to Redis (one round trip) and settles them; holds them when Redis is down. */
  private async persist(pending: Pending[], late: Late[], completed: readonly Completed[] = []): Promise<void> {
    const { correlations, metrics, epochs } = this.o;
    if (this.canStore()) {
      const items: SignalToStore[] = pending.map((p) => ({
        corrId: p.corr.corrId,
        agent: p.agent,
        partition: p.corr.partition,
        payload: p.payload,
        deadlineMs: p.corr.deadlineMs,
        epoch: epochs.ownedEpoch(p.corr.partition) ?? -1,
      }));
      metrics.countStateOps('store', items.length);
      try {
        const verdicts = await this.storeCall(items, completed);
        verdicts.forEach((v, i) => {
          const p = pending[i]!;
          if (v.kind === 'stored') {
            p.source.ack();
          } else if (v.kind === 'duplicate') {
            metrics.duplicateSignals.inc();
            p.source.ack();
          } else if (v.kind === 'fenced') {
            // The partition has a newer owner (we were paused past our lease): give the signal back.
            correlations.giveBackFenced(p.corr, items[i]!.epoch);
            p.source.nak(RETRY_DELAY_MS);
          } else {
            correlations.decidedBefore(p.corr, v.agents);
            this.lateOrDuplicate(p.source, p.corr.corrId, p.agent, late, p.payload);
          }
        });
        return;
      } catch (err) {
        metrics.stateFailures.inc({ operation: 'store' }, items.length);
        this.o.log.warn({ err, count: items.length }, 'storing signals failed; holding them in memory');
      }
    } else {
      metrics.stateFailures.inc({ operation: 'store' }, pending.length);
    }
    for (const p of pending) correlations.holdUnsynced(p.corr, p.agent, p.payload, p.source);
  }

  /**
   * A signal of a correlation the decision queue has not finished with. A repeat is settled as one.
   * Another agent is late, but the decision may yet be fenced (and the correlation go to the
   * partition's new owner): its source is held with the correlation — acked once the decision is
   * published, given back if it is fenced — not acked now (acked, the new owner would never see it).
   */
  private settleWaiting(corr: OpenCorrelation, source: SignalSource, corrId: string, agent: string, late: Late[], payload: string): void {
    if (corr.signals[agent] !== undefined) {
      this.o.metrics.duplicateSignals.inc();
      this.settleRepeat(corr, agent, source);
      return;
    }
    this.o.metrics.lateSignals.inc();
    late.push({ corrId, agent, payload });
    this.holdWith(corr, source);
  }

  /**
   * A second delivery of a signal the correlation has. Acking it acks the stream message the first
   * delivery stands for, so it is acked only once that signal is safe in Redis (Correlations'
   * settleDuplicate: held when it is in memory only). While the first delivery's store has no answer
   * it is neither: the repeat is held with the correlation. Acked here, a store then fenced (a worker
   * woken past its lease, which finds its own first and redelivered copies in its socket) gives back
   * a first delivery the stream no longer holds, and the signal is lost for the partition's new owner.
   */
  private settleRepeat(corr: OpenCorrelation, agent: string, source: SignalSource): void {
    if (this.storing.get(corr)?.has(agent) === true) this.holdWith(corr, source);
    else this.o.correlations.settleDuplicate(corr, agent, source);
  }

  /** Keeps a source un-acked with the correlation: acked when its decision is published, given back if the correlation is fenced or flushed. */
  private holdWith(corr: OpenCorrelation, source: SignalSource): void {
    if (source.holdable) {
      corr.held.push(source);
    } else {
      source.hold();
    }
  }

  private markStoring(corr: OpenCorrelation, agent: string, on: boolean): void {
    const agents = this.storing.get(corr);
    if (on) {
      if (agents === undefined) this.storing.set(corr, new Set([agent]));
      else agents.add(agent);
      return;
    }
    agents?.delete(agent);
    if (agents?.size === 0) this.storing.delete(corr);
  }

  private unmarkStoring(pending: readonly Pending[]): void {
    for (const p of pending) this.markStoring(p.corr, p.agent, false);
  }

  private lateOrDuplicate(source: SignalSource, corrId: string, agent: string, late: Late[], payload: string): void {
    if (this.o.correlations.decided.noteAgent(corrId, agent)) {
      this.o.metrics.duplicateSignals.inc();
    } else {
      this.o.metrics.lateSignals.inc();
      late.push({ corrId, agent, payload });
    }
    source.ack();
  }

  private recordLate(late: Late[]): void {
    if (!this.o.redisAvailable()) return;
    const { metrics } = this.o;
    metrics.countStateOps('record_late', late.length);
    this.o.store.recordLate(late).catch((err: unknown) => {
      metrics.stateFailures.inc({ operation: 'record_late' }, late.length);
      this.o.log.debug({ err }, 'recording late signals failed');
    });
  }
}
