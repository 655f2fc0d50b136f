import { ConfigError } from '@at-orchestrator/contracts';
import { assertNoEviction, type Gauge, type Logger, type RedisLink } from '@at-orchestrator/runtime';

export interface RedisGateOptions {
  redis: RedisLink;
  /** orchestrator_degraded: 1 while the worker decides without Redis. */
  degraded: Gauge;
  /** Runs each time Redis becomes usable, once its policy passed (epochs, unsynced writes, refused claims). */
  recover: () => Promise<void>;
  /** Redis turned out to evict (first reached after start): the worker must stop. */
  onRefused: (err: ConfigError) => void;
  log: Logger;
}

/**
 * Lets the worker use Redis only once Redis is safe to use: an evicting maxmemory-policy could drop
 * done-markers or epochs, so it is checked once, when Redis is first reached (at start, or later when
 * it was down at start), before anything is recovered; every later return of Redis recovers.
 */
export class RedisGate {
  private policyCheck: Promise<void> | undefined;
  private startAwaitsPolicy = false;

  constructor(private readonly o: RedisGateOptions) {
    o.redis.onAvailability((up) => {
      o.degraded.set(up ? 0 : 1);
      if (!up) return;
      void this.policyChecked().then(o.recover, (err: unknown) => {
        // At start the refusal is start()'s to throw; later it stops the worker.
        if (err instanceof ConfigError && !this.startAwaitsPolicy) o.onRefused(err);
      });
    });
  }

  /** Connects; with Redis up, checks its policy (a ConfigError when it evicts) and recovers. Resolves whether Redis is up. */
  async start(): Promise<boolean> {
    const up = await this.o.redis.start();
    this.o.degraded.set(up ? 0 : 1);
    if (!up) {
      this.o.log.warn('redis unreachable at start: deciding from memory until it returns (degraded)');
      return false;
    }
    this.startAwaitsPolicy = true;
    await this.policyChecked();
    await this.o.recover();
    return true;
  }

  private policyChecked(): Promise<void> {
    this.policyCheck ??= assertNoEviction(this.o.redis.client).catch((err: unknown) => {
      if (!(err instanceof ConfigError)) this.policyCheck = undefined; // Redis lost mid-check: again at the next connection
      throw err;
    });
    return this.policyCheck;
  }
}
