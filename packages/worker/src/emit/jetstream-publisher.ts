import { JetStreamApiError, JetStreamError, PubHeaders, type ApiError, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import { ClosedConnectionError, NoRespondersError, TimeoutError, createInbox, headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/nats-core';

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

interface Pending {
  subject: string;
  resolve: (ack: PubAck) => void;
  reject: (err: Error) => void;
  /** performance.now() after which the publish has timed out. */
  deadline: number;
}

/**
 * `js.publish(subject, data, { msgID })` without a request per message: every PubAck comes back on
 * one subscription (`<inbox>.*`, made once) and is matched to its publish by the reply token.
 * `nc.request()` builds a Deferred, a timer and an error per message (the error even on success,
 * 3.5 % of the worker's CPU at 500 decisions/s); here a publish costs its headers, its promise and
 * one map entry, and one timer serves every pending publish.
 *
 * The outcome is the JetStream client's: the same PubAck (duplicate false when the server leaves it
 * out), a JetStreamApiError for an error reply, a TimeoutError when no ack came in time. A reconnect
 * loses the acks in flight; they time out, and the caller's retry with the same Nats-Msg-Id is
 * dropped by the stream as a duplicate. The map holds only what the caller has in flight.
 */
export class JetStreamPublisher implements StreamPublisher {
  private readonly nc: NatsConnection;
  private readonly timeoutMs: number;
  private readonly inbox: string;
  private readonly sub: Subscription;
  /**
   * In publish order. Every entry has the same timeout, so this is also deadline order: the sweep
   * stops at the first entry that has not expired.
   */
  private readonly pending = new Map<string, Pending>();
  private nextToken = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Why publishing is over (close(), the connection closed, the subscription refused). */
  private failure: Error | undefined;

  constructor(nc: NatsConnection, options: JetStreamPublisherOptions = {}) {
    this.nc = nc;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) throw new RangeError(`timeoutMs must be above 0, got ${this.timeoutMs}`);
    // NatsConnection does not declare `options`; the implementation has them, and the JetStream
    // client reads its inbox prefix the same way. Bus permissions allow replies only under it.
    const prefix = (nc as NatsConnection & { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
    this.inbox = `${createInbox(prefix)}.`;
    this.sub = nc.subscribe(`${this.inbox}*`, { callback: (err, msg) => this.onReply(err, msg) });
    // The subscription ends with the connection without a word to its callback: what is pending
    // would otherwise wait for its timeout.
    void nc.closed().then(() => this.fail(new ClosedConnectionError()));
  }

  /** Publishes awaiting their PubAck. */
  get pendingCount(): number {
    return this.pending.size;
  }

  publish(subject: string, data: Uint8Array, msgId: string): Promise<PubAck> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const token = (this.nextToken++).toString(36);
    return new Promise<PubAck>((resolve, reject) => {
      try {
        const h = headers();
        h.set(PubHeaders.MsgIdHdr, msgId);
        this.nc.publish(subject, data, { reply: this.inbox + token, headers: h });
      } catch (err) {
        // A closed or draining connection, a bad subject or header, a payload above max_payload:
        // what nc.request() would have rejected with.
        reject(err as Error);
        return;
      }
      this.pending.set(token, { subject, resolve, reject, deadline: performance.now() + this.timeoutMs });
      if (this.timer === undefined) this.armTimer(this.timeoutMs);
    });
  }

  /** Unsubscribes and rejects what is pending; later publishes reject. Idempotent. */
  close(): void {
    if (this.failure !== undefined) return;
    this.fail(new JetStreamError('JetStreamPublisher closed'));
    this.sub.unsubscribe();
  }

  private onReply(err: Error | null, msg: Msg): void {
    if (err !== null) {
      // The server refused the subscription (permissions): no PubAck can ever arrive.
      this.fail(err);
      return;
    }
    const token = msg.subject.slice(this.inbox.length);
    const entry = this.pending.get(token);
    if (entry === undefined) return; // a reply after its timeout (or after close)
    this.pending.delete(token);
    const outcome = parsePubAck(msg, entry.subject);
    if (outcome instanceof Error) entry.reject(outcome);
    else entry.resolve(outcome);
  }

  /**
   * One timer for every pending publish. It is not cleared when the map empties (at one publish at a
   * time that would be a timer per message again): when it fires with nothing expired it is armed
   * for the oldest entry's deadline, and not at all when nothing is pending. Unref'd: the connection
   * keeps the process alive while anything is pending, and its close rejects everything.
   */
  private armTimer(ms: number): void {
    this.timer = setTimeout(() => this.sweep(), ms);
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = undefined;
    const now = performance.now();
    for (const [token, entry] of this.pending) {
      if (entry.deadline > now) {
        this.armTimer(Math.max(1, Math.ceil(entry.deadline - now)));
        return;
      }
      this.pending.delete(token);
      const err = new TimeoutError();
      err.message = `timeout: no PubAck for '${entry.subject}' in ${this.timeoutMs} ms`;
      entry.reject(err);
    }
  }

  private fail(err: Error): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const entry of entries) entry.reject(err);
  }
}

/**
 * What `js.publish` makes of a reply, from @nats-io/jetstream 3.4.0 and @nats-io/nats-core 3.4.0:
 * an empty reply with status 503 is "no responders" (nats-core muxsubscription.js, dispatcher; the
 * JetStream client turns it into "jetstream is not enabled" in jsclient.js `_publish`, but on a
 * server that is up it means no stream takes the subject); `{"error": …}` is a JetStreamApiError
 * (jsbaseclient_api.js, parseJsResponse; its message is the description, here with the codes after
 * it); a PubAck without a stream is "invalid ack response" and `duplicate` defaults to false
 * (jsclient.js, publish). A reply that is not JSON rejects too (there JSON.parse throws).
 */
function parsePubAck(msg: Msg, subject: string): PubAck | Error {
  if (msg.data.length === 0) {
    if (msg.headers?.code === 503) {
      return new JetStreamError(`no responders on '${subject}': no stream takes the subject, or JetStream is not available`, { cause: new NoRespondersError(subject) });
    }
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
