import type { Counter } from '@at-orchestrator/runtime';
import { RETRY_DELAY_MS, type SignalSource } from '../ingest/signal-source.js';
import type { DecidedSet } from './decided-set.js';
import type { FanInBuffer, OpenCorrelation } from './fan-in-buffer.js';

export interface CorrelationsOptions {
  open: FanInBuffer;
  decided: DecidedSet;
  metrics: { fencedWrites: Counter };
  /** A write under `epoch` was refused: the partition has a newer owner (news for the partition owner). */
  onFenced: (partition: number, epoch: number) => void;
}

/**
 * The worker's correlations: those open (collecting signals) and those recently decided, with the
 * operations on one correlation that several stages share — settling or giving back the source
 * messages it holds, closing it because Redis says it was decided before, giving it up when a write
 * for it was fenced.
 *
 * Held sources: a signal kept only in memory (Redis down) keeps its source message un-acked in
 * `held` until Redis has it or the decision is published, so a crash before then makes JetStream
 * redeliver it.
 */
export class Correlations {
  readonly open: FanInBuffer;
  readonly decided: DecidedSet;

  constructor(private readonly o: CorrelationsOptions) {
    this.open = o.open;
    this.decided = o.decided;
  }

  /** Closes `corr` unless another correlation with its corr_id has taken its place meanwhile. */
  drop(corr: OpenCorrelation): void {
    if (this.open.get(corr.corrId) === corr) this.open.remove(corr.corrId);
  }

  /** From here on a signal for it is late (or a duplicate), never a new decision. */
  markDecided(corr: OpenCorrelation): void {
    this.decided.add(corr.corrId, Object.keys(corr.signals));
  }

  /** Redis says the correlation was decided before (by us before a restart, or by a previous owner). */
  decidedBefore(corr: OpenCorrelation, agents: string[]): void {
    this.drop(corr);
    if (!this.decided.has(corr.corrId)) this.decided.add(corr.corrId, agents);
  }

  /**
   * A store under `epoch` was refused: the correlation leaves the fan-in and what it held goes back
   * to JetStream, which brings it to the partition's new owner.
   */
  giveBackFenced(corr: OpenCorrelation, epoch: number): void {
    this.o.metrics.fencedWrites.inc();
    this.drop(corr);
    this.returnHeld(corr, RETRY_DELAY_MS);
    this.o.onFenced(corr.partition, epoch);
  }

  /** Keeps a signal only in memory: its source is held (or asked for again when it cannot wait). */
  holdUnsynced(corr: OpenCorrelation, agent: string, payload: string, source: SignalSource): void {
    corr.unsynced.set(agent, payload);
    if (source.holdable) corr.held.push(source);
    else source.hold();
  }

  /**
   * A second delivery of a signal we have. When the original is in memory only, acking this delivery
   * would ack the stream message the original stands for: it is held instead (or asked for again).
   */
  settleDuplicate(corr: OpenCorrelation, agent: string, source: SignalSource): void {
    if (!corr.unsynced.has(agent)) {
      source.ack();
      return;
    }
    if (source.holdable) corr.held.push(source);
    else source.hold();
  }

  /** Redis has what the correlation held in memory: its held sources are acked. */
  synced(corr: OpenCorrelation): void {
    corr.unsynced.clear();
    for (const m of corr.held) m.ack();
    corr.held.length = 0;
  }

  /** Gives the correlation's held sources back to JetStream; returns how many. */
  returnHeld(corr: OpenCorrelation, delayMs?: number): number {
    const n = corr.held.length;
    for (const h of corr.held) h.nak(delayMs);
    corr.held.length = 0;
    return n;
  }

  /** Gives every held source back (shutdown); returns how many. */
  returnAllHeld(): number {
    let returned = 0;
    for (const corr of this.open.values()) returned += this.returnHeld(corr);
    return returned;
  }

  /**
   * Source messages held by open correlations (the orchestrator_held_messages gauge). Counted when the
   * metrics are read, not kept up to date per batch: a walk over every open correlation per batch
   * cost O(open) on the hot path.
   */
  heldCount(): number {
    let held = 0;
    for (const c of this.open.values()) held += c.held.length;
    return held;
  }

  countByPartition(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const c of this.open.values()) counts.set(c.partition, (counts.get(c.partition) ?? 0) + 1);
    return counts;
  }
}
