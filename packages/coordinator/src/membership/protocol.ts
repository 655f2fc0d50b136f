import { CLUSTER_PROTOCOL, UNSTATED_CLUSTER_PROTOCOL, type WorkerHeartbeat } from '@at-orchestrator/contracts';

/** Why the leader refuses a live worker: it speaks another cluster protocol. */
export interface ProtocolRefusal {
  /** The worker's CLUSTER_PROTOCOL as its heartbeat states it; null for a worker older than the check (it states none). */
  readonly protocol: number | null;
  /** The leader's. */
  readonly expected: number;
  /** For status, workers and the log: names the worker, both protocols and what it means. */
  readonly message: string;
}

/** How a stated protocol reads in messages: the number, or what stating none means. */
export function describeProtocol(protocol: number | null | undefined): string {
  return protocol === null || protocol === undefined ? `none (a build older than the protocol check: ${UNSTATED_CLUSTER_PROTOCOL})` : String(protocol);
}

/**
 * Whether a leader speaking `expected` may assign partitions to the worker of `heartbeat`: null when
 * it may (the same protocol), else the refusal. A worker that states no protocol is older than the
 * check and speaks UNSTATED_CLUSTER_PROTOCOL.
 */
export function protocolRefusal(heartbeat: WorkerHeartbeat, expected: number = CLUSTER_PROTOCOL): ProtocolRefusal | null {
  if ((heartbeat.protocol ?? UNSTATED_CLUSTER_PROTOCOL) === expected) return null;
  const protocol = heartbeat.protocol ?? null;
  return {
    protocol,
    expected,
    message:
      `worker ${heartbeat.id} speaks cluster protocol ${describeProtocol(protocol)}, the leader ${expected}: refused, it is assigned no partition ` +
      '(it keeps those it owns until a worker of the same protocol can take them; docs/cluster.md, "Rolling upgrades")',
  };
}
