import type { Cluster, Redis } from 'ioredis';
import { ConfigError } from '@at-orchestrator/contracts';

/**
 * The worker keeps done-markers (with a TTL) and partition epochs in Redis; an evicting
 * `maxmemory-policy` could drop either under memory pressure and let a correlation be decided twice
 * or a fenced owner write. Only `noeviction` (writes refused when full) is safe: volatile-* policies
 * evict keys that have a TTL, which done-markers do.
 */
export const SAFE_MAXMEMORY_POLICY = 'noeviction';

/** Reads maxmemory-policy with CONFIG GET, or from INFO memory where an ACL forbids CONFIG. */
export async function readMaxmemoryPolicy(client: Redis): Promise<string> {
  try {
    const reply = (await client.config('GET', 'maxmemory-policy')) as unknown;
    if (Array.isArray(reply) && typeof reply[1] === 'string') return reply[1];
  } catch {
    // NOPERM (an ACL without +config) or a managed Redis that renames CONFIG: INFO still says it.
  }
  const info = await client.info('memory');
  const match = /^maxmemory_policy:(\S+)/m.exec(info);
  if (match === null) throw new Error('neither CONFIG GET maxmemory-policy nor INFO memory tells the maxmemory-policy');
  return match[1]!;
}

/**
 * Refuses an evicting policy with a ConfigError saying which policy to set. A Redis Cluster is asked
 * master by master (the ones it knows now): each holds its share of the partitions.
 */
export async function assertNoEviction(client: Redis | Cluster, what = 'REDIS_URL'): Promise<void> {
  const nodes = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  for (const node of nodes) {
    const policy = await readMaxmemoryPolicy(node);
    if (policy !== SAFE_MAXMEMORY_POLICY) {
      const where = client.isCluster ? `the Redis Cluster node ${node.options.host ?? '?'}:${node.options.port ?? '?'} (REDIS_CLUSTER_NODES)` : `the Redis at ${what}`;
      throw new ConfigError(
        `${where} has maxmemory-policy ${policy}, which can evict done-markers or partition epochs (decisions twice, fencing lost): expected "maxmemory-policy ${SAFE_MAXMEMORY_POLICY}" (CONFIG SET maxmemory-policy ${SAFE_MAXMEMORY_POLICY}, or in redis.conf)`,
      );
    }
  }
}
