import { ClosedConnectionError, NoRespondersError, TimeoutError, createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/nats-core';

export interface ReplyInboxOptions {
  /** How long a reply is awaited, the same for every request of this inbox (ms, above 0). */
  timeoutMs: number;
  /** The message of a request's TimeoutError (default: "timeout: no reply to '<subject>' in <ms> ms"). */
  timeoutMessage?: (subject: string, timeoutMs: number) => string;
  /** The error pending and later requests reject with after close() (default: "reply inbox closed"). */
  closedError?: () => Error;
  /**
   * What a request rejects with when nats-server answers "no responders" (an empty reply with status
   * 503: nobody listens on the subject), as nc.request does; default NoRespondersError(subject).
   */
  noResponders?: (subject: string) => Error;
}

interface Pending {
  subject: string;
  interpret: (reply: Msg, subject: string) => unknown;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  /** performance.now() after which the request has timed out. */
  deadline: number;
}

/**
 * Request/reply without nats.js's per-request machinery: every reply comes back on one subscription
 * (`<inbox>.*`, made once) and is matched to its request by the token that ends its subject.
 *
 * `nc.request()` builds a Deferred and a timer per request, and on success its `cancel()` builds a
 * `RequestError("cancelled")` — an Error with a stack trace — to reject the promise it has just
 * resolved (nats-core 3.4.0, request.js). That was 3.5 % of a worker's CPU in its decision publishes
 * at 500 decisions/s and about 4 % in forwards between two workers (docs/high-frequency-history.md).
 * Here a request costs its promise and one map entry, and one timer serves every pending request.
 *
 * The reply subject of each request is `<inbox>.<token>`: unique per request, so a reply sealed for
 * one request (docs/security.md) does not verify for another. A reply that comes after its request
 * timed out is dropped. Connection loss: the subscription ends with the connection and everything
 * pending is rejected with a ClosedConnectionError.
 */
export class ReplyInbox {
  private readonly nc: NatsConnection;
  private readonly timeoutMs: number;
  private readonly timeoutMessage: (subject: string, timeoutMs: number) => string;
  private readonly closedError: () => Error;
  private readonly noResponders: (subject: string) => Error;
  private readonly inbox: string;
  private readonly sub: Subscription;
  /**
   * In request order. Every entry has the same timeout, so this is also deadline order: the sweep
   * stops at the first entry that has not expired.
   */
  private readonly pending = new Map<string, Pending>();
  private nextToken = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Why requesting is over (close(), the connection closed, the subscription refused). */
  private failure: Error | undefined;

  constructor(nc: NatsConnection, options: ReplyInboxOptions) {
    if (!(options.timeoutMs > 0)) throw new RangeError(`timeoutMs must be above 0, got ${options.timeoutMs}`);
    this.nc = nc;
    this.timeoutMs = options.timeoutMs;
    this.timeoutMessage = options.timeoutMessage ?? ((subject, ms) => `timeout: no reply to '${subject}' in ${ms} ms`);
    this.closedError = options.closedError ?? (() => new Error('reply inbox closed'));
    this.noResponders = options.noResponders ?? ((subject) => new NoRespondersError(subject));
    // NatsConnection does not declare `options`; the implementation has them, and the JetStream
    // client reads its inbox prefix the same way. Bus permissions allow replies only under it.
    const prefix = (nc as NatsConnection & { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
    this.inbox = `${createInbox(prefix)}.`;
    this.sub = nc.subscribe(`${this.inbox}*`, { callback: (err, msg) => this.onReply(err, msg) });
    // The subscription ends with the connection without a word to its callback: what is pending
    // would otherwise wait for its timeout.
    void nc.closed().then(() => this.fail(new ClosedConnectionError()));
  }

  /** Requests awaiting their reply. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Publishes `data` to `subject` with a reply subject of this inbox and resolves to what `interpret`
   * makes of the first reply (given with the request's subject); an Error it returns or throws
   * rejects. Rejects at once when nobody listens on the subject (`noResponders`), with a TimeoutError
   * when no reply came in time, and with what the connection refused at once (a closed connection, a
   * payload above max_payload, a bad subject).
   */
  request<T>(subject: string, data: Uint8Array, headers: MsgHdrs | undefined, interpret: (reply: Msg, subject: string) => T | Error): Promise<T> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const token = (this.nextToken++).toString(36);
    return new Promise<T>((resolve, reject) => {
      try {
        this.nc.publish(subject, data, headers === undefined ? { reply: this.inbox + token } : { reply: this.inbox + token, headers });
      } catch (err) {
        reject(err as Error);
        return;
      }
      this.pending.set(token, { subject, interpret, resolve: resolve as (value: unknown) => void, reject, deadline: performance.now() + this.timeoutMs });
      if (this.timer === undefined) this.armTimer(this.timeoutMs);
    });
  }

  /** Unsubscribes and rejects what is pending; later requests reject. Idempotent. */
  close(): void {
    if (this.failure !== undefined) return;
    this.fail(this.closedError());
    this.sub.unsubscribe();
  }

  private onReply(err: Error | null, msg: Msg): void {
    if (err !== null) {
      // The server refused the subscription (permissions): no reply can ever arrive.
      this.fail(err);
      return;
    }
    const token = msg.subject.slice(this.inbox.length);
    const entry = this.pending.get(token);
    if (entry === undefined) return; // a reply after its timeout (or after close)
    this.pending.delete(token);
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      entry.reject(this.noResponders(entry.subject));
      return;
    }
    let outcome: unknown;
    try {
      outcome = entry.interpret(msg, entry.subject);
    } catch (err) {
      outcome = err instanceof Error ? err : new Error(String(err));
    }
    if (outcome instanceof Error) entry.reject(outcome);
    else entry.resolve(outcome);
  }

  /**
   * One timer for every pending request. It is not cleared when the map empties (at one request at a
   * time that would be a timer per request again): when it fires with nothing expired it is armed for
   * the oldest entry's deadline, and not at all when nothing is pending. Unref'd: the connection keeps
   * the process alive while anything is pending, and its close rejects everything.
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
      err.message = this.timeoutMessage(entry.subject, this.timeoutMs);
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
