import type { Consumer, ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@at-orchestrator/runtime';

const PULL_EXPIRES_MS = 5_000;

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
}

/**
 * Pulls from the shared durable consumer and hands messages over in batches: every message already
 * buffered when the event loop comes round goes into one batch, so batches grow with load and a
 * single message waits for nothing. While the handler is busy or the worker is saturated we stop
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
        // Short pull expiry: nats-server 2.9 keeps a pull request of a client that went away until it
        // expires, and a message delivered into it only comes back after ack-wait.
        this.messages = await consumer.consume({ max_messages: this.o.maxInFlight, expires: PULL_EXPIRES_MS });
        for await (const msg of this.messages) {
          this.batch.push(msg);
          this.inHand += 1;
          if (this.batch.length >= this.o.maxBatch) this.flush();
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
