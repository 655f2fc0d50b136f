import type { CoordinatorKeys } from '../coordinator-keys.js';
import type { RedisClient } from '@at-orchestrator/runtime';
import { defineScripts, type CoordinatorScripts } from '../scripts.js';

export type AcquireResult = { acquired: true; epoch: number } | { acquired: false; holder: string };

/**
 * The coordinator leader lease in Redis: `<prefix>:leader` = coordinator id with a PX lease, and
 * `<prefix>:leader:epoch` moved on by every new leader (its fencing token: last + 1, or Redis's clock
 * in ms when that is larger, so that it never goes back even when Redis loses its data). Every operation is one
 * Lua script, so that "is it still mine?" and the change it guards cannot be split by another writer.
 */
export class LeaderLease {
  private readonly scripts: CoordinatorScripts;

  constructor(
    client: RedisClient,
    private readonly keys: CoordinatorKeys,
    private readonly id: string,
    private readonly leaseMs: number,
  ) {
    this.scripts = defineScripts(client);
  }

  /** Takes the lease if it is free (or already names us), at a new leader epoch. */
  async tryAcquire(): Promise<AcquireResult> {
    const [won, value] = await this.scripts.acquireLeaderLease(this.keys.leader(), this.keys.leaderEpoch(), this.id, this.leaseMs);
    return won === 1 ? { acquired: true, epoch: Number(value) } : { acquired: false, holder: String(value) };
  }

  /** Extends the lease; false when it is no longer ours in this term (the caller must step down). */
  async renew(epoch: number): Promise<boolean> {
    return (await this.scripts.renewLeaderLease(this.keys.leader(), this.keys.leaderEpoch(), this.id, this.leaseMs, epoch)) === 1;
  }

  /** Deletes the lease if it is still ours in this term, so a standby takes over without waiting. */
  async release(epoch: number): Promise<boolean> {
    return (await this.scripts.releaseLeaderLease(this.keys.leader(), this.keys.leaderEpoch(), this.id, epoch)) === 1;
  }
}
