import type { NatsConnection } from '@nats-io/nats-core';
import { ClusterSubjects, LeaderReply, type LeaderRequest } from '@at-orchestrator/contracts';
import { classifyRequestError } from '../handoff/worker-commands.js';

export type LeaderAnswer =
  | { readonly kind: 'reply'; readonly reply: LeaderReply }
  /** Nobody answered: no coordinator leads (or none is reachable) right now. */
  | { readonly kind: 'no-leader'; readonly message: string }
  | { readonly kind: 'failed'; readonly message: string };

/**
 * One operator request to the coordinator leader over `orchestrator.ctl.leader` (only the leader
 * listens). Never rejects.
 */
export async function requestLeader(nc: NatsConnection, request: LeaderRequest, timeoutMs: number): Promise<LeaderAnswer> {
  try {
    const msg = await nc.request(ClusterSubjects.leader, JSON.stringify(request), { timeout: timeoutMs });
    let json: unknown;
    try {
      json = JSON.parse(msg.string());
    } catch {
      return { kind: 'failed', message: 'the leader answered with something that is not JSON' };
    }
    const parsed = LeaderReply.safeParse(json);
    if (!parsed.success) return { kind: 'failed', message: 'the leader answered with something that is not a LeaderReply' };
    return { kind: 'reply', reply: parsed.data };
  } catch (err) {
    const outcome = classifyRequestError(err);
    if (outcome.kind === 'timeout' || outcome.kind === 'no-responders') {
      return { kind: 'no-leader', message: `no coordinator leader answered on ${ClusterSubjects.leader} within ${timeoutMs} ms` };
    }
    return { kind: 'failed', message: outcome.kind === 'failed' ? outcome.reason : outcome.kind };
  }
}
