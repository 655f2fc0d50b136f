import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/nats-core';
import { ClusterSubjects, LeaderReply, type LeaderRequest } from '@at-orchestrator/contracts';
import { ControlSealer } from '@at-orchestrator/runtime';
import { classifyRequestError } from '../handoff/worker-commands.js';

export type LeaderAnswer =
  | { readonly kind: 'reply'; readonly reply: LeaderReply }
  /** Nobody answered: no coordinator leads (or none is reachable) right now. */
  | { readonly kind: 'no-leader'; readonly message: string }
  | { readonly kind: 'failed'; readonly message: string };

const encoder = new TextEncoder();

/**
 * One operator request to the coordinator leader over `orchestrator.ctl.leader` (only the leader
 * listens). Never rejects. With `operatorToken` (OPERATOR_TOKEN) the request is sealed with it, as
 * actions (drain, move, rebalance, pause, resume) require; read-only commands work without.
 */
export async function requestLeader(nc: NatsConnection, request: LeaderRequest, timeoutMs: number, operatorToken?: string): Promise<LeaderAnswer> {
  try {
    const body = encoder.encode(JSON.stringify(request));
    const headers = operatorToken === undefined ? undefined : operatorSealer(operatorToken).seal('operator', ClusterSubjects.leader, body);
    const msg = await nc.request(ClusterSubjects.leader, body, { timeout: timeoutMs, headers });
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

let sealer: { token: string; sealer: ControlSealer } | undefined;

/** One sealer per process and token, under a sender id of its own (the replay window is per sender). */
function operatorSealer(token: string): ControlSealer {
  if (sealer?.token !== token) sealer = { token, sealer: new ControlSealer([token], `operator-${process.pid}-${randomUUID().slice(0, 8)}`) };
  return sealer.sealer;
}
