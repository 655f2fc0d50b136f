import { CLUSTER_PROTOCOL, WorkerHeartbeat } from '@at-orchestrator/contracts';
import type { Logger, RedisClient } from '@at-orchestrator/runtime';
import type { CoordinatorKeys } from '../coordinator-keys.js';
import { defineScripts, type CoordinatorScripts } from '../scripts.js';
import { protocolRefusal, type ProtocolRefusal } from './protocol.js';

/** A worker whose heartbeat key has not expired. */
export interface LiveWorker {
  readonly heartbeat: WorkerHeartbeat;
  /** Remaining lease (ms) at the time of reading; -1 when the key has no TTL. */
  readonly leaseLeftMs: number;
  /** Set when the worker speaks another cluster protocol than the leader: it is assigned nothing. */
  readonly refusal?: ProtocolRefusal;
}

export interface MembershipOptions {
  /** The cluster protocol live workers must speak (CLUSTER_PROTOCOL; tests may say otherwise). */
  readonly protocol?: number;
  /** A worker found speaking another protocol: called once per worker (again if it leaves and returns refused). */
  readonly onRefused?: (refusal: ProtocolRefusal) => void;
}

/**
 * Membership: the live workers are the ids in the worker index whose heartbeat key exists (each
 * written with a PX lease, so a dead worker's key expires and the id leaves the index). Unreadable
 * heartbeats are skipped with a warning, once per key and reason, since a stranger's bad key must
 * not stop the cluster. A worker speaking another cluster protocol is live but carries its refusal,
 * logged (warn) once per worker and protocol.
 */
export class Membership {
  private readonly warned = new Set<string>();
  private readonly scripts: CoordinatorScripts;
  private readonly protocol: number;
  /** Refused workers already reported, with the protocol they were refused for. */
  private readonly reported = new Map<string, number | null>();

  constructor(
    private readonly client: RedisClient,
    private readonly keys: CoordinatorKeys,
    private readonly log: Logger,
    private readonly options: MembershipOptions = {},
  ) {
    this.scripts = defineScripts(client);
    this.protocol = options.protocol ?? CLUSTER_PROTOCOL;
  }

  /** The live workers by id, sorted by id: two round trips, whatever the size of the keyspace. */
  async live(): Promise<Map<string, LiveWorker>> {
    const ids = (await this.client.smembers(this.keys.workers())).sort();
    const workers = new Map<string, LiveWorker>();
    if (ids.length === 0) return workers;
    const keys = ids.map((id) => this.keys.worker(id));
    const results = await this.scripts.readHeartbeats(keys.length + 1, this.keys.workers(), ...keys, ...ids);
    ids.forEach((id, i) => {
      const [raw, ttl] = results[i] ?? [null, -2];
      if (raw === null) return; // expired: dead (and gone from the index)
      const key = keys[i]!;
      const heartbeat = this.parse(key, raw);
      if (heartbeat === undefined) return;
      if (heartbeat.id !== id) {
        this.warnOnce(key, 'id', { key, id: heartbeat.id }, 'worker heartbeat names another worker id than its key; ignored');
        return;
      }
      const refusal = protocolRefusal(heartbeat, this.protocol);
      workers.set(id, refusal === null ? { heartbeat, leaseLeftMs: Number(ttl) } : { heartbeat, leaseLeftMs: Number(ttl), refusal });
    });
    this.report(workers);
    return workers;
  }

  /** Logs and counts each newly refused worker once; forgets those that left or were accepted since. */
  private report(workers: ReadonlyMap<string, LiveWorker>): void {
    for (const id of this.reported.keys()) if (workers.get(id)?.refusal === undefined) this.reported.delete(id);
    for (const [id, { refusal }] of workers) {
      if (refusal === undefined) continue;
      if (this.reported.has(id) && this.reported.get(id) === refusal.protocol) continue;
      this.reported.set(id, refusal.protocol);
      this.log.warn({ worker: id, worker_protocol: refusal.protocol, leader_protocol: refusal.expected }, refusal.message);
      this.options.onRefused?.(refusal);
    }
  }

  private parse(key: string, raw: string): WorkerHeartbeat | undefined {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      this.warnOnce(key, 'json', { key }, 'worker heartbeat is not JSON; ignored');
      return undefined;
    }
    const parsed = WorkerHeartbeat.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      this.warnOnce(key, 'schema', { key, field: issue?.path.join('.'), problem: issue?.message }, 'worker heartbeat does not match the contract; ignored');
      return undefined;
    }
    return parsed.data;
  }

  private warnOnce(key: string, reason: string, fields: Record<string, unknown>, message: string): void {
    const id = `${key}\u0000${reason}`;
    if (this.warned.has(id)) return;
    if (this.warned.size > 10_000) this.warned.clear();
    this.warned.add(id);
    this.log.warn(fields, message);
  }
}
