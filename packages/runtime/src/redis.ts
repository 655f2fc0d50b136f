import { Redis, type RedisOptions } from 'ioredis';
import { redactUrl, type OrchestratorConfig, type RedisSentinel } from '@at-orchestrator/contracts';
import type { Logger } from './logger.js';
import { redisConnectionSettings, redisSentinelSettings, type RedisAccess } from '@at-orchestrator/connections';

export { Redis } from 'ioredis';

/** Where a Redis connection goes: a redis:// or rediss:// URL, or the primary Sentinel names. */
export type RedisTarget = string | RedisSentinel;

/** The state Redis of a configuration: REDIS_URL, or REDIS_SENTINELS + REDIS_SENTINEL_MASTER (exactly one is set). */
export function stateRedisTarget(redis: OrchestratorConfig['redis']): RedisTarget {
  if (redis.sentinel !== undefined) return redis.sentinel;
  if (redis.url === undefined) throw new Error('the configuration names no Redis: neither REDIS_URL nor REDIS_SENTINELS');
  return redis.url;
}

/** A target as logs may show it: the URL without credentials, or the Sentinels and the primary's name. */
export function describeRedisTarget(target: RedisTarget): string {
  return typeof target === 'string' ? redactUrl(target) : `sentinel ${target.masterName} via ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
}

/**
 * A Redis client made for degraded operation: commands fail fast while the connection is down
 * (no offline queue, one attempt each), and reconnection backs off up to 2 s — the circuit is the
 * connection state, so a Redis outage costs no retry storm. `available` is what /health reports.
 */
export class RedisLink {
  readonly client: Redis;
  private readyNow = false;
  private closed = false;
  private readonly listeners = new Set<(up: boolean) => void>();

  /**
   * `target`: a URL, or Sentinel (config.redis.sentinel; stateRedisTarget picks the state Redis's).
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
    this.client =
      typeof target === 'string'
        ? new Redis(target, { ...redisConnectionSettings(target, options.access, options.variable), ...common })
        : new Redis({
            ...redisSentinelSettings(target, options.access),
            ...common,
            // Asked again at every reconnect: after a failover the Sentinels name the promoted replica.
            // They are asked in turn, each reconnect round backing off up to 1 s.
            sentinelRetryStrategy: (times) => Math.min(100 * times, 1_000),
            // Drop the connection as soon as a Sentinel announces +switch-master, rather than wait for the
            // old primary to fail: an old primary that is still up (partitioned) would refuse writes later.
            failoverDetector: true,
          });
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
