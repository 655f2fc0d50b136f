import type { Logger, RedisClient } from '@at-orchestrator/runtime';
import type { PartitionPin } from '../assignment/index.js';
import type { CoordinatorKeys } from '../coordinator-keys.js';

/** What the operator controls: whether rebalancing is paused, which workers drain, which partitions are pinned. */
export interface OperatorSettingsView {
  readonly paused: boolean;
  readonly drains: ReadonlySet<string>;
  readonly pins: readonly PartitionPin[];
}

/**
 * The operator's settings, the only place that writes them. They live in Redis so that the next
 * leader keeps them; every change is written to Redis first and taken into memory only once the
 * write succeeded, so memory never holds a setting Redis lost. The term loop reads them back from
 * Redis every tick (`read` then `adopt`); the control API changes them with `drain`, `pin`, `pause`
 * and `resume`.
 */
export class OperatorSettings implements OperatorSettingsView {
  private current: OperatorSettingsView = { paused: false, drains: new Set(), pins: [] };

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: CoordinatorKeys,
    private readonly partitions: number,
    private readonly log: Logger,
  ) {}

  get paused(): boolean {
    return this.current.paused;
  }

  get drains(): ReadonlySet<string> {
    return this.current.drains;
  }

  get pins(): readonly PartitionPin[] {
    return this.current.pins;
  }

  /** The settings Redis holds, not yet taken into memory (the tick reads them beside membership). */
  async read(): Promise<OperatorSettingsView> {
    const { keys, redis } = this;
    const results = (await redis.pipeline().get(keys.paused()).smembers(keys.draining()).hgetall(keys.pins()).exec()) ?? [];
    const [paused, drains, pins] = results.map(([err, value]) => {
      if (err) throw err;
      return value;
    }) as [string | null, string[], Record<string, string>];
    const pinList: PartitionPin[] = [];
    for (const [field, worker] of Object.entries(pins)) {
      const partition = Number(field);
      // A pin outside the partition range or onto no one was not written by `move`: ignored.
      if (Number.isInteger(partition) && partition >= 0 && partition < this.partitions && worker !== '') pinList.push({ partition, worker });
    }
    return { paused: paused === '1', drains: new Set(drains), pins: pinList };
  }

  /**
   * Takes settings from `read()` into memory. Drains and pins naming workers whose heartbeat is gone
   * are done with: removed from Redis first, then left out. Returns the drained workers that are gone.
   */
  async adopt(read: OperatorSettingsView, live: ReadonlyMap<string, unknown>): Promise<readonly string[]> {
    const goneDrains = [...read.drains].filter((id) => !live.has(id));
    const gonePins = read.pins.filter((pin) => !live.has(pin.worker));
    if (goneDrains.length === 0 && gonePins.length === 0) {
      this.current = read;
      return goneDrains;
    }
    const tx = this.redis.multi();
    if (goneDrains.length > 0) tx.srem(this.keys.draining(), ...goneDrains);
    if (gonePins.length > 0) tx.hdel(this.keys.pins(), ...gonePins.map((pin) => String(pin.partition)));
    await tx.exec();
    for (const id of goneDrains) this.log.info({ worker: id }, 'drained worker is gone');
    if (gonePins.length > 0) this.log.info({ pins: gonePins }, 'pins onto workers that are gone removed');
    this.current = {
      paused: read.paused,
      drains: new Set([...read.drains].filter((id) => live.has(id))),
      pins: read.pins.filter((pin) => live.has(pin.worker)),
    };
    return goneDrains;
  }

  /** Drains a worker; its pins go, since a draining worker must end up owning nothing. */
  async drain(worker: string): Promise<void> {
    const pinned = this.current.pins.filter((pin) => pin.worker === worker);
    const tx = this.redis.multi().sadd(this.keys.draining(), worker);
    if (pinned.length > 0) tx.hdel(this.keys.pins(), ...pinned.map((pin) => String(pin.partition)));
    await tx.exec();
    this.current = {
      ...this.current,
      drains: new Set([...this.current.drains, worker]),
      pins: this.current.pins.filter((pin) => pin.worker !== worker),
    };
  }

  /** Pins a partition to a worker, replacing the partition's earlier pin. */
  async pin(partition: number, worker: string): Promise<void> {
    await this.redis.hset(this.keys.pins(), String(partition), worker);
    this.current = {
      ...this.current,
      pins: [...this.current.pins.filter((pin) => pin.partition !== partition), { partition, worker }],
    };
  }

  async pause(): Promise<void> {
    await this.redis.set(this.keys.paused(), '1');
    this.current = { ...this.current, paused: true };
  }

  async resume(): Promise<void> {
    await this.redis.del(this.keys.paused());
    this.current = { ...this.current, paused: false };
  }
}
