import type { JsMsg } from '@nats-io/jetstream';
import type { ForwardReply } from '@at-orchestrator/contracts';
import type { Counter, Logger } from '@at-orchestrator/runtime';
import { HELD_REDELIVERY_MS, RETRY_DELAY_MS } from '../ingest/signal-source.js';
import type { ForwardItem } from './forwarder.js';

/** A pulled message whose signal goes to another worker, and what is sent for it. */
export interface Forward {
  msg: Pick<JsMsg, 'ack' | 'nak'>;
  item: ForwardItem;
}

export interface ForwardLanesOptions {
  /** Sends one request to `owner`; resolves to one verdict per item ("retry" for all on any failure). */
  send: (owner: string, items: ForwardItem[]) => Promise<ForwardReply['verdicts']>;
  /** The owner the newest table names for a partition, if any. */
  ownerOf: (partition: number) => string | undefined;
  metrics: { signalsForwarded: Counter; forwardRetries: Counter };
  log: Logger;
  /**
   * Forwarded signals awaiting their owner's answer, at most, before intake waits for answers.
   * Bounded by messages, not requests: an owner that died answers nothing until the request times
   * out, and the signals of our own partitions must keep flowing meanwhile.
   */
  maxInFlight?: number;
  /** Requests in flight to one owner at a time. */
  requestsPerOwner?: number;
  /** Signals in one request, at most. */
  maxRequest?: number;
}

interface Lane {
  inFlight: number;
  queue: Forward[];
}

/**
 * Signals on their way to the workers that own their partitions, one lane per owner: at most
 * `requestsPerOwner` requests in flight to an owner; what comes meanwhile waits and goes in the next
 * request, so requests grow with load as the batches do. Each source message is settled by the
 * owner's answer: acked when stored, given back otherwise.
 */
export class ForwardLanes {
  private readonly lanes = new Map<string, Lane>();
  private readonly requests = new Set<Promise<void>>();
  /** Signals queued or in a request (their JetStream messages not yet settled). */
  private queued = 0;
  private readonly maxInFlight: number;
  private readonly requestsPerOwner: number;
  private readonly maxRequest: number;

  constructor(private readonly o: ForwardLanesOptions) {
    this.maxInFlight = o.maxInFlight ?? 4_096;
    this.requestsPerOwner = o.requestsPerOwner ?? 2;
    this.maxRequest = o.maxRequest ?? 1_024;
  }

  /** Signals queued or awaiting an answer. */
  get inFlight(): number {
    return this.queued;
  }

  /** Requests awaiting an answer. */
  get requestsInFlight(): number {
    return this.requests.size;
  }

  enqueue(owner: string, list: Forward[]): void {
    let lane = this.lanes.get(owner);
    if (lane === undefined) this.lanes.set(owner, (lane = { inFlight: 0, queue: [] }));
    for (const entry of list) lane.queue.push(entry);
    this.queued += list.length;
    this.pump(owner, lane);
  }

  /** Resolves once fewer than `maxInFlight` signals await an answer (or no request is out). */
  async waitForRoom(): Promise<void> {
    while (this.queued >= this.maxInFlight && this.requests.size > 0) await Promise.race(this.requests);
  }

  /** Resolves when every lane is empty: a finished request sends what queued behind it. */
  async drain(): Promise<void> {
    while (this.requests.size > 0) await Promise.allSettled([...this.requests]);
  }

  private pump(owner: string, lane: Lane): void {
    while (lane.inFlight < this.requestsPerOwner && lane.queue.length > 0) {
      const taken = lane.queue.splice(0, this.maxRequest);
      this.queued -= taken.length;
      // The table may have moved on while these waited: those are given back and routed anew.
      const batch: Forward[] = [];
      for (const entry of taken) {
        if (this.o.ownerOf(entry.item.partition) === owner) batch.push(entry);
        else this.retry(entry);
      }
      if (batch.length === 0) continue;
      lane.inFlight += 1;
      this.queued += batch.length;
      const sent: Promise<void> = this.forward(owner, batch)
        .catch((err: unknown) => {
          // No answer to settle by: give the batch back now rather than at JetStream's ack wait.
          this.o.log.error({ err }, 'forward failed');
          for (const entry of batch) this.retry(entry);
        })
        .finally(() => {
          lane.inFlight -= 1;
          this.queued -= batch.length;
          this.requests.delete(sent);
          this.pump(owner, lane);
          if (lane.inFlight === 0 && lane.queue.length === 0 && this.lanes.get(owner) === lane) this.lanes.delete(owner);
        });
      this.requests.add(sent);
    }
  }

  private async forward(owner: string, list: Forward[]): Promise<void> {
    this.o.metrics.signalsForwarded.inc(list.length);
    const verdicts = await this.o.send(
      owner,
      list.map((l) => l.item),
    );
    verdicts.forEach((v, i) => {
      const entry = list[i]!;
      if (v === 'stored') entry.msg.ack();
      else if (v === 'held') entry.msg.nak(HELD_REDELIVERY_MS);
      else this.retry(entry);
    });
  }

  private retry(entry: Forward): void {
    this.o.metrics.forwardRetries.inc();
    entry.msg.nak(RETRY_DELAY_MS);
  }
}
