import { readFileSync } from 'node:fs';
import type { RedisClient } from '@at-orchestrator/runtime';

const lua = (path: string): string => readFileSync(new URL(path, import.meta.url), 'utf8');

/**
 * The control plane's atomic Redis operations, each a Lua script beside the code that calls it and
 * named after what it does; `numberOfKeys` undefined means the caller passes the key count first.
 */
const SCRIPTS = {
  acquireLeaderLease: { numberOfKeys: 2, lua: lua('./election/scripts/acquire-leader-lease.lua') },
  renewLeaderLease: { numberOfKeys: 2, lua: lua('./election/scripts/renew-leader-lease.lua') },
  releaseLeaderLease: { numberOfKeys: 2, lua: lua('./election/scripts/release-leader-lease.lua') },
  commitAssignment: { numberOfKeys: undefined, lua: lua('./table/scripts/commit-assignment.lua') },
  raisePartitionLeaderEpoch: { numberOfKeys: 2, lua: lua('./table/scripts/raise-partition-leader-epoch.lua') },
  bumpPartitionEpoch: { numberOfKeys: 2, lua: lua('./table/scripts/bump-partition-epoch.lua') },
  readHeartbeats: { numberOfKeys: undefined, lua: lua('./membership/scripts/read-heartbeats.lua') },
} as const;

export interface CoordinatorScripts {
  acquireLeaderLease(leaderKey: string, epochKey: string, id: string, leaseMs: number): Promise<[number, string | number]>;
  renewLeaderLease(leaderKey: string, epochKey: string, id: string, leaseMs: number, epoch: number): Promise<number>;
  releaseLeaderLease(leaderKey: string, epochKey: string, id: string, epoch: number): Promise<number>;
  commitAssignment(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number[]>;
  raisePartitionLeaderEpoch(leaderEpochKey: string, epochKey: string, leaderEpoch: number): Promise<[number, string]>;
  bumpPartitionEpoch(leaderEpochKey: string, epochKey: string, leaderEpoch: number, tableEpoch: number): Promise<number>;
  readHeartbeats(numberOfKeys: number, ...keysThenArgs: string[]): Promise<Array<[string | null, number]>>;
}

/** Defines the scripts on a client (EVALSHA, falling back to EVAL once per connection). */
export function defineScripts(client: RedisClient): CoordinatorScripts {
  for (const [name, script] of Object.entries(SCRIPTS)) {
    if (name in client) continue;
    client.defineCommand(name, script.numberOfKeys === undefined ? { lua: script.lua } : { numberOfKeys: script.numberOfKeys, lua: script.lua });
  }
  return client as unknown as CoordinatorScripts;
}
