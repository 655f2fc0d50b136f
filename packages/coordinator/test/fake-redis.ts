import type { Redis } from 'ioredis';

type Reply = [Error | null, unknown];

/**
 * An in-memory stand-in for the few ioredis calls the operator settings make (strings, sets, hashes;
 * pipeline and multi applied at `exec`), for unit tests that need no server. `down` makes every call
 * reject, as an unreachable Redis does.
 */
export class FakeRedis {
  readonly strings = new Map<string, string>();
  readonly sets = new Map<string, Set<string>>();
  readonly hashes = new Map<string, Map<string, string>>();
  down = false;

  /** Typed as the client the code under test takes. */
  get client(): Redis {
    return this as unknown as Redis;
  }

  pipeline(): FakeBatch {
    return new FakeBatch(this);
  }

  multi(): FakeBatch {
    return new FakeBatch(this);
  }

  async set(key: string, value: string): Promise<'OK'> {
    this.reachable();
    this.strings.set(key, value);
    return 'OK';
  }

  async del(key: string): Promise<number> {
    this.reachable();
    return [this.strings.delete(key), this.sets.delete(key), this.hashes.delete(key)].filter(Boolean).length;
  }

  async hset(key: string, field: string, value: string): Promise<number> {
    this.reachable();
    const hash = this.hashes.get(key) ?? new Map<string, string>();
    this.hashes.set(key, hash);
    const added = hash.has(field) ? 0 : 1;
    hash.set(field, value);
    return added;
  }

  reachable(): void {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
  }

  /** A set's members, sorted. */
  members(key: string): string[] {
    return [...(this.sets.get(key) ?? [])].sort();
  }

  /** A hash as a plain object. */
  hash(key: string): Record<string, string> {
    return Object.fromEntries(this.hashes.get(key) ?? []);
  }
}

class FakeBatch {
  private readonly ops: Array<() => unknown> = [];

  constructor(private readonly redis: FakeRedis) {}

  get(key: string): this {
    this.ops.push(() => this.redis.strings.get(key) ?? null);
    return this;
  }

  smembers(key: string): this {
    this.ops.push(() => this.redis.members(key));
    return this;
  }

  hgetall(key: string): this {
    this.ops.push(() => this.redis.hash(key));
    return this;
  }

  sadd(key: string, ...members: string[]): this {
    this.ops.push(() => {
      const set = this.redis.sets.get(key) ?? new Set<string>();
      this.redis.sets.set(key, set);
      for (const member of members) set.add(member);
    });
    return this;
  }

  srem(key: string, ...members: string[]): this {
    this.ops.push(() => {
      for (const member of members) this.redis.sets.get(key)?.delete(member);
    });
    return this;
  }

  hdel(key: string, ...fields: string[]): this {
    this.ops.push(() => {
      for (const field of fields) this.redis.hashes.get(key)?.delete(field);
    });
    return this;
  }

  async exec(): Promise<Reply[]> {
    this.redis.reachable();
    return this.ops.map((op): Reply => [null, op()]);
  }
}
