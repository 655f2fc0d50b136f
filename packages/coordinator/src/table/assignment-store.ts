import { OrchestratorError, PartitionState, type AssignmentTable } from '@at-orchestrator/contracts';
import type { Logger, RedisClient } from '@at-orchestrator/runtime';
import type { CoordinatorKeys } from '../coordinator-keys.js';
import { defineScripts, type CoordinatorScripts } from '../scripts.js';

/** One partition's new state. `bump` takes a new epoch (last + 1, or the leader epoch if larger): every change of owner does. */
export interface PartitionChange {
  readonly partition: number;
  readonly owner: string | null;
  readonly phase: PartitionState['phase'];
  /** While revoking: the worker that gets it next. */
  readonly next?: string;
  readonly bump: boolean;
}

/** The leader's term: what every write is fenced by. */
export interface LeaderTermId {
  readonly coordinatorId: string;
  readonly leaderEpoch: number;
}

export interface LoadedTable {
  /** Partitions whose stored epoch differs from their epoch key: their owner would be fenced forever. */
  readonly inconsistent: readonly number[];
  /** Partitions absent from the hash or unreadable (written back as unowned by load()). */
  readonly repaired: readonly number[];
}

/**
 * The assignment table: partition → PartitionState in the `<prefix>:{cluster}:assignment` hash, with
 * its version beside it. The leader keeps it in memory and writes every change fenced by its term, so
 * memory and Redis move together and a deposed leader writes nothing. Commits are serialised.
 *
 * With one Redis a commit is one Lua script (commitAssignment): the lease check, the partition epochs
 * and the table together. On a Redis Cluster (`perSlot`, the default for a Cluster client) the
 * partition epochs live in their partitions' slots: `load()` first raises the leader epoch kept in
 * every partition's slot to this term's (refused if a newer term got there first), and a commit moves
 * each changed partition's epoch with a script in that slot that refuses an older term, then writes
 * the table under the lease check (docs/cluster.md, "Fencing per slot"). A partition's master failing
 * over can lose a bump or a raise; the leader term calls `checkSlots()` every few ticks to find and
 * repair that.
 */
export class AssignmentStore {
  private readonly scripts: CoordinatorScripts;
  private states: PartitionState[] = [];
  private versionNow = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** Epochs and table in separate slots (Redis Cluster), fenced per slot. */
  readonly perSlot: boolean;

  constructor(
    private readonly client: RedisClient,
    private readonly keys: CoordinatorKeys,
    readonly partitions: number,
    private readonly term: LeaderTermId,
    private readonly log: Logger,
    options: { perSlot?: boolean } = {},
  ) {
    this.scripts = defineScripts(client);
    this.perSlot = options.perSlot ?? client.isCluster;
  }

  get version(): number {
    return this.versionNow;
  }

  /** index = partition. */
  get table(): readonly PartitionState[] {
    return this.states;
  }

  snapshot(): AssignmentTable {
    return { version: this.versionNow, leader: this.term.coordinatorId, leader_epoch: this.term.leaderEpoch, partitions: this.states };
  }

  /**
   * Reads the table the previous leader left (or nothing, on a new cluster). Partitions missing or
   * unreadable become unowned at their current epoch and are written back.
   */
  async load(): Promise<LoadedTable> {
    // Per slot: the epochs are read as each partition's slot is taken, so no older term can move them after.
    const slotEpochs = this.perSlot ? await this.raisePartitionSlots() : undefined;
    const pipeline = this.client.pipeline();
    pipeline.hgetall(this.keys.assignment());
    pipeline.get(this.keys.assignmentVersion());
    if (slotEpochs === undefined) pipeline.mget(Array.from({ length: this.partitions }, (_, p) => this.keys.partitionEpoch(p)));
    const results = await pipeline.exec();
    const [hash, version, mgetEpochs] = (results ?? []).map(([err, value]) => {
      if (err) throw err;
      return value;
    }) as [Record<string, string>, string | null, (string | null)[] | undefined];
    const epochs = slotEpochs ?? mgetEpochs ?? [];

    const states: (PartitionState | undefined)[] = new Array<PartitionState | undefined>(this.partitions).fill(undefined);
    for (const [field, value] of Object.entries(hash)) {
      const partition = Number(field);
      if (!Number.isInteger(partition) || partition < 0 || partition >= this.partitions) {
        this.log.warn({ field }, 'assignment hash holds a partition outside 0..PARTITIONS-1; ignored (PARTITIONS is fixed for a cluster\'s life)');
        continue;
      }
      const parsed = parseState(value);
      if (parsed === undefined || parsed.partition !== partition) {
        this.log.warn({ partition }, 'unreadable partition state in the assignment hash; treating the partition as unowned');
        continue;
      }
      states[partition] = parsed;
    }
    const repaired: number[] = [];
    const inconsistent: number[] = [];
    this.states = states.map((state, partition) => {
      const keyEpoch = Number(epochs[partition] ?? 0);
      if (state === undefined) {
        repaired.push(partition);
        return { partition, owner: null, epoch: keyEpoch, phase: 'unowned' };
      }
      if (state.owner !== null && state.epoch !== keyEpoch) inconsistent.push(partition);
      return state;
    });
    this.versionNow = Number(version ?? 0);
    if (repaired.length > 0) {
      await this.commit(repaired.map((partition) => ({ partition, owner: null, phase: 'unowned', bump: false })));
    }
    return { repaired, inconsistent };
  }

  /**
   * Writes the changes and bumps the table version, atomically and only while this term leads.
   * Resolves to the new states; rejects with code FENCED when the term is over (nothing written).
   */
  commit(changes: readonly PartitionChange[]): Promise<readonly PartitionState[]> {
    return this.serialised(() => this.write(changes));
  }

  /**
   * Redis Cluster: takes every partition's slot for this term again (restoring a raise a master
   * failover lost) and returns the owned partitions whose epoch key disagrees with the table: a bump
   * lost in a failover (the key fell back while the table kept the new epoch), or a bump whose table
   * write failed. Their owners are fenced until they get a new epoch (the leader term repairs them).
   * Runs between commits, never inside one. A slot that cannot be reached (its master failing over)
   * is skipped, to be checked next time: the others are still checked, and the tick goes on. Rejects
   * with FENCED when a newer term holds a slot. With
   * one Redis it reads nothing and returns none: a commit moves epochs and table in one script.
   */
  checkSlots(): Promise<number[]> {
    if (!this.perSlot) return Promise.resolve([]);
    return this.serialised(async () => {
      const slots = await this.raiseEverySlot();
      const unreachable = slots.filter((r) => r.status === 'rejected').length;
      if (unreachable > 0) this.log.debug({ unreachable }, 'slot check: some partition slots unreachable (a master failing over?); checked again later');
      return this.states
        .filter((state) => {
          const slot = slots[state.partition];
          return state.owner !== null && slot?.status === 'fulfilled' && state.epoch !== Number(slot.value ?? 0);
        })
        .map((state) => state.partition);
    });
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Redis Cluster: raises the leader epoch of every partition's slot to this term's, before anything
   * else this term does, and returns each partition's owner epoch as read in the same step. Rejects with
   * FENCED when a newer term has raised any slot (this one is over), or with the first error when a
   * slot could not be reached.
   */
  private async raisePartitionSlots(): Promise<Array<string | null>> {
    const settled = await this.raiseEverySlot();
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return settled.map((r) => (r as PromiseFulfilledResult<string | null>).value);
  }

  /**
   * Runs raisePartitionLeaderEpoch in every partition's slot (all at once, each let finish): each
   * partition's owner epoch, or why its slot could not be reached. Rejects with FENCED when any slot
   * answered that a newer term holds it.
   */
  private async raiseEverySlot(): Promise<Array<PromiseSettledResult<string | null>>> {
    const { leaderEpoch } = this.term;
    const replies = await Promise.allSettled(
      Array.from({ length: this.partitions }, (_, p) => this.scripts.raisePartitionLeaderEpoch(this.keys.partitionLeaderEpoch(p), this.keys.partitionEpoch(p), leaderEpoch)),
    );
    const newer = replies.findIndex((r) => r.status === 'fulfilled' && Number(r.value[0]) !== 1);
    if (newer >= 0) {
      throw new OrchestratorError(
        'FENCED',
        `coordinator ${this.term.coordinatorId} no longer leads: partition ${newer} was taken by leader epoch ${(replies[newer] as PromiseFulfilledResult<[number, string]>).value[1]}, newer than ${leaderEpoch}`,
      );
    }
    return replies.map((r) => (r.status === 'fulfilled' ? { status: 'fulfilled', value: r.value[1] } : r));
  }

  /**
   * Redis Cluster: a new epoch for each changed partition that takes one, each in its partition's slot
   * and refused there to an older term; entries come back with `bump` false and their epoch set, for
   * the table write. Rejects with FENCED (nothing more written) when any slot refused.
   */
  private async bumpPerSlot<E extends { partition: number; epoch: number; bump: boolean }>(entries: readonly E[]): Promise<E[]> {
    const { leaderEpoch } = this.term;
    const bumped = await Promise.all(
      entries.map(async (entry) =>
        entry.bump ? Number(await this.scripts.bumpPartitionEpoch(this.keys.partitionLeaderEpoch(entry.partition), this.keys.partitionEpoch(entry.partition), leaderEpoch, entry.epoch)) : entry.epoch,
      ),
    );
    const refused = entries.filter((_, i) => bumped[i]! < 0).map((e) => e.partition);
    if (refused.length > 0) {
      throw new OrchestratorError('FENCED', `coordinator ${this.term.coordinatorId} no longer leads: a newer leader epoch than ${leaderEpoch} holds partitions ${refused.join(', ')}; assignment not written`);
    }
    return entries.map((entry, i) => ({ ...entry, epoch: bumped[i]!, bump: false }));
  }

  private async write(changes: readonly PartitionChange[]): Promise<readonly PartitionState[]> {
    if (changes.length === 0) return [];
    const entries = changes.map((change) => ({
      partition: change.partition,
      owner: change.owner,
      phase: change.phase,
      next: change.next,
      epoch: this.states[change.partition]?.epoch ?? 0,
      bump: change.bump,
    }));
    const table = [this.keys.leader(), this.keys.leaderEpoch(), this.keys.assignment(), this.keys.assignmentVersion()];
    // Per slot, the table write takes no epoch key: every entry comes with its epoch set (bump false).
    const keys = this.perSlot ? table : [...table, ...changes.map((change) => this.keys.partitionEpoch(change.partition))];
    const written = this.perSlot ? await this.bumpPerSlot(entries) : entries;
    const result = await this.scripts.commitAssignment(keys.length, ...keys, this.term.coordinatorId, this.term.leaderEpoch, JSON.stringify(written));
    const version = result[0] ?? -1;
    if (version < 0) {
      throw new OrchestratorError('FENCED', `coordinator ${this.term.coordinatorId} no longer leads (leader epoch ${this.term.leaderEpoch}); assignment not written`);
    }
    this.versionNow = version;
    return changes.map((change, i) => {
      const state: PartitionState = {
        partition: change.partition,
        owner: change.owner,
        epoch: Number(result[i + 1]),
        phase: change.phase,
        ...(change.next === undefined ? {} : { next: change.next }),
      };
      this.states[change.partition] = state;
      return state;
    });
  }
}

function parseState(value: string): PartitionState | undefined {
  try {
    const parsed = PartitionState.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
