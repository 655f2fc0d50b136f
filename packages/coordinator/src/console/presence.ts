import { CoordinatorPresence, ORCHESTRATOR_VERSION } from '@at-orchestrator/contracts';
import type { RedisClient } from '@at-orchestrator/runtime';
import type { CoordinatorKeys } from '../coordinator-keys.js';
import type { ConsoleCoordinator } from './console-data.js';

/**
 * Every coordinator says it is there (its id, console address, version) under a key with a lease,
 * renewed with each election round, so that the console shows the standbys beside the leader.
 */
export class CoordinatorPresenceBoard {
  private readonly startedAt = new Date().toISOString();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: CoordinatorKeys,
    private readonly id: string,
    private readonly leaseMs: number,
  ) {}

  async announce(consoleUrl: string): Promise<void> {
    const presence: CoordinatorPresence = { id: this.id, console_url: consoleUrl, version: ORCHESTRATOR_VERSION, started_at: this.startedAt };
    await this.redis.multi().set(this.keys.presence(this.id), JSON.stringify(presence), 'PX', this.leaseMs).sadd(this.keys.presenceIndex(), this.id).exec();
  }

  async withdraw(): Promise<void> {
    await this.redis.multi().del(this.keys.presence(this.id)).srem(this.keys.presenceIndex(), this.id).exec();
  }

  /** The coordinators whose presence has not expired, by id (`leading` is false: the caller knows who leads). */
  async list(): Promise<ConsoleCoordinator[]> {
    const ids = (await this.redis.smembers(this.keys.presenceIndex())).sort();
    if (ids.length === 0) return [];
    const values = await this.redis.mget(ids.map((id) => this.keys.presence(id)));
    const gone = ids.filter((_, i) => values[i] === null);
    if (gone.length > 0) await this.redis.srem(this.keys.presenceIndex(), ...gone);
    const list: ConsoleCoordinator[] = [];
    for (const value of values) {
      if (value === null) continue;
      let parsed;
      try {
        parsed = CoordinatorPresence.safeParse(JSON.parse(value));
      } catch {
        continue;
      }
      if (parsed.success) list.push({ ...parsed.data, leading: false });
    }
    return list;
  }
}
