import type { Redis } from 'ioredis';
import { WorkerHeartbeat } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
import type { CoordinatorKeys } from '../coordinator-keys.js';

/** A worker whose heartbeat key has not expired. */
export interface LiveWorker {
  readonly heartbeat: WorkerHeartbeat;
  /** Remaining lease (ms) at the time of reading; -1 when the key has no TTL. */
  readonly leaseLeftMs: number;
}

/**
 * Membership: the live workers are exactly the heartbeat keys that exist (each written with a PX
 * lease, so a dead worker's key expires). Unreadable heartbeats are skipped with a warning, once per
 * key and reason, since a stranger's bad key must not stop the cluster.
 */
export class Membership {
  private readonly warned = new Set<string>();

  constructor(
    private readonly client: Redis,
    private readonly keys: CoordinatorKeys,
    private readonly log: Logger,
  ) {}

  /** The live workers by id, sorted by id. */
  async live(): Promise<Map<string, LiveWorker>> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.client.scan(cursor, 'MATCH', this.keys.workerPattern(), 'COUNT', 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
    const keys = [...new Set(found)].sort();
    const workers = new Map<string, LiveWorker>();
    if (keys.length === 0) return workers;

    const pipeline = this.client.pipeline();
    for (const key of keys) {
      pipeline.get(key);
      pipeline.pttl(key);
    }
    const results = (await pipeline.exec()) ?? [];
    const prefix = this.keys.worker('');
    keys.forEach((key, i) => {
      const [getErr, raw] = results[2 * i] ?? [null, null];
      const [, ttl] = results[2 * i + 1] ?? [null, -1];
      if (getErr !== null || raw === null) return; // expired between SCAN and GET: dead
      const heartbeat = this.parse(key, raw as string);
      if (heartbeat === undefined) return;
      if (heartbeat.id !== key.slice(prefix.length)) {
        this.warnOnce(key, 'id', { key, id: heartbeat.id }, 'worker heartbeat names another worker id than its key; ignored');
        return;
      }
      workers.set(heartbeat.id, { heartbeat, leaseLeftMs: Number(ttl) });
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
