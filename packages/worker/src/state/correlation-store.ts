import { readFileSync } from 'node:fs';
import type { RedisClient } from '@at-orchestrator/runtime';
import type { ChainableCommander } from 'ioredis';
import { RedisKeys } from '@at-orchestrator/contracts';
import { groupByPartition, ungroup } from './partition-groups.js';

const script = (name: string): string => readFileSync(new URL(`./scripts/${name}.lua`, import.meta.url), 'utf8');
/** A script's text as a Lua function of its own KEYS and ARGV, for a script that runs others. */
const asFunction = (name: string, body: string): string => `local function ${name}(KEYS, ARGV)\n${body}\nend\n`;

/**
 * Lua scripts, each named after what it does. Each takes a whole batch (its key count is the first
 * argument), so a batch is one command and one reply rather than a pipeline of per-item calls: an
 * ioredis pipeline costs a few KB that survive young-generation GC, and at a few thousand pipelines
 * a second their promotion made every scavenge a 5–10 ms pause (docs/benchmarks.md).
 */
export const SCRIPTS = {
  storeSignals: { lua: script('store-signals') },
  claimDecisions: { lua: script('claim-decisions') },
  markPublished: { lua: script('mark-published') },
  storeAndClaim: {
    lua: asFunction('storeSignals', script('store-signals')) + asFunction('claimDecisions', script('claim-decisions')) + script('store-and-claim'),
  },
} as const;

/** The client with the scripts above defined as commands (ioredis defineCommand). */
type ScriptedRedis = RedisClient & {
  storeSignals(numKeys: number, ...keysThenArgs: Array<string | number>): Promise<Array<number | string>>;
  claimDecisions(numKeys: number, ...keysThenArgs: Array<string | number>): Promise<Array<[string, string]>>;
  markPublished(numKeys: number, ...keysThenArgs: Array<string | number>): Promise<number>;
  storeAndClaim(numKeys: number, ...keysThenArgs: Array<string | number>): Promise<[Array<number | string>, Array<[string, string]>]>;
};

interface ScriptCall {
  keys: string[];
  args: Array<string | number>;
}

export type StoreVerdict = { kind: 'stored' } | { kind: 'duplicate' } | { kind: 'fenced' } | { kind: 'done'; agents: string[]; published: boolean };
const STORED: StoreVerdict = { kind: 'stored' };
const DUPLICATE: StoreVerdict = { kind: 'duplicate' };
const FENCED: StoreVerdict = { kind: 'fenced' };
const CLAIMED: ClaimVerdict = { kind: 'claimed' };

export type ClaimVerdict =
  | { kind: 'claimed' }
  | { kind: 'fenced'; currentEpoch: number }
  | { kind: 'exists'; published: boolean; agents: string[] }
  /**
   * No answer for this item: on a Redis Cluster, the call of its partition failed (its master failing
   * over, say) while the other partitions' calls answered. The caller treats it as it treats a failed
   * claim (degraded), and only it: the others' verdicts stand.
   */
  | { kind: 'unknown'; error: unknown };

export interface SignalToStore {
  corrId: string;
  agent: string;
  partition: number;
  payload: string;
  deadlineMs: number;
  /** The epoch the caller owns the partition at: a stale one is refused (fenced). */
  epoch: number;
}

export interface ClaimRequest {
  corrId: string;
  partition: number;
  epoch: number;
  agents: readonly string[];
}

export interface StoredCorrelation {
  corrId: string;
  partition: number;
  deadlineMs: number;
  /** agent → signal JSON as received. Empty when the state expired before the owner came back. */
  signals: Record<string, string>;
  /** A claim exists that was never marked published: decide again (Nats-Msg-Id keeps it single). */
  claimedNotPublished: boolean;
}

/** Parses a done-marker: "pending|<epoch>|<worker>|<agents>" or "published|<agents>". */
export function parseDoneMarker(value: string): { published: boolean; agents: string[] } {
  const published = value.startsWith('published|');
  const agentsField = value.slice(value.lastIndexOf('|') + 1);
  return { published, agents: agentsField === '' ? [] : agentsField.split(',') };
}

function storeVerdict(r: number | string): StoreVerdict {
  if (r === 1) return STORED;
  if (r === 0) return DUPLICATE;
  if (r === -1) return FENCED;
  return { kind: 'done', ...parseDoneMarker(String(r)) };
}

function claimVerdict([kind, value]: [string, string]): ClaimVerdict {
  if (kind === 'claimed') return CLAIMED;
  if (kind === 'fenced') return { kind: 'fenced', currentEpoch: Number(value) };
  return { kind: 'exists', ...parseDoneMarker(value) };
}

const itemPartition = (item: { partition: number }): number => item.partition;

/**
 * The correlation state in Redis: every hot-path write is one Lua script call per batch; the rare
 * paths (late signals, epochs, resuming) use pipelines. On a Redis Cluster (`perSlot`, the default for
 * a Cluster client) a batch is split by partition instead, one call or pipeline per partition, sent
 * together: a script or pipeline may not cross slots there. Methods throw when Redis fails; the caller
 * decides what degraded mode means.
 */
export class CorrelationStore {
  private readonly scripted: ScriptedRedis;
  /** One call per partition of a batch (Redis Cluster) rather than one per batch. */
  readonly perSlot: boolean;

  constructor(
    private readonly redis: RedisClient,
    readonly keys: RedisKeys,
    private readonly ttl: { stateSec: number; idempotencySec: number },
    options: { perSlot?: boolean } = {},
  ) {
    for (const [name, def] of Object.entries(SCRIPTS)) {
      if (!(name in redis)) redis.defineCommand(name, def);
    }
    this.scripted = redis as ScriptedRedis;
    this.perSlot = options.perSlot ?? redis.isCluster;
  }

  /**
   * Runs `call` on the whole batch (one Redis, or a batch of one partition), or on each partition's
   * share of it concurrently, and returns the results in batch order. A failure of the one call, or
   * of every partition's call, rejects. When only some partitions' calls fail, the others' answers
   * are kept: each item of a failed partition gets `failed(error)`, or, without `failed`, the batch
   * rejects once every call has settled (none is left running behind the caller's back).
   */
  private async bySlot<T extends { partition: number }, R>(
    items: readonly T[],
    call: (batch: readonly T[]) => Promise<R[]>,
    failed?: (error: unknown) => R,
  ): Promise<R[]> {
    if (!this.perSlot) return call(items);
    const groups = groupByPartition(items, itemPartition);
    if (groups.length === 1) return call(items);
    const settled = await Promise.allSettled(groups.map((g) => call(g.items)));
    const firstFailure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (firstFailure !== undefined && (failed === undefined || settled.every((r) => r.status === 'rejected'))) throw firstFailure.reason;
    const results = settled.map((r, g) => (r.status === 'fulfilled' ? r.value : groups[g]!.items.map(() => failed!(r.reason))));
    return ungroup(groups, results, items.length);
  }

  /** A pipeline over the batch (one Redis) or one per partition (Redis Cluster); the replies in batch order. */
  private async pipelined<T>(items: readonly T[], partitionOf: (item: T) => number, add: (pipeline: ChainableCommander, item: T) => void): Promise<unknown[]> {
    const run = async (batch: readonly T[]): Promise<unknown[]> => {
      const pipeline = this.redis.pipeline();
      for (const item of batch) add(pipeline, item);
      return execOrThrow(pipeline);
    };
    if (!this.perSlot) return run(items);
    const groups = groupByPartition(items, partitionOf);
    const settled = await Promise.allSettled(groups.map((g) => run(g.items)));
    const results = settled.map((r) => {
      if (r.status === 'rejected') throw r.reason;
      return r.value;
    });
    const per = items.length === 0 ? 0 : results.reduce((n, r) => n + r.length, 0) / items.length;
    return ungroup(groups, results, items.length, per);
  }

  /**
   * Stores a batch of signals. Any failed call rejects the whole batch, even on a Redis Cluster when
   * other partitions answered: the caller then holds every signal un-acked in memory and writes it
   * again later, which is safe for the ones that were stored (a repeat answers `duplicate`) and for
   * the fenced or decided ones (their claim is fenced or finds the decision).
   */
  storeSignals(items: readonly SignalToStore[]): Promise<StoreVerdict[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.bySlot(items, (batch) => this.storeBatch(batch));
  }

  private async storeBatch(items: readonly SignalToStore[]): Promise<StoreVerdict[]> {
    const { keys, args } = this.storeCall(items);
    const results = await this.scripted.storeSignals(keys.length, ...keys, ...args);
    return results.map(storeVerdict);
  }

  private storeCall(items: readonly SignalToStore[]): ScriptCall {
    const keys: string[] = [];
    const args: Array<string | number> = [];
    for (const it of items) {
      keys.push(this.keys.signals(it.corrId), this.keys.done(it.corrId), this.keys.open(it.partition), this.keys.epoch(it.partition));
      args.push(it.agent, it.payload, this.ttl.stateSec, it.corrId, it.deadlineMs, String(it.epoch));
    }
    return { keys, args };
  }

  /**
   * Whether `storeAndClaim` may be used: with one Redis or Sentinel. On a Redis Cluster a script may
   * not cross slots, so stores and claims go as separate calls per partition.
   */
  get claimsWithStore(): boolean {
    return !this.perSlot;
  }

  /**
   * Stores a batch of signals and, in the same script run after them, claims the correlations they
   * complete: one command and one round trip on the decision path instead of two. The claims are
   * exactly `claim`'s (epoch fence and done-marker), answered in the light of the stores before them.
   * Rejects when Redis fails, like both.
   */
  async storeAndClaim(
    items: readonly SignalToStore[],
    claims: readonly ClaimRequest[],
    workerId: string,
  ): Promise<{ stored: StoreVerdict[]; claimed: ClaimVerdict[] }> {
    if (this.perSlot) throw new Error('storeAndClaim needs one Redis or Sentinel, not a Redis Cluster (claimsWithStore)');
    const store = this.storeCall(items);
    const claim = this.claimCall(claims, workerId);
    const [stored, claimed] = await this.scripted.storeAndClaim(
      store.keys.length + claim.keys.length,
      ...store.keys,
      ...claim.keys,
      store.keys.length,
      store.args.length,
      ...store.args,
      ...claim.args,
    );
    return { stored: stored.map(storeVerdict), claimed: claimed.map(claimVerdict) };
  }

  /**
   * Claims a batch of decisions. Rejects when Redis answered none of it; on a Redis Cluster, when
   * some partitions' calls failed and others answered, the items of the failed ones are `unknown`.
   */
  claim(requests: readonly ClaimRequest[], workerId: string): Promise<ClaimVerdict[]> {
    if (requests.length === 0) return Promise.resolve([]);
    return this.bySlot(
      requests,
      (batch) => this.claimBatch(batch, workerId),
      (error): ClaimVerdict => ({ kind: 'unknown', error }),
    );
  }

  private async claimBatch(requests: readonly ClaimRequest[], workerId: string): Promise<ClaimVerdict[]> {
    const { keys, args } = this.claimCall(requests, workerId);
    const results = await this.scripted.claimDecisions(keys.length, ...keys, ...args);
    return results.map(claimVerdict);
  }

  private claimCall(requests: readonly ClaimRequest[], workerId: string): ScriptCall {
    const keys: string[] = [];
    const args: Array<string | number> = [this.ttl.idempotencySec];
    for (const r of requests) {
      keys.push(this.keys.epoch(r.partition), this.keys.done(r.corrId));
      args.push(String(r.epoch), `pending|${r.epoch}|${workerId}|${r.agents.join(',')}`);
    }
    return { keys, args };
  }

  /**
   * Marks published decisions, and returns the items it could not mark: none when every call
   * answered; on a Redis Cluster, those of the partitions whose call failed while others answered.
   * Rejects when Redis answered none of it.
   */
  async markPublished<T extends { corrId: string; partition: number; agents: readonly string[] }>(items: readonly T[]): Promise<T[]> {
    if (items.length === 0) return [];
    const marked = await this.bySlot(
      items,
      (batch) => this.markBatch(batch),
      () => false,
    );
    return items.filter((_, i) => !marked[i]);
  }

  private async markBatch(items: ReadonlyArray<{ corrId: string; partition: number; agents: readonly string[] }>): Promise<boolean[]> {
    const keys: string[] = [];
    const args: Array<string | number> = [this.ttl.idempotencySec];
    for (const it of items) {
      keys.push(this.keys.done(it.corrId), this.keys.open(it.partition));
      args.push(`published|${it.agents.join(',')}`, it.corrId);
    }
    await this.scripted.markPublished(keys.length, ...keys, ...args);
    return items.map(() => true);
  }

  /** Records an agent that reported after the decision (kept for audit, TTL IDEMPOTENCY_TTL_SEC). */
  async recordLate(items: ReadonlyArray<{ corrId: string; agent: string; payload: string }>): Promise<void> {
    if (items.length === 0) return;
    await this.pipelined(
      items,
      (it) => this.keys.partitionOf(it.corrId),
      (pipeline, it) => pipeline.hsetnx(this.keys.late(it.corrId), it.agent, it.payload).expire(this.keys.late(it.corrId), this.ttl.idempotencySec),
    );
  }

  /** Takes ownership of partitions: a new epoch for each (the fencing token every emit checks). */
  async bumpEpochs(partitions: readonly number[]): Promise<Map<number, number>> {
    const results = await this.pipelined(partitions, (p) => p, (pipeline, p) => pipeline.incr(this.keys.epoch(p)));
    return new Map(partitions.map((p, i) => [p, Number(results[i])]));
  }

  /**
   * Re-asserts epochs after Redis lost its data (a restart without persistence): each missing epoch
   * key is set back to the epoch we own it at. An existing key is left alone — if it moved on, a newer
   * owner exists and our claims will be fenced, as they should.
   */
  async restoreEpochs(owned: ReadonlyMap<number, number>): Promise<number> {
    const results = await this.pipelined([...owned], ([p]) => p, (pipeline, [p, epoch]) => pipeline.set(this.keys.epoch(p), String(epoch), 'NX'));
    return results.filter((r) => r === 'OK').length;
  }

  /**
   * Loads the open correlations of partitions, with their deadlines, for a new owner; only those
   * `only` names when given (their signals are read, no one else's). All pages at once: for tests
   * and small partitions; the worker reads pages (loadOpenPages).
   */
  async loadOpen(partitions: readonly number[], only?: ReadonlySet<string>, chunk = 500): Promise<StoredCorrelation[]> {
    const out: StoredCorrelation[] = [];
    for await (const page of this.loadOpenPages(partitions, only, chunk)) out.push(...page);
    return out;
  }

  /**
   * The open correlations of partitions, a page (at most `pageSize` correlations) at a time: the
   * index is walked with ZSCAN and a page's signals are read only when the caller asks for the next
   * page, so a big partition is never in memory at once and the caller can wait for room between
   * pages. ZSCAN returns every member present throughout the walk at least once (one may come twice:
   * the caller already ignores a correlation it has); members removed meanwhile (decided) may be
   * skipped, as they should.
   */
  async *loadOpenPages(partitions: readonly number[], only?: ReadonlySet<string>, pageSize = 500): AsyncGenerator<StoredCorrelation[]> {
    let entries: Array<{ corrId: string; partition: number; deadlineMs: number }> = [];
    for (const partition of partitions) {
      const key = this.keys.open(partition);
      let cursor = '0';
      do {
        const [next, flat] = await this.redis.zscan(key, cursor, 'COUNT', pageSize);
        cursor = next;
        for (let j = 0; j + 1 < flat.length; j += 2) {
          if (only !== undefined && !only.has(flat[j]!)) continue;
          entries.push({ corrId: flat[j]!, partition, deadlineMs: Number(flat[j + 1]) });
        }
        while (entries.length >= pageSize) {
          const page = entries.slice(0, pageSize);
          entries = entries.slice(pageSize);
          yield await this.readPage(page);
        }
      } while (cursor !== '0');
    }
    if (entries.length > 0) yield await this.readPage(entries);
  }

  /** Reads the signals and done-markers of one page; published leftovers leave the index. */
  private async readPage(slice: Array<{ corrId: string; partition: number; deadlineMs: number }>): Promise<StoredCorrelation[]> {
    const out: StoredCorrelation[] = [];
    const res = await this.pipelined(slice, itemPartition, (pipeline, e) => pipeline.hgetall(this.keys.signals(e.corrId)).get(this.keys.done(e.corrId)));
    const published: typeof slice = [];
    slice.forEach((e, i) => {
      const signals = (res[i * 2] ?? {}) as Record<string, string>;
      const done = res[i * 2 + 1] as string | null;
      if (done !== null && parseDoneMarker(done).published) {
        published.push(e);
        return;
      }
      out.push({ ...e, signals, claimedNotPublished: done !== null });
    });
    if (published.length > 0) {
      // Published but the index entry survived (the owner died between publish and cleanup).
      await this.pipelined(published, itemPartition, (pipeline, e) => pipeline.zrem(this.keys.open(e.partition), e.corrId));
    }
    return out;
  }
}

async function execOrThrow(pipeline: ChainableCommander): Promise<unknown[]> {
  const results = await pipeline.exec();
  if (results === null) throw new Error('redis pipeline aborted');
  return results.map(([err, value]) => {
    if (err !== null) throw err;
    return value;
  });
}
