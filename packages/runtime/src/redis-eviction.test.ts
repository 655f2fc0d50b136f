import type { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@at-orchestrator/contracts';
import { assertNoEviction, readMaxmemoryPolicy } from './redis-eviction.js';

function fakeRedis(config: () => unknown, info = ''): Redis {
  return {
    config: async () => config(),
    info: async () => info,
  } as unknown as Redis;
}

describe('maxmemory-policy check', () => {
  it('reads CONFIG GET, and INFO memory where an ACL forbids CONFIG', async () => {
    expect(await readMaxmemoryPolicy(fakeRedis(() => ['maxmemory-policy', 'noeviction']))).toBe('noeviction');
    const noperm = fakeRedis(() => {
      throw new Error("NOPERM this user has no permissions to run the 'config|get' command");
    }, '# Memory\r\nused_memory:1000\r\nmaxmemory_policy:volatile-lru\r\n');
    expect(await readMaxmemoryPolicy(noperm)).toBe('volatile-lru');
  });

  it('noeviction passes; any evicting policy (volatile-* included: done-markers have a TTL) is refused saying what to set', async () => {
    await expect(assertNoEviction(fakeRedis(() => ['maxmemory-policy', 'noeviction']))).resolves.toBeUndefined();
    for (const policy of ['allkeys-lru', 'volatile-lru', 'volatile-ttl', 'allkeys-random', 'volatile-lfu']) {
      const check = assertNoEviction(fakeRedis(() => ['maxmemory-policy', policy]));
      await expect(check).rejects.toBeInstanceOf(ConfigError);
      await expect(check).rejects.toThrow(new RegExp(`maxmemory-policy ${policy}, .*expected "maxmemory-policy noeviction"`));
    }
  });

  it('a Redis Cluster is checked master by master, and the refusal names the node', async () => {
    const node = (port: number, policy: string) => Object.assign(fakeRedis(() => ['maxmemory-policy', policy]), { options: { host: '127.0.0.1', port } });
    const cluster = (policies: string[]) => ({ isCluster: true, nodes: () => policies.map((p, i) => node(7000 + i, p)) }) as unknown as Cluster;
    await expect(assertNoEviction(cluster(['noeviction', 'noeviction', 'noeviction']))).resolves.toBeUndefined();
    await expect(assertNoEviction(cluster(['noeviction', 'allkeys-lru', 'noeviction']))).rejects.toThrow(
      /^the Redis Cluster node 127\.0\.0\.1:7001 \(REDIS_CLUSTER_NODES\) has maxmemory-policy allkeys-lru/,
    );
  });
});
