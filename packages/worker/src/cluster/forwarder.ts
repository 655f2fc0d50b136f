import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import { ClusterSubjects, ForwardReply, ForwardRequest } from '@at-orchestrator/contracts';
import { ControlSealer, ControlVerifier, ReplyInbox, type ControlRefusals, type Logger } from '@at-orchestrator/runtime';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface ForwardItem {
  partition: number;
  subject: string;
  payload: string;
}

/** The cluster secrets that seal forwards and their replies, and where refusals are counted. */
export interface ForwardSealing {
  /** CLUSTER_SECRET first (it seals), then CLUSTER_SECRET_PREVIOUS during a rollover. */
  readonly clusterSecrets: readonly string[];
  readonly refusals: ControlRefusals;
}

/**
 * Hands signals to the worker that owns their partition over core NATS request/reply, one request
 * per owner per batch, and serves the requests other workers send us. The source message is acked by
 * the sender only for signals the owner answered "stored".
 *
 * Both directions are sealed with the cluster secret (docs/security.md, "The control plane"): a
 * request is served only when its seal is valid and names the worker in its `from`; a reply counts
 * only when sealed by the owner asked, for this request's inbox — a forged "stored" would make us ack
 * a signal nobody stored.
 */
export class SignalForwarder {
  private sub: Subscription | undefined;
  private readonly sealer: ControlSealer;
  private readonly verifier: ControlVerifier;
  private readonly refusals: ControlRefusals;
  /** Where the owners' answers come back (one subscription for every request). */
  private readonly replies: ReplyInbox;

  constructor(
    private readonly nc: NatsConnection,
    private readonly workerId: string,
    private readonly log: Logger,
    sealing: ForwardSealing,
    timeoutMs = 2_000,
  ) {
    this.replies = new ReplyInbox(nc, { timeoutMs, timeoutMessage: (subject, ms) => `timeout: no answer to a forward on '${subject}' in ${ms} ms` });
    this.sealer = new ControlSealer(sealing.clusterSecrets, workerId);
    this.verifier = new ControlVerifier(sealing.clusterSecrets);
    this.refusals = sealing.refusals;
  }

  /** Serves forwarded batches with `handle`, which returns one verdict per signal. */
  serve(handle: (req: ForwardRequest) => Promise<ForwardReply>): void {
    this.sub = this.nc.subscribe(ClusterSubjects.forward(this.workerId), {
      callback: (err, msg) => {
        if (err !== null) return;
        // Unanswered when refused: the sender, if genuine, retries; a forger learns nothing.
        const check = this.verifier.verify('forward', msg.subject, msg.headers, msg.data);
        if (!check.ok) {
          this.refusals.refuse('forward', check.reason, check.sender ?? msg.subject);
          return;
        }
        let req: ForwardRequest;
        try {
          req = ForwardRequest.parse(JSON.parse(decoder.decode(msg.data)));
        } catch (e) {
          this.log.warn({ err: e }, 'malformed forward request');
          return;
        }
        if (req.from !== check.sender) {
          this.refusals.refuse('forward', 'sender_mismatch', check.sender);
          return;
        }
        const replyTo = msg.reply;
        // A handler that throws (even synchronously) is answered "retry"; the subscription lives on.
        Promise.resolve()
          .then(() => handle(req))
          .catch((e: unknown): ForwardReply => {
            this.log.error({ err: e }, 'forward handler failed');
            return { verdicts: req.signals.map(() => 'retry'), table_version: -1 };
          })
          .then((reply) => {
            if (replyTo === undefined || replyTo === '') return;
            const body = encoder.encode(JSON.stringify(reply));
            msg.respond(body, { headers: this.sealer.seal('forward-reply', replyTo, body) });
          })
          .catch((e: unknown) => this.log.warn({ err: e }, 'could not answer a forward request'));
      },
    });
  }

  /** Sends a batch to its owner; resolves to one verdict per item ("retry" for all on any failure). */
  async send(owner: string, items: ForwardItem[]): Promise<ForwardReply['verdicts']> {
    const req: ForwardRequest = { from: this.workerId, signals: items };
    const subject = ClusterSubjects.forward(owner);
    const body = encoder.encode(JSON.stringify(req));
    try {
      const reply = await this.replies.request(subject, body, this.sealer.seal('forward', subject, body), asIs);
      // reply.subject is this request's own inbox: a reply sealed for another request does not verify.
      const check = this.verifier.verify('forward-reply', reply.subject, reply.headers, reply.data);
      if (!check.ok || check.sender !== owner) {
        this.refusals.refuse('forward-reply', check.ok ? 'sender_mismatch' : check.reason, check.sender ?? subject);
        return items.map(() => 'retry');
      }
      const parsed = ForwardReply.parse(JSON.parse(decoder.decode(reply.data)));
      if (parsed.verdicts.length !== items.length) throw new Error('forward reply has the wrong number of verdicts');
      return parsed.verdicts;
    } catch (err) {
      this.log.debug({ err, owner, count: items.length }, 'forward failed; signals will be redelivered');
      return items.map(() => 'retry');
    }
  }

  close(): void {
    this.sub?.unsubscribe();
    this.replies.close();
  }
}

/**
 * The owner's reply, checked by the caller. ReplyInbox rejects nats-server's unsealed 503 "no
 * responders" (no owner listening) before it gets here: a retry, not a forged reply.
 */
const asIs = (reply: Msg): Msg => reply;
