import { JetStreamApiError, JetStreamError, PubHeaders, type ApiError, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import { NoRespondersError, headers, type Msg, type NatsConnection } from '@nats-io/nats-core';
import { ReplyInbox } from '@at-orchestrator/runtime';

/** What the emitter needs from JetStream: store `data` on `subject` once per `msgId` (Nats-Msg-Id). */
export interface StreamPublisher {
  publish(subject: string, data: Uint8Array, msgId: string): Promise<PubAck>;
  /** Stops publishing (what is pending is rejected); the emitter calls it when it closes. */
  close?(): void;
}

/** The JetStream client's own publish behind the same face (one request per message). */
export function jetStreamClientPublisher(js: JetStreamClient): StreamPublisher {
  return { publish: (subject, data, msgId) => js.publish(subject, data, { msgID: msgId }) };
}

export interface JetStreamPublisherOptions {
  /** How long a PubAck is awaited (default 5000 ms, the JetStream client's default). */
  timeoutMs?: number;
}

/** The JetStream client's default timeout (jsbaseclient_api.js, defaultTimeout). */
const DEFAULT_TIMEOUT_MS = 5_000;

const decoder = new TextDecoder();

/**
 * `js.publish(subject, data, { msgID })` without a request per message: every PubAck comes back on
 * one subscription and is matched to its publish by the reply token (ReplyInbox, which says what
 * `nc.request()` costs that this does not). A publish costs its headers, its promise and one map
 * entry, and one timer serves every pending publish.
 *
 * The outcome is the JetStream client's: the same PubAck (duplicate false when the server leaves it
 * out), a JetStreamApiError for an error reply, a TimeoutError when no ack came in time. A reconnect
 * loses the acks in flight; they time out, and the caller's retry with the same Nats-Msg-Id is
 * dropped by the stream as a duplicate. The inbox holds only what the caller has in flight.
 */
export class JetStreamPublisher implements StreamPublisher {
  private readonly inbox: ReplyInbox;

  constructor(nc: NatsConnection, options: JetStreamPublisherOptions = {}) {
    this.inbox = new ReplyInbox(nc, {
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      timeoutMessage: (subject, ms) => `timeout: no PubAck for '${subject}' in ${ms} ms`,
      closedError: () => new JetStreamError('JetStreamPublisher closed'),
      // nats-core turns the 503 into NoRespondersError and the JetStream client into "jetstream is not
      // enabled" (jsclient.js `_publish`); on a server that is up it means no stream takes the subject.
      noResponders: (subject) => new JetStreamError(`no responders on '${subject}': no stream takes the subject, or JetStream is not available`, { cause: new NoRespondersError(subject) }),
    });
  }

  /** Publishes awaiting their PubAck. */
  get pendingCount(): number {
    return this.inbox.pendingCount;
  }

  publish(subject: string, data: Uint8Array, msgId: string): Promise<PubAck> {
    const h = headers();
    h.set(PubHeaders.MsgIdHdr, msgId);
    return this.inbox.request(subject, data, h, parsePubAck);
  }

  /** Unsubscribes and rejects what is pending; later publishes reject. Idempotent. */
  close(): void {
    this.inbox.close();
  }
}

/**
 * What `js.publish` makes of a reply, from @nats-io/jetstream 3.4.0 (a 503 "no responders" never
 * reaches here: ReplyInbox rejects it with `noResponders`): `{"error": …}` is a JetStreamApiError
 * (jsbaseclient_api.js, parseJsResponse; its message is the description, here with the codes after
 * it); a PubAck without a stream is "invalid ack response" and `duplicate` defaults to false
 * (jsclient.js, publish). A reply that is not JSON rejects too (there JSON.parse throws).
 */
function parsePubAck(msg: Msg, subject: string): PubAck | Error {
  if (msg.data.length === 0) {
    const status = msg.headers === undefined ? '' : ` (status ${msg.headers.code} ${msg.headers.description})`;
    return new JetStreamError(`empty PubAck reply for '${subject}'${status}`);
  }
  let reply: unknown;
  try {
    reply = JSON.parse(decoder.decode(msg.data));
  } catch (err) {
    return new JetStreamError(`malformed PubAck reply for '${subject}'`, { cause: err });
  }
  if (typeof reply !== 'object' || reply === null) return new JetStreamError(`malformed PubAck reply for '${subject}'`);
  const { error } = reply as { error?: ApiError };
  if (error !== undefined) {
    const apiError = new JetStreamApiError(error);
    apiError.message = `${error.description} (status ${error.code}, err_code ${error.err_code})`;
    return apiError;
  }
  const ack = reply as PubAck;
  if (typeof ack.stream !== 'string' || ack.stream === '' || typeof ack.seq !== 'number') return new JetStreamError('invalid ack response');
  ack.duplicate = ack.duplicate ? ack.duplicate : false;
  return ack;
}
