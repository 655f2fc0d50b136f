import type { EnrichedSignal } from '@at-orchestrator/contracts';
import type { DecisionEngine } from '../engines/index.js';
import type { SignalSource } from '../ingest/signal-source.js';
import type { ClaimVerdict } from '../state/correlation-store.js';
import { DeadlineHeap } from './deadline-heap.js';

/** One correlation being collected: its signals, its deadline, and what is not yet safe in Redis. */
export interface OpenCorrelation {
  readonly corrId: string;
  readonly partition: number;
  instrument: string | undefined;
  readonly signals: Record<string, EnrichedSignal>;
  /** agent → signal JSON as received, kept only while not yet written to Redis. */
  readonly unsynced: Map<string, string>;
  agentCount: number;
  readonly firstSeenMs: number;
  readonly deadlineMs: number;
  /**
   * Source messages not acked yet because their signal is only in memory (Redis down): acked once
   * Redis has them or the decision is published, so a crash before then makes JetStream redeliver.
   */
  readonly held: SignalSource[];
  /** A previous owner claimed it but never marked it published: it must be decided again. */
  claimedNotPublished: boolean;
  /**
   * Its claim, made in the same Redis call as the store of the signal that completed it (Intake).
   * Used once, by the emit path, when the decision is claimed under the same epoch and the answer is
   * fresh; otherwise it claims as usual.
   */
  preclaim: Preclaim | undefined;
}

export interface Preclaim {
  readonly epoch: number;
  /** The verdict, or undefined when the call failed. */
  readonly verdict: Promise<ClaimVerdict | undefined>;
  /** performance.now() when Redis answered. */
  answeredAt: number | undefined;
}

/**
 * Collects signals per corr_id in memory and knows when a correlation is ready (its required agents
 * and at least MIN_AGENTS_REQUIRED have reported) and when its deadline has passed.
 */
export class FanInBuffer {
  private readonly open = new Map<string, OpenCorrelation>();
  private deadlines = new DeadlineHeap();

  constructor(
    private readonly engine: DecisionEngine,
    private readonly minAgents: number,
    private readonly timeoutMs: number,
  ) {}

  get size(): number {
    return this.open.size;
  }

  get(corrId: string): OpenCorrelation | undefined {
    return this.open.get(corrId);
  }

  /** Opens a correlation at its first signal (or re-opens one loaded from Redis with its deadline). */
  create(corrId: string, partition: number, firstSeenMs: number, deadlineMs = firstSeenMs + this.timeoutMs): OpenCorrelation {
    const corr: OpenCorrelation = {
      corrId,
      partition,
      instrument: undefined,
      signals: Object.create(null) as Record<string, EnrichedSignal>,
      unsynced: new Map(),
      agentCount: 0,
      firstSeenMs,
      deadlineMs,
      held: [],
      claimedNotPublished: false,
      preclaim: undefined,
    };
    this.open.set(corrId, corr);
    this.deadlines.push(deadlineMs, corrId);
    return corr;
  }

  /** Adds a signal; returns false when that agent already reported for this correlation. */
  add(corr: OpenCorrelation, signal: EnrichedSignal): boolean {
    if (corr.signals[signal.agent_name] !== undefined) return false;
    corr.signals[signal.agent_name] = signal;
    corr.agentCount += 1;
    if (corr.instrument === undefined && signal.instrument !== undefined) corr.instrument = signal.instrument;
    return true;
  }

  isReady(corr: OpenCorrelation): boolean {
    if (corr.agentCount < this.minAgents) return false;
    for (const agent of this.engine.requiredAgents({ instrument: corr.instrument, signals: corr.signals })) {
      if (corr.signals[agent] === undefined) return false;
    }
    return true;
  }

  remove(corrId: string): void {
    this.open.delete(corrId);
  }

  /** Removes and returns the correlations whose deadline is at or before `now`. */
  takeExpired(now: number): OpenCorrelation[] {
    const out: OpenCorrelation[] = [];
    while (this.deadlines.peekDeadline() <= now) {
      const top = this.deadlines.pop()!;
      const corr = this.open.get(top.key);
      // Skip entries whose correlation was decided (or re-created with another deadline) meanwhile.
      if (corr === undefined || corr.deadlineMs !== top.deadline) continue;
      this.open.delete(top.key);
      out.push(corr);
    }
    // Keep the heap from growing with stale entries when most correlations decide early.
    if (this.deadlines.size > 4 * this.open.size + 1024) this.rebuildHeap();
    return out;
  }

  values(): IterableIterator<OpenCorrelation> {
    return this.open.values();
  }

  private rebuildHeap(): void {
    const fresh = new DeadlineHeap();
    for (const c of this.open.values()) fresh.push(c.deadlineMs, c.corrId);
    this.deadlines = fresh;
  }
}
