import type { JsMsg } from '@nats-io/jetstream';

/**
 * Where a signal came from, and how to settle it: a JetStream message pulled by this worker, or a
 * signal another worker forwarded to us as the partition's owner.
 */
export interface SignalSource {
  /** The signal is safe (in Redis, or decided): settle it. */
  ack(): void;
  /** Not ours to take now (or failed): give it back for redelivery, after a delay. */
  nak(delayMs?: number): void;
  /**
   * Whether the source can stay unsettled until the decision is published (a JetStream message
   * can; a forwarded signal's sender is waiting for an answer and cannot).
   */
  readonly holdable: boolean;
}

export function jetStreamSource(msg: JsMsg): SignalSource {
  return {
    holdable: true,
    ack: () => msg.ack(),
    nak: (delayMs?: number) => msg.nak(delayMs),
  };
}
