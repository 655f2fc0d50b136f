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
   * Kept in memory only (Redis down) and the source cannot wait: ask for it again later. Sources that
   * can wait (holdable) are never asked this; they are held until the decision is published.
   */
  hold(): void;
  /**
   * Whether the source can stay unsettled until the decision is published (a JetStream message
   * can; a forwarded signal's sender is waiting for an answer and cannot).
   */
  readonly holdable: boolean;
}

/** How long a signal held only in a (remote) owner's memory waits before it is delivered again. */
export const HELD_REDELIVERY_MS = 1_000;

/** Delay before a signal we cannot place now (partition moving, unowned, or fenced) is redelivered. */
export const RETRY_DELAY_MS = 250;

export function jetStreamSource(msg: JsMsg): SignalSource {
  return {
    holdable: true,
    ack: () => msg.ack(),
    nak: (delayMs?: number) => msg.nak(delayMs),
    hold: () => msg.nak(HELD_REDELIVERY_MS),
  };
}
