import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { redactUrl, type OrchestratorConfig, type RedisClusterNodes, type RedisSentinel } from '@at-orchestrator/contracts';
import type { Logger } from './logger.js';
import { redisClusterSettings, redisConnectionSettings, redisSentinelSettings, type RedisAccess } from '@at-orchestrator/connections';

export { Cluster, Redis } from 'ioredis';

/**
 * The state Redis client: one Redis (a URL, or the primary Sentinel names) or a Redis Cluster. Code
 * that must send a multi-key script per slot asks `client.isCluster`.
 */
export type RedisClient = Redis | Cluster;

/** Where a Redis connection goes: a redis:// or rediss:// URL, the primary Sentinel names, or a Redis Cluster. */
export type RedisTarget = string | RedisSentinel | RedisClusterNodes;

/** The state Redis of a configuration: REDIS_URL, REDIS_SENTINELS + REDIS_SENTINEL_MASTER, or REDIS_CLUSTER_NODES (exactly one is set). */
export function stateRedisTarget(redis: OrchestratorConfig['redis']): RedisTarget {
  if (redis.sentinel !== undefined) return redis.sentinel;
  if (redis.cluster !== undefined) return redis.cluster;
  if (redis.url === undefined) throw new Error('the configuration names no Redis: neither REDIS_URL, REDIS_SENTINELS nor REDIS_CLUSTER_NODES');
  return redis.url;
}

/** A target as logs may show it: the URL without credentials, the Sentinels and the primary's name, or the cluster nodes. */
export function describeRedisTarget(target: RedisTarget): string {
  if (typeof target === 'string') return redactUrl(target);
  if ('nodes' in target) return `cluster via ${target.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  return `sentinel ${target.masterName} via ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
}

/**
 * A Redis client made for degraded operation: commands fail fast while the connection is down
 * (no offline queue, one attempt each), and reconnection backs off up to 2 s — the circuit is the
 * connection state, so a Redis outage costs no retry storm. `available` is what /health reports.
 */
export class RedisLink<C extends RedisClient = RedisClient> {
  /** A Redis for a URL or Sentinel, a Cluster for REDIS_CLUSTER_NODES (RedisLink<Redis> where only a URL can be given). */
  readonly client: C;
  private readyNow = false;
  private closed = false;
  private readonly listeners = new Set<(up: boolean) => void>();

  /**
   * `target`: a URL, Sentinel or a cluster (config.redis.sentinel / cluster; stateRedisTarget picks the
   * state Redis's).
   * `access` (config.redis) adds the ACL user, password and TLS files; its files are checked here, so
   * a bad one throws ConfigError naming the variable. `variable` names the URL's variable in errors.
   */
  constructor(target: RedisTarget, private readonly log: Logger, options: { name: string; commandTimeoutMs?: number; access?: RedisAccess; variable?: string }) {
    const common: RedisOptions = {
      connectionName: options.name,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 2_000,
      connectTimeout: 2_000,
      enableAutoPipelining: false,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
      reconnectOnError: () => false,
    };
    this.client = (
      typeof target === 'string'
        ? new Redis(target, { ...redisConnectionSettings(target, options.access, options.variable), ...common })
        : 'nodes' in target
          ? clusterClient(target, options.access, common)
          : new Redis({
              ...redisSentinelSettings(target, options.access),
              ...common,
              // Asked again at every reconnect: after a failover the Sentinels name the promoted replica.
              // They are asked in turn, each reconnect round backing off up to 1 s.
              sentinelRetryStrategy: (times) => Math.min(100 * times, 1_000),
              // Drop the connection as soon as a Sentinel announces +switch-master, rather than wait for the
              // old primary to fail: an old primary that is still up (partitioned) would refuse writes later.
              failoverDetector: true,
            })
    ) as C;
    this.client.on('ready', () => this.setReady(true));
    this.client.on('close', () => this.setReady(false));
    this.client.on('end', () => this.setReady(false));
    this.client.on('error', (err: Error) => {
      // ioredis reports every failed reconnect; once per outage is enough at warn.
      if (this.readyNow) this.log.warn({ err }, 'redis error');
      else this.log.debug({ err }, 'redis error');
    });
    this.log.debug({ redis: describeRedisTarget(target) }, 'redis client created');
  }

  /** Connects; resolves false (degraded) instead of throwing when Redis cannot be reached in time. */
  async start(timeoutMs = 5_000): Promise<boolean> {
    const connecting = this.client.connect().then(
      () => true,
      () => false,
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const ok = await Promise.race([connecting, timeout]);
    clearTimeout(timer);
    // A Cluster resolves connect() a tick before it emits 'ready': its status already says so.
    if (ok && this.client.status === 'ready') this.setReady(true);
    return ok && this.readyNow;
  }

  get available(): boolean {
    return this.readyNow && !this.closed;
  }

  /** Called with true when Redis becomes usable and false when it is lost. */
  onAvailability(listener: (up: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  private setReady(up: boolean): void {
    if (up === this.readyNow) return;
    this.readyNow = up;
    if (up) this.log.info('redis available');
    else if (!this.closed) this.log.warn('redis unavailable: deciding from memory (degraded)');
    for (const l of this.listeners) l(up);
  }
}

/**
 * A Redis Cluster client with the same degraded-operation settings: no offline queue (a command for a
 * slot whose master is down fails at once), node connections with the common timeouts, reconnection of
 * the whole cluster backing off up to 2 s. A command that meets a failover (connection closed, CLUSTERDOWN,
 * TRYAGAIN, MOVED) is retried by ioredis on the slot map it refreshes, at most 16 redirections 100 ms
 * apart: bounded, and long enough for a replica promoted after a short cluster-node-timeout.
 */
function clusterClient(target: RedisClusterNodes, access: RedisAccess | undefined, common: RedisOptions): Cluster {
  const settings = redisClusterSettings(target, access);
  const { retryStrategy: _unused, enableOfflineQueue: _queue, lazyConnect: _lazy, enableAutoPipelining, ...node } = common;
  return new Cluster(settings.nodes, {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableAutoPipelining,
    scaleReads: 'master',
    clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
    maxRedirections: 16,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 1_000,
    slotsRefreshInterval: 2_000,
    redisOptions: { ...node, ...settings.node },
  });
}
