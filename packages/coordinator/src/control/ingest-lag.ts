import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import type { StatusData } from './control-data.js';

/** Reads the shared ingest consumer's backlog for `status`. */
export class IngestLag {
  private jsm: Promise<JetStreamManager> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly stream: string,
    private readonly durable: string,
  ) {}

  /** Pending and unacknowledged messages of the consumer, or null when JetStream did not answer. */
  async read(): Promise<StatusData['lag']> {
    const { stream, durable } = this;
    try {
      this.jsm ??= jetstreamManager(this.nc, { checkAPI: false, timeout: 1_000 });
      const info = await (await this.jsm).consumers.info(stream, durable);
      return { stream, durable, pending: info.num_pending, ack_pending: info.num_ack_pending };
    } catch {
      // A rejected manager promise kept here would fail every later call.
      this.jsm = undefined;
      return null;
    }
  }
}
