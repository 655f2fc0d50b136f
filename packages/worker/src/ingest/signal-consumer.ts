import type { Consumer, ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@at-orchestrator/runtime';

/**
 * How long a pull request lives; nats.js sends it with an idle heartbeat of half that, and a consumer
 * that misses two heartbeats pulls again. Chosen by the server's topology (`pullExpiryFor`).
 */
export const PULL_EXPIRES_MS = { cluster: 5_000, single: 30_000 } as const;

/**
 * The pull expiry for the server we are connected to. In a NATS cluster the durable consumer's leader
 * may be another server, and when that server dies nothing tells the client: its pull request is lost
 * with the leader, and only missed heartbeats make it pull again — after 2 × 2.5 s with a 5 s expiry,
 * where nats.js's default (30 s) would wait 30 s. On a single server the consumer lives where the
 * client is connected: a restart is a reconnect, which pulls again at once, and a client that dies is
 * seen at once (its requests are dropped with its connection). There the longer heartbeat saves
 * nats-server real work: 0.06–0.08 ms of CPU per decision at 500/s (docs/high-frequency.md, "The pull
 * consumer's heartbeat"). What a longer request costs: a worker stopped (SIGSTOP) or cut off without
 * its connection closing keeps receiving its outstanding pull (at most MAX_IN_FLIGHT signals) for up
 * to 30 s instead of 5 s, and those come back after ACK_WAIT_SEC, like any unacked signal.
 */
export function pullExpiryFor(info: { cluster?: string } | undefined): number {
  return info?.cluster === undefined || info.cluster === '' ? PULL_EXPIRES_MS.single : PULL_EXPIRES_MS.cluster;
}

export interface SignalConsumerOptions {
  js: JetStreamClient;
  stream: string;
  durable: string;
  /** Messages the client buffers from the server at most (the bound on in-flight work). */
  maxInFlight: number;
  /** Largest batch handed to the handler. */
  maxBatch: number;
  log: Logger;
  /** Processes one batch; batches are handed over one at a time, in order. */
  handle: (batch: JsMsg[]) => Promise<void>;
  /**
   * Resolves when the worker can take more work (backpressure: we stop pulling while it waits).
   * `inHand` is messages received and not yet handled, which the bounds must count in advance.
   */
  capacity: (inHand: number) => Promise<void> | undefined;
  /** How long a pull request lives (`pullExpiryFor`); default: the cluster value, 5 s. */
  pullExpiresMs?: number;
}

/**
 * Pulls from the shared durable consumer and hands messages over in batches: every message already
 * received when the client has none left buffered goes into one batch, so batches grow with load and
 * a single message waits for nothing. While the handler is busy or the worker is saturated we stop
 * taking messages, the client's buffer fills, and it stops pulling — backpressure without drops.
 */
export class SignalConsumer {
  private messages: ConsumerMessages | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private batch: JsMsg[] = [];
  private flushScheduled = false;
  private processing: Promise<void> = Promise.resolve();
  private queuedBatches = 0;
  /** Received and not yet through the handler. */
  private inHand = 0;

  constructor(private readonly o: SignalConsumerOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops pulling, hands over what was already received, and waits for the handler to finish. */
  async stop(): Promise<void> {
    this.stopping = true;
    try {
      await this.messages?.close();
    } catch {
      // already closed
    }
    await this.loop;
    this.flush();
    await this.processing;
  }

  private async run(): Promise<void> {
    let consumer: Consumer | undefined;
    while (!this.stopping) {
      try {
        consumer ??= await this.o.js.consumers.get(this.o.stream, this.o.durable);
        const messages = await consumer.consume({ max_messages: this.o.maxInFlight, expires: this.o.pullExpiresMs ?? PULL_EXPIRES_MS.cluster });
        this.messages = messages;
        for await (const msg of messages) {
          this.batch.push(msg);
          this.inHand += 1;
          // Nothing more buffered: every message read so far is in the batch, and it leaves now rather
          // than after the event loop's turn (docs/high-frequency.md, "Where a decision's time goes",
          // "What changed"). The turn is the fallback while the loop below waits with messages still
          // buffered.
          if (this.batch.length >= this.o.maxBatch || messages.getPending() === 0) this.flush();
          else if (!this.flushScheduled) {
            this.flushScheduled = true;
            setImmediate(() => this.flush());
          }
          if (this.queuedBatches >= 2) await this.processing;
          // Asked again after each wake: the wake knows the fan-in, not what we hold in hand meanwhile.
          for (let wait = this.o.capacity(this.inHand); wait !== undefined; wait = this.o.capacity(this.inHand)) await wait;
        }
      } catch (err) {
        if (this.stopping) break;
        this.o.log.warn({ err }, 'signal consumer interrupted; resuming in 1 s');
        consumer = undefined;
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    this.queuedBatches += 1;
    this.processing = this.processing
      .then(() => this.o.handle(batch))
      .catch((err: unknown) => {
        // The handler never throws by design; if it does, the messages are redelivered.
        this.o.log.error({ err, size: batch.length }, 'batch handler failed; messages will be redelivered');
        for (const m of batch) m.nak(1_000);
      })
      .finally(() => {
        this.queuedBatches -= 1;
        this.inHand -= batch.length;
      });
  }
}
