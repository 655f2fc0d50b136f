import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { ClusterSubjects, ForwardReply, ForwardRequest } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface ForwardItem {
  partition: number;
  subject: string;
  payload: string;
}

/**
 * Hands signals to the worker that owns their partition over core NATS request/reply, one request
 * per owner per batch, and serves the requests other workers send us. The source message is acked by
 * the sender only for signals the owner answered "stored".
 */
export class SignalForwarder {
  private sub: Subscription | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly workerId: string,
    private readonly log: Logger,
    private readonly timeoutMs = 2_000,
  ) {}

  /** Serves forwarded batches with `handle`, which returns one verdict per signal. */
  serve(handle: (req: ForwardRequest) => Promise<ForwardReply>): void {
    this.sub = this.nc.subscribe(ClusterSubjects.forward(this.workerId), {
      callback: (err, msg) => {
        if (err !== null) return;
        let req: ForwardRequest;
        try {
          req = ForwardRequest.parse(JSON.parse(decoder.decode(msg.data)));
        } catch (e) {
          this.log.warn({ err: e }, 'malformed forward request');
          return;
        }
        // A handler that throws (even synchronously) is answered "retry"; the subscription lives on.
        Promise.resolve()
          .then(() => handle(req))
          .catch((e: unknown): ForwardReply => {
            this.log.error({ err: e }, 'forward handler failed');
            return { verdicts: req.signals.map(() => 'retry'), table_version: -1 };
          })
          .then((reply) => msg.respond(encoder.encode(JSON.stringify(reply))))
          .catch((e: unknown) => this.log.warn({ err: e }, 'could not answer a forward request'));
      },
    });
  }

  /** Sends a batch to its owner; resolves to one verdict per item ("retry" for all on any failure). */
  async send(owner: string, items: ForwardItem[]): Promise<ForwardReply['verdicts']> {
    const req: ForwardRequest = { from: this.workerId, signals: items };
    try {
      const reply = await this.nc.request(ClusterSubjects.forward(owner), encoder.encode(JSON.stringify(req)), { timeout: this.timeoutMs });
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
  }
}
