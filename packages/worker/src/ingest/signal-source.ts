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

/**
 * Acks of pulled signals, written together with the next decision publish of the same event-loop
 * turn, or at the end of the turn when none comes. An ack costs a socket write (and a wake-up of
 * nats-server) of its own when it is not in the same write as the publish: a store's answer acks its
 * signals and, a few microtasks later, publishes the decision it completed, and nats.js sends what
 * was queued by the end of the microtask in which the first of them was queued. Holding the acks
 * until the publish (DecisionEmitter's afterPublish) puts both in one write. An ack only ever waits
 * for the end of the turn (setImmediate), and a later ack is always safe.
 */
export class AckBatch {
  private msgs: JsMsg[] = [];
  private scheduled = false;
  private readonly flushAtTurnEnd = (): void => {
    this.scheduled = false;
    this.flush();
  };

  add(msg: JsMsg): void {
    this.msgs.push(msg);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushAtTurnEnd);
    }
  }

  /** Acks everything waiting now. */
  flush(): void {
    if (this.msgs.length === 0) return;
    const msgs = this.msgs;
    this.msgs = [];
    for (const msg of msgs) msg.ack();
  }
}

class JetStreamSource implements SignalSource {
  readonly holdable = true;

  constructor(
    private readonly msg: JsMsg,
    private readonly acks: AckBatch | undefined,
  ) {}

  ack(): void {
    if (this.acks === undefined) this.msg.ack();
    else this.acks.add(this.msg);
  }

  nak(delayMs?: number): void {
    this.msg.nak(delayMs);
  }

  hold(): void {
    this.msg.nak(HELD_REDELIVERY_MS);
  }
}

/** A pulled message as a source; with `acks`, its ack joins the batch (AckBatch). */
export function jetStreamSource(msg: JsMsg, acks?: AckBatch): SignalSource {
  return new JetStreamSource(msg, acks);
}
