import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { DeadLetter, SIGNAL_SUBJECT_PREFIX } from '@at-orchestrator/contracts';

/** One dead letter as an operator sees it (its payload left out). */
export interface ListedDeadLetter {
  seq: number;
  reason: string;
  subject: string;
  corr_id: string | undefined;
  received_at: string;
  worker_id: string;
  detail: string;
  truncated: boolean;
  payload_bytes: number;
}

export type RedriveResult =
  | { seq: number; ok: true; reason: string; subject: string; stream: string; streamSeq: number }
  | { seq: number; ok: false; message: string };

/**
 * The newest `limit` dead letters of `stream` (of `reason`, when given), oldest first. Read with an
 * ordered consumer: reading consumes nothing, the letters stay until the stream's max_age.
 */
export async function listDeadLetters(nc: NatsConnection, stream: string, reason: string | undefined, limit: number): Promise<ListedDeadLetter[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  if (info.state.messages === 0) return [];
  const last = info.state.last_seq;
  const consumer = await jetstream(nc).consumers.get(stream);
  const out: ListedDeadLetter[] = [];
  const messages = await consumer.consume();
  try {
    for await (const m of messages) {
      let raw: unknown;
      try {
        raw = m.json();
      } catch {
        raw = undefined;
      }
      const letter = DeadLetter.safeParse(raw);
      if (letter.success && (reason === undefined || letter.data.reason === reason)) {
        const l = letter.data;
        out.push({
          seq: m.seq,
          reason: l.reason,
          subject: l.subject,
          corr_id: l.corr_id,
          received_at: l.received_at,
          worker_id: l.worker_id,
          detail: l.detail,
          truncated: l.truncated === true,
          payload_bytes: l.payload_bytes ?? Buffer.from(l.payload_b64, 'base64').byteLength,
        });
        if (out.length > limit) out.shift();
      }
      if (m.seq >= last) break;
    }
  } finally {
    await messages.close();
  }
  return out;
}

/**
 * Publishes the original payload of each named letter again on its original subject. Refused: a
 * letter that is missing, truncated (only the start of its payload is known) or not a signal (an
 * engine failure of a whole correlation, subject `correlation:<id>`).
 */
export async function redriveDeadLetters(nc: NatsConnection, stream: string, seqs: readonly number[]): Promise<RedriveResult[]> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const out: RedriveResult[] = [];
  for (const seq of seqs) {
    const stored = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (stored === null) {
      out.push({ seq, ok: false, message: `no dead letter at sequence ${seq} in ${stream}` });
      continue;
    }
    let raw: unknown;
    try {
      raw = stored.json();
    } catch {
      raw = undefined;
    }
    const letter = DeadLetter.safeParse(raw);
    if (!letter.success) {
      out.push({ seq, ok: false, message: `sequence ${seq} is not a dead letter` });
      continue;
    }
    const l = letter.data;
    if (l.truncated === true) {
      out.push({ seq, ok: false, message: `dead letter ${seq} holds only the start of its payload (truncated, ${l.payload_bytes ?? '?'} bytes); it cannot be re-driven` });
      continue;
    }
    if (!l.subject.startsWith(`${SIGNAL_SUBJECT_PREFIX}.`)) {
      out.push({ seq, ok: false, message: `dead letter ${seq} is not a signal (subject ${l.subject}); it cannot be re-driven` });
      continue;
    }
    const ack = await js.publish(l.subject, Buffer.from(l.payload_b64, 'base64'));
    out.push({ seq, ok: true, reason: l.reason, subject: l.subject, stream: ack.stream, streamSeq: ack.seq });
  }
  return out;
}
