import { createHash } from 'node:crypto';
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { DLQ_SUBJECT, type DeadLetter } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
import type { WorkerMetrics } from '../metrics.js';

const encoder = new TextEncoder();

/** Room kept below max_payload for the headers (Nats-Msg-Id) and the protocol line. */
const HEADER_ROOM = 1_024;

/** The message a dead letter is about: where it was published and what it held. */
export interface DeadSource {
  subject: string;
  data: Uint8Array;
  /** Nats-Msg-Id of the letter: one letter per source, however often the source is seen. */
  letterId: string;
}

/** The Nats-Msg-Id of a signal forwarded to us: its subject and bytes (no stream sequence travels). */
export function forwardedLetterId(subject: string, payload: string): string {
  return `dlq:fwd:${createHash('sha256').update(subject).update('\n').update(payload).digest('hex').slice(0, 32)}`;
}

/**
 * Bad input goes to orchestrator.dlq with its reason and the original payload, then the source is
 * acked: a bad message never blocks a partition and is never redelivered forever. When the DLQ
 * publish itself fails the source is nak'ed with a delay, so nothing is lost. A letter larger than
 * the server's max_payload carries only the start of the payload and says so (`truncated`), rather
 * than being refused by the server and nak'ed forever.
 */
export class DeadLetterPublisher {
  constructor(
    private readonly js: JetStreamClient,
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
    private readonly workerId: string,
    /** The server's max_payload (read at each send: it is known once connected). */
    private readonly maxPayload: () => number,
  ) {}

  /** Dead-letters a pulled JetStream message and settles it (acked when the letter is stored). */
  async send(msg: JsMsg, reason: string, detail: string, corrId?: string): Promise<void> {
    const stored = await this.publish({ subject: msg.subject, data: msg.data, letterId: `dlq:${msg.info.stream}:${msg.seq}` }, reason, detail, corrId, msg.seq);
    if (stored) msg.ack();
    else msg.nak(1_000);
  }

  /**
   * Dead-letters any source (a forwarded signal, a message fetched after max_deliver); resolves to
   * whether the letter is stored, so the caller settles the source only then.
   */
  async publish(source: DeadSource, reason: string, detail: string, corrId?: string, seq?: number): Promise<boolean> {
    const letter: DeadLetter = {
      reason,
      detail: detail.slice(0, 1000),
      subject: source.subject,
      received_at: new Date().toISOString(),
      worker_id: this.workerId,
      payload_b64: Buffer.from(source.data).toString('base64'),
    };
    if (corrId !== undefined) letter.corr_id = corrId;
    try {
      await this.js.publish(DLQ_SUBJECT, this.encode(letter, source.data), { msgID: source.letterId });
      this.metrics.deadLetters.inc({ reason });
      this.log.warn({ reason, detail: letter.detail, subject: source.subject, corr_id: corrId, seq }, 'signal sent to DLQ');
      return true;
    } catch (err) {
      this.log.error({ err, reason }, 'DLQ publish failed; source message will be redelivered');
      return false;
    }
  }

  /**
   * A dead letter for a whole correlation whose source messages are long acked (its engine failed
   * twice): the payload is the correlation's signals as JSON. Best effort — the correlation itself is
   * closed with a published timeout outcome either way.
   */
  async sendCorrelation(corrId: string, reason: string, detail: string, payload: string): Promise<void> {
    const data = encoder.encode(payload);
    const letter: DeadLetter = {
      reason,
      detail: detail.slice(0, 1000),
      subject: `correlation:${corrId}`,
      corr_id: corrId,
      received_at: new Date().toISOString(),
      worker_id: this.workerId,
      payload_b64: Buffer.from(data).toString('base64'),
    };
    try {
      await this.js.publish(DLQ_SUBJECT, this.encode(letter, data), { msgID: `dlq:engine:${corrId}` });
      this.metrics.deadLetters.inc({ reason });
    } catch (err) {
      this.log.error({ err, corr_id: corrId, reason }, 'DLQ publish failed for a correlation');
    }
  }

  /** The letter as JSON; when it would exceed max_payload, with only as much payload as fits. */
  private encode(letter: DeadLetter, original: Uint8Array): Uint8Array {
    const full = encoder.encode(JSON.stringify(letter));
    const limit = this.maxPayload() - HEADER_ROOM;
    if (full.byteLength <= limit) return full;
    const envelope = encoder.encode(JSON.stringify({ ...letter, payload_b64: '', truncated: true, payload_bytes: original.byteLength })).byteLength;
    // base64 turns 3 bytes into 4 characters.
    const keep = Math.max(0, Math.floor(((limit - envelope) * 3) / 4));
    this.metrics.deadLettersTruncated.inc();
    return encoder.encode(
      JSON.stringify({ ...letter, payload_b64: Buffer.from(original.subarray(0, keep)).toString('base64'), truncated: true, payload_bytes: original.byteLength }),
    );
  }
}
