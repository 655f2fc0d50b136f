import { CoordinatorKeys } from '@at-orchestrator/coordinator';
import type { Redis } from '@at-orchestrator/runtime';

/**
 * The one-off move of a keyspace of cluster protocol 1 (every key `<prefix>:<kind>:…`, no hash tag)
 * into the layout of protocol 2 (`<prefix>:{p<n>}:…` per partition, `<prefix>:{cluster}:…` for the
 * cluster-wide keys; docs/cluster.md, "Key layout" and "Rolling upgrades"). It runs on the one Redis
 * that protocol 1 could use, with every process of protocol 1 stopped, and RENAMENX's each key, which
 * keeps its value and TTL: open correlations, done-markers, late markers, partition epochs, the
 * table and the operator's settings keep working under the new names. Heartbeats, leases and
 * presence are not moved: they are rewritten within seconds by the processes of protocol 2.
 *
 * It first puts a tombstone, with no expiry, in protocol 1's leader lease: a coordinator of protocol 1
 * started by mistake afterwards can never lead, so nothing of protocol 1 assigns a partition again, and
 * an old owner's epochs are gone from the old keys (its claims are fenced). A key whose new name exists
 * already is left where it is and reported (never overwritten).
 */

export const MIGRATED_TOMBSTONE = 'migrated-to-cluster-protocol-2';

export type KeyMigrationResult =
  /** Processes live (protocol 1, or protocol 2 already running): nothing written. */
  | { kind: 'busy'; reason: string }
  /** PARTITIONS is not the cluster's (the old table says so): nothing written, whatever `force`. */
  | { kind: 'wrong-partitions'; reason: string }
  /** Moved; `conflicts` are the old keys left in place because their new name exists. */
  | { kind: 'done'; moved: Record<string, number>; conflicts: string[] };

/** Old (protocol 1) names of the fixed keys, beside their new names. */
function fixedKeys(prefix: string, partitions: number): Array<[kind: string, from: string, to: string]> {
  const keys = new CoordinatorKeys(prefix, partitions);
  const out: Array<[string, string, string]> = [
    ['table', `${prefix}:assignment`, keys.assignment()],
    ['table', `${prefix}:assignment:version`, keys.assignmentVersion()],
    ['table', `${prefix}:leader:epoch`, keys.leaderEpoch()],
    ['operator', `${prefix}:paused`, keys.paused()],
    ['operator', `${prefix}:coordinator:draining`, keys.draining()],
    ['operator', `${prefix}:coordinator:pins`, keys.pins()],
  ];
  for (let p = 0; p < partitions; p++) {
    out.push(['epoch', `${prefix}:epoch:${p}`, keys.state.epoch(p)]);
    out.push(['open', `${prefix}:open:${p}`, keys.state.open(p)]);
  }
  return out;
}

const glob = (s: string): string => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

/**
 * Moves the keys. It first checks PARTITIONS against the old table (its hash holds one field per
 * partition): with another number the epochs and open indexes of some partitions would not be moved
 * and every correlation's new name would carry the wrong partition's hash tag, so it refuses. `force`
 * skips the checks for live processes — of protocol 1 (a heartbeat in the old worker index, a lease
 * other than the tombstone) and of protocol 2 (its leader lease, a heartbeat in its worker index),
 * whose keys it would otherwise rename under them — never the PARTITIONS check nor the tombstone.
 */
export async function migrateKeyLayout(
  redis: Redis,
  options: { prefix: string; partitions: number; force?: boolean; say?: (line: string) => void },
): Promise<KeyMigrationResult> {
  const { prefix, partitions } = options;
  const say = options.say ?? (() => undefined);
  const oldLease = `${prefix}:leader`;
  const oldTable = `${prefix}:assignment`;
  const tableSize = await redis.hlen(oldTable);
  if (tableSize > 0 && tableSize !== partitions) {
    return { kind: 'wrong-partitions', reason: `PARTITIONS is ${partitions} but the table ${oldTable} holds ${tableSize} partitions: set PARTITIONS=${tableSize}, the cluster's` };
  }
  if (options.force !== true) {
    const holder = await redis.get(oldLease);
    if (holder !== null && holder !== MIGRATED_TOMBSTONE) return { kind: 'busy', reason: `coordinator ${JSON.stringify(holder)} holds the lease ${oldLease} (cluster protocol 1)` };
    const ids = await redis.smembers(`${prefix}:workers`);
    const alive = ids.length === 0 ? 0 : await redis.exists(...ids.map((id) => `${prefix}:worker:${id}`));
    if (alive > 0) return { kind: 'busy', reason: `${alive} worker heartbeat(s) of cluster protocol 1 live under ${prefix}:worker:*` };
    const current = new CoordinatorKeys(prefix, partitions);
    const leader = await redis.get(current.leader());
    if (leader !== null) return { kind: 'busy', reason: `coordinator ${JSON.stringify(leader)} of cluster protocol 2 holds the lease ${current.leader()}: protocol 2 is running already` };
    const newIds = await redis.smembers(current.workers());
    const newAlive = newIds.length === 0 ? 0 : await redis.exists(...newIds.map((id) => current.worker(id)));
    if (newAlive > 0) return { kind: 'busy', reason: `${newAlive} worker heartbeat(s) of cluster protocol 2 live under ${current.worker('*')}: protocol 2 is running already` };
  }
  // From here no coordinator of protocol 1 can take the lease: it is held for good.
  await redis.set(oldLease, MIGRATED_TOMBSTONE);
  say(`${oldLease} holds ${MIGRATED_TOMBSTONE}: no coordinator of cluster protocol 1 can lead any more`);

  const moved: Record<string, number> = { table: 0, operator: 0, epoch: 0, open: 0, signals: 0, done: 0, late: 0 };
  const conflicts: string[] = [];
  const move = async (pairs: ReadonlyArray<[string, string, string]>): Promise<void> => {
    if (pairs.length === 0) return;
    const pipeline = redis.pipeline();
    for (const [, from, to] of pairs) pipeline.renamenx(from, to);
    const results = (await pipeline.exec()) ?? [];
    results.forEach(([err, value], i) => {
      const [kind, from] = pairs[i]!;
      if (err !== null) {
        if (!/no such key/i.test(err.message)) throw err;
        return;
      }
      if (value === 1) moved[kind] = (moved[kind] ?? 0) + 1;
      else conflicts.push(from);
    });
  };

  await move(fixedKeys(prefix, partitions));
  const state = new CoordinatorKeys(prefix, partitions).state;
  const perCorrelation: Array<[string, (corrId: string) => string]> = [
    ['signals', (c) => state.signals(c)],
    ['done', (c) => state.done(c)],
    ['late', (c) => state.late(c)],
  ];
  for (const [kind, to] of perCorrelation) {
    const head = `${prefix}:${kind}:`;
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${glob(head)}*`, 'COUNT', 1_000);
      cursor = next;
      await move(found.map((key) => [kind, key, to(key.slice(head.length))]));
    } while (cursor !== '0');
  }
  // The old indexes name processes of protocol 1 only.
  await redis.del(`${prefix}:workers`, `${prefix}:presence:coordinators`);
  say(`moved: ${Object.entries(moved).map(([kind, n]) => `${n} ${kind}`).join(', ')}${conflicts.length > 0 ? `; ${conflicts.length} left in place (their new name exists)` : ''}`);
  return { kind: 'done', moved, conflicts };
}
