import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { DLQ_SUBJECT, type DeadLetter } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
import type { WorkerMetrics } from '../metrics.js';

const encoder = new TextEncoder();

/**
 * Bad input goes to orchestrator.dlq with its reason and the original payload, then the source is
 * acked: a bad message never blocks a partition and is never redelivered forever. When the DLQ
 * publish itself fails the source is nak'ed with a delay, so nothing is lost.
 */
export class DeadLetterPublisher {
  constructor(
    private readonly js: JetStreamClient,
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
    private readonly workerId: string,
  ) {}

  async send(msg: JsMsg, reason: string, detail: string, corrId?: string): Promise<void> {
    const letter: DeadLetter = {
      reason,
      detail: detail.slice(0, 1000),
      subject: msg.subject,
      received_at: new Date().toISOString(),
      worker_id: this.workerId,
      payload_b64: Buffer.from(msg.data).toString('base64'),
    };
    if (corrId !== undefined) letter.corr_id = corrId;
    try {
      // One dead letter per source message, even if the source is redelivered.
      await this.js.publish(DLQ_SUBJECT, encoder.encode(JSON.stringify(letter)), { msgID: `dlq:${msg.info.stream}:${msg.seq}` });
      this.metrics.deadLetters.inc({ reason });
      this.log.warn({ reason, detail: letter.detail, subject: msg.subject, corr_id: corrId, seq: msg.seq }, 'signal sent to DLQ');
      msg.ack();
    } catch (err) {
      this.log.error({ err, reason }, 'DLQ publish failed; source message will be redelivered');
      msg.nak(1_000);
    }
  }

  /**
   * A dead letter for a whole correlation whose source messages are long acked (its engine failed
   * twice): the payload is the correlation's signals as JSON. Best effort — the correlation itself is
   * closed with a published timeout outcome either way.
   */
  async sendCorrelation(corrId: string, reason: string, detail: string, payload: string): Promise<void> {
    const letter: DeadLetter = {
      reason,
      detail: detail.slice(0, 1000),
      subject: `correlation:${corrId}`,
      corr_id: corrId,
      received_at: new Date().toISOString(),
      worker_id: this.workerId,
      payload_b64: Buffer.from(payload).toString('base64'),
    };
    try {
      await this.js.publish(DLQ_SUBJECT, encoder.encode(JSON.stringify(letter)), { msgID: `dlq:engine:${corrId}` });
      this.metrics.deadLetters.inc({ reason });
    } catch (err) {
      this.log.error({ err, corr_id: corrId, reason }, 'DLQ publish failed for a correlation');
    }
  }
}
