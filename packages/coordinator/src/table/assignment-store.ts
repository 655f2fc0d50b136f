import type { Redis } from 'ioredis';
import { OrchestratorError, PartitionState, type AssignmentTable } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
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
 * The assignment table: partition → PartitionState in the `<prefix>:assignment` hash, with its version
 * in `<prefix>:assignment:version`. The leader keeps it in memory and writes every change through
 * one fenced Lua script (commitAssignment), so memory and Redis move together and a deposed leader
 * writes nothing. Commits are serialised.
 */
export class AssignmentStore {
  private readonly scripts: CoordinatorScripts;
  private states: PartitionState[] = [];
  private versionNow = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly client: Redis,
    private readonly keys: CoordinatorKeys,
    readonly partitions: number,
    private readonly term: LeaderTermId,
    private readonly log: Logger,
  ) {
    this.scripts = defineScripts(client);
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
    const pipeline = this.client.pipeline();
    pipeline.hgetall(this.keys.assignment());
    pipeline.get(this.keys.assignmentVersion());
    pipeline.mget(Array.from({ length: this.partitions }, (_, p) => this.keys.partitionEpoch(p)));
    const results = await pipeline.exec();
    const [hash, version, epochs] = (results ?? []).map(([err, value]) => {
      if (err) throw err;
      return value;
    }) as [Record<string, string>, string | null, (string | null)[]];

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
    const run = this.queue.then(() => this.write(changes));
    this.queue = run.catch(() => undefined);
    return run;
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
    const keys = [
      this.keys.leader(),
      this.keys.leaderEpoch(),
      this.keys.assignment(),
      this.keys.assignmentVersion(),
      ...changes.map((change) => this.keys.partitionEpoch(change.partition)),
    ];
    const result = await this.scripts.commitAssignment(keys.length, ...keys, this.term.coordinatorId, this.term.leaderEpoch, JSON.stringify(entries));
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
