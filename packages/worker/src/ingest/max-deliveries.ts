import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import type { Logger } from '@at-orchestrator/runtime';
import type { DeadLetterPublisher } from '../emit/dead-letters.js';

/** The advisory JetStream sends when a message of `stream` reached the consumer's max_deliver. */
export const maxDeliveriesSubject = (stream: string, durable: string): string => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${durable}`;

/** Every worker listens; one of them (a queue group) dead-letters each message. */
const QUEUE_GROUP = 'at-orchestrator-max-deliveries';
const ATTEMPTS = 5;

export interface MaxDeliveriesOptions {
  nc: NatsConnection;
  stream: string;
  durable: string;
  maxDeliver: number;
  dlq: DeadLetterPublisher;
  log: Logger;
}

/**
 * Poison messages: a signal delivered MAX_DELIVER times without being acked (it crashed or stalled
 * whoever took it, or kept being given back) is no longer delivered by JetStream, which says so in an
 * advisory. This reads that advisory, fetches the message by its stream sequence and dead-letters it
 * with reason `max_deliver` (Nats-Msg-Id `dlq:<stream>:<seq>`, the id a dead letter of that message
 * always has, so it is stored once). Advisories are core NATS: one sent while no worker is connected
 * is not seen, and its message stays in the stream (docs/security.md).
 */
export class MaxDeliveriesWatch {
  private sub: Subscription | undefined;
  private jsm: JetStreamManager | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly o: MaxDeliveriesOptions) {}

  async start(): Promise<void> {
    this.jsm = await jetstreamManager(this.o.nc);
    this.sub = this.o.nc.subscribe(maxDeliveriesSubject(this.o.stream, this.o.durable), {
      queue: QUEUE_GROUP,
      callback: (err, msg) => {
        if (err !== null) return;
        let seq: unknown;
        try {
          seq = (msg.json<{ stream_seq?: unknown }>()).stream_seq;
        } catch {
          seq = undefined;
        }
        if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) {
          this.o.log.warn('max-deliveries advisory without a stream sequence; ignored');
          return;
        }
        const p = this.deadLetter(seq).finally(() => this.inFlight.delete(p));
        this.inFlight.add(p);
      },
    });
  }

  /** Stops listening; waits for the letters being written. */
  async close(): Promise<void> {
    this.sub?.unsubscribe();
    this.sub = undefined;
    await Promise.allSettled([...this.inFlight]);
  }

  private async deadLetter(seq: number): Promise<void> {
    const { stream, log } = this.o;
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        const stored = await this.jsm!.streams.getMessage(stream, { seq });
        if (stored === null) {
          log.warn({ stream, seq }, 'message past max_deliver is gone from the stream (limits); no dead letter');
          return;
        }
        const detail = `delivered ${this.o.maxDeliver} times without being settled (MAX_DELIVER)`;
        const ok = await this.o.dlq.publish({ subject: stored.subject, data: stored.data, letterId: `dlq:${stream}:${seq}` }, 'max_deliver', detail, undefined, seq);
        if (ok) return;
      } catch (err) {
        log.warn({ err, stream, seq, attempt }, 'could not fetch a message past max_deliver');
      }
      await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
    }
    log.error({ stream, seq }, 'message past max_deliver not dead-lettered; it stays in the stream (at-orchestrator dlq cannot see it)');
  }
}
