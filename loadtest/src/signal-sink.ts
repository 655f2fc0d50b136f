import { jetstream, jetstreamManager, DeliverPolicy, type ConsumerMessages } from '@nats-io/jetstream';
import { createInbox, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { DECISION_SUBJECT, SIGNAL_SUBJECT_PREFIX, STORED_DECISION_SUBJECT } from '../shared/synthetic.js';

/** Where the driver publishes signals: JetStream with PubAcks (bounded in flight) or core NATS. */
export interface SignalSink {
  readonly inflight: number;
  /** True when no more publishes may start until one finishes. */
  readonly full: boolean;
  /** Resolves when a publish finishes (immediately when not full). */
  slotFreed(): Promise<void>;
  send(subject: string, data: Uint8Array, msgId: string | undefined, done: (error?: string) => void): void;
  /** Resolves when nothing is in flight, or after timeoutMs. */
  drain(timeoutMs: number): Promise<void>;
}

class Slots {
  inflight = 0;
  private waiters: Array<() => void> = [];
  constructor(readonly max: number) {}
  get full(): boolean {
    return this.inflight >= this.max;
  }
  release(): void {
    this.inflight -= 1;
    const w = this.waiters;
    if (w.length > 0) {
      this.waiters = [];
      for (const f of w) f();
    }
  }
  wait(): Promise<void> {
    if (!this.full && this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/**
 * JetStream publish as `js.publish` does it on the wire (publish to the stream's subject with a
 * reply subject, the stream answers with a PubAck), with one wildcard subscription for every PubAck
 * and one sweep for timeouts instead of a request object and a timer per message: the driver
 * shares the machine with what it measures, so its cost per message matters.
 */
export function jetStreamSink(nc: NatsConnection, maxInflight: number, timeoutMs = 10_000): SignalSink {
  const prefix = createInbox();
  const pending = new Map<number, { readonly done: (error?: string) => void; readonly atMs: number }>();
  const slots = new Slots(maxInflight);
  const decoder = new TextDecoder();
  let seq = 0;
  const settle = (id: number, error?: string): void => {
    const p = pending.get(id);
    if (p === undefined) return;
    pending.delete(id);
    slots.release();
    p.done(error);
  };
  nc.subscribe(`${prefix}.*`, {
    callback: (_err, msg) => {
      const id = Number(msg.subject.slice(prefix.length + 1));
      if (msg.headers?.hasError === true) {
        settle(id, msg.headers.code === 503 ? 'no responders: no stream captures this subject' : `status ${msg.headers.code} ${msg.headers.description}`);
        return;
      }
      let ack: { error?: { code?: number; description?: string }; stream?: string };
      try {
        ack = JSON.parse(decoder.decode(msg.data)) as typeof ack;
      } catch {
        settle(id, 'PubAck is not JSON');
        return;
      }
      settle(id, ack.error === undefined ? undefined : `jetstream ${ack.error.code}: ${ack.error.description}`);
    },
  });
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [id, p] of pending) if (now - p.atMs >= timeoutMs) settle(id, `no PubAck within ${timeoutMs} ms`);
  }, 500);
  sweep.unref();
  void nc.closed().then(() => {
    clearInterval(sweep);
    for (const id of [...pending.keys()]) settle(id, 'connection closed');
  });
  return {
    get inflight() {
      return slots.inflight;
    },
    get full() {
      return slots.full;
    },
    slotFreed: () => (slots.full ? slots.wait() : Promise.resolve()),
    send(subject, data, msgId, done) {
      slots.inflight += 1;
      const id = ++seq;
      pending.set(id, { done, atMs: Date.now() });
      if (msgId === undefined) {
        nc.publish(subject, data, { reply: `${prefix}.${id}` });
      } else {
        const h = natsHeaders();
        h.set('Nats-Msg-Id', msgId);
        nc.publish(subject, data, { reply: `${prefix}.${id}`, headers: h });
      }
    },
    async drain(waitMs) {
      const deadline = Date.now() + waitMs;
      while (slots.inflight > 0 && Date.now() < deadline) {
        await Promise.race([slots.wait(), new Promise((r) => setTimeout(r, 100))]);
      }
    },
  };
}

/** Core NATS publish: no PubAck, the stream still captures the subject. Accepted = handed to the client. */
export function coreSink(nc: NatsConnection): SignalSink {
  return {
    inflight: 0,
    full: false,
    slotFreed: () => Promise.resolve(),
    send(subject, data, msgId, done) {
      if (msgId === undefined) {
        nc.publish(subject, data);
      } else {
        const h = natsHeaders();
        h.set('Nats-Msg-Id', msgId);
        nc.publish(subject, data, { headers: h });
      }
      done();
    },
    async drain() {
      await nc.flush();
    },
  };
}

/** Creates the signal stream when it does not exist (file storage, as a deployment would have it). */
export async function ensureSignalStream(nc: NatsConnection, stream: string): Promise<'created' | 'exists'> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(stream);
    return 'exists';
  } catch {
    await jsm.streams.add({ name: stream, subjects: [`${SIGNAL_SUBJECT_PREFIX}.>`] });
    return 'created';
  }
}

export interface DecisionSource {
  close(): Promise<void>;
}

/**
 * Decisions as downstream would read them. core: every message on orchestrated.decision (from the
 * worker's decisions stream, which republishes what it stored; the seed and echo baselines publish
 * there themselves); stream: what the worker's decisions stream stored on orchestrator.decided.decision
 * (an ordered consumer from now on).
 */
export async function subscribeDecisions(
  nc: NatsConnection,
  mode: 'core' | 'stream',
  decisionStream: string,
  onDecision: (data: Uint8Array) => void,
): Promise<DecisionSource> {
  if (mode === 'core') {
    const sub = nc.subscribe(DECISION_SUBJECT, { callback: (_err, msg) => onDecision(msg.data) });
    await nc.flush();
    return {
      close: async () => {
        sub.unsubscribe();
      },
    };
  }
  const js = jetstream(nc);
  const consumer = await js.consumers.get(decisionStream, { filter_subjects: STORED_DECISION_SUBJECT, deliver_policy: DeliverPolicy.New });
  const messages: ConsumerMessages = await consumer.consume({ callback: (m) => onDecision(m.data) });
  return {
    close: async () => {
      await messages.close();
    },
  };
}
