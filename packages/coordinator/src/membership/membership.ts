import type { Redis } from 'ioredis';
import { WorkerHeartbeat } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
import type { CoordinatorKeys } from '../coordinator-keys.js';
import { defineScripts, type CoordinatorScripts } from '../scripts.js';

/** A worker whose heartbeat key has not expired. */
export interface LiveWorker {
  readonly heartbeat: WorkerHeartbeat;
  /** Remaining lease (ms) at the time of reading; -1 when the key has no TTL. */
  readonly leaseLeftMs: number;
}

/**
 * Membership: the live workers are the ids in the worker index whose heartbeat key exists (each
 * written with a PX lease, so a dead worker's key expires and the id leaves the index). Unreadable
 * heartbeats are skipped with a warning, once per key and reason, since a stranger's bad key must
 * not stop the cluster.
 */
export class Membership {
  private readonly warned = new Set<string>();
  private readonly scripts: CoordinatorScripts;

  constructor(
    private readonly client: Redis,
    private readonly keys: CoordinatorKeys,
    private readonly log: Logger,
  ) {
    this.scripts = defineScripts(client);
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
      workers.set(id, { heartbeat, leaseLeftMs: Number(ttl) });
    });
    return workers;
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
