import { RequestError, TimeoutError, type NatsConnection } from '@nats-io/nats-core';
import { CLUSTER_PROTOCOL, ClusterSubjects, WorkerCommandReply, type WorkerCommand } from '@at-orchestrator/contracts';
import type { ControlSealer } from '@at-orchestrator/runtime';

/** How a command to a worker ended. Only `reply` means the worker answered (ok or not). */
export type CommandOutcome =
  | { readonly kind: 'reply'; readonly reply: WorkerCommandReply }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'no-responders' }
  | { readonly kind: 'aborted' }
  | { readonly kind: 'failed'; readonly reason: string };

const encoder = new TextEncoder();

/**
 * Sends one WorkerCommand to `orchestrator.ctl.worker.<id>`, sealed for that subject (a worker
 * refuses anything else) and stamped with this leader's CLUSTER_PROTOCOL, and waits for its reply, at most `timeoutMs`, or until `signal` aborts.
 * Never rejects: every end is an outcome. The reply is not sealed: a forged one can only claim a
 * release, after which the partition moves at a new epoch and fencing keeps the old owner out.
 */
export async function sendWorkerCommand(
  nc: NatsConnection,
  sealer: ControlSealer,
  workerId: string,
  command: WorkerCommand,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<CommandOutcome> {
  if (signal?.aborted === true) return { kind: 'aborted' };
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<CommandOutcome>((resolve) => {
    onAbort = () => resolve({ kind: 'aborted' });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  const request = (async (): Promise<CommandOutcome> => {
    try {
      const subject = ClusterSubjects.worker(workerId);
      const body = encoder.encode(JSON.stringify({ ...command, protocol: command.protocol ?? CLUSTER_PROTOCOL }));
      const msg = await nc.request(subject, body, { timeout: timeoutMs, headers: sealer.seal('worker-command', subject, body) });
      const parsed = WorkerCommandReply.safeParse(safeJson(msg.string()));
      return parsed.success ? { kind: 'reply', reply: parsed.data } : { kind: 'failed', reason: 'reply does not match WorkerCommandReply' };
    } catch (err) {
      return classifyRequestError(err);
    }
  })();
  try {
    return await Promise.race([request, aborted]);
  } finally {
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  }
}

/** A NATS request failure as an outcome: nobody listening, nobody answering in time, or else. */
export function classifyRequestError(err: unknown): CommandOutcome {
  if (err instanceof TimeoutError) return { kind: 'timeout' };
  if (err instanceof RequestError) {
    if (err.isNoResponders()) return { kind: 'no-responders' };
    if (err.cause instanceof TimeoutError) return { kind: 'timeout' };
  }
  return { kind: 'failed', reason: err instanceof Error ? err.message : String(err) };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
