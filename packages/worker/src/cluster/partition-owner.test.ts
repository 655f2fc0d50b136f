import { describe, expect, it, vi } from 'vitest';
import type { AssignmentTable } from '@at-orchestrator/contracts';
import { memoryLogger } from '@at-orchestrator/runtime';
import { AssignmentView } from './assignment-view.js';
import { PartitionOwner, type PartitionWork } from './partition-owner.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

interface Setup {
  owner: PartitionOwner;
  work: { [K in keyof PartitionWork]: ReturnType<typeof vi.fn> };
  store: { bumpEpochs: ReturnType<typeof vi.fn>; restoreEpochs: ReturnType<typeof vi.fn> };
  gauge: { set: ReturnType<typeof vi.fn> };
  view: AssignmentView;
  flags: { redis: boolean; running: boolean };
}

function setup(mode: 'coordinated' | 'self' = 'coordinated', partitions = 4): Setup {
  const flags = { redis: true, running: true };
  const work = {
    resume: vi.fn(async () => {}),
    finish: vi.fn(async () => {}),
    flush: vi.fn(async () => {}),
    redisAvailable: vi.fn(() => flags.redis),
    running: vi.fn(() => flags.running),
  };
  const store = {
    bumpEpochs: vi.fn(async (ps: number[]) => new Map(ps.map((p) => [p, 100 + p]))),
    restoreEpochs: vi.fn(async () => 0),
  };
  const gauge = { set: vi.fn() };
  const view = new AssignmentView();
  const owner = new PartitionOwner({
    workerId: 'w1',
    mode,
    partitions,
    view,
    store,
    work,
    gauge: gauge as never,
    log: memoryLogger('silent').log,
  });
  return { owner, work, store, gauge, view, flags };
}

function table(version: number, rows: Array<[number, string | null, number]>): AssignmentTable {
  return { version, leader: 'c1', leader_epoch: 1, partitions: rows.map(([partition, owner, epoch]) => ({ partition, owner, epoch, phase: 'owned' as const })) };
}

describe('PartitionOwner', () => {
  it('assign takes partitions at their epochs and resumes only the fresh ones from Redis', async () => {
    const { owner, work, gauge } = setup();
    await owner.assign([{ partition: 1, epoch: 7 }, { partition: 2, epoch: 7 }]);
    expect([owner.ownedEpoch(1), owner.ownedEpoch(2), owner.ownedEpoch(3)]).toEqual([7, 7, undefined]);
    expect(work.resume).toHaveBeenLastCalledWith([1, 2]);
    await owner.assign([{ partition: 1, epoch: 7 }, { partition: 2, epoch: 8 }]);
    expect(work.resume).toHaveBeenLastCalledWith([2]);
    expect(gauge.set).toHaveBeenLastCalledWith(2);
  });

  it('assign refuses when Redis is unavailable (it cannot resume)', async () => {
    const { owner, flags } = setup();
    flags.redis = false;
    await expect(owner.assign([{ partition: 0, epoch: 3 }])).rejects.toThrow(/redis unavailable/);
  });

  it('an assign refused while Redis is down takes nothing: the partition is taken, and resumed, once Redis is back', async () => {
    const { owner, flags, work } = setup();
    flags.redis = false;
    await expect(owner.assign([{ partition: 0, epoch: 3 }])).rejects.toThrow(/redis unavailable/);
    expect([owner.ownedEpoch(0), owner.decisionEpoch(0), owner.ownedCount]).toEqual([undefined, -1, 0]);
    expect(work.resume).not.toHaveBeenCalled();
    flags.redis = true;
    await owner.assign([{ partition: 0, epoch: 3 }]);
    expect(work.resume).toHaveBeenLastCalledWith([0]);
    expect(owner.ownedEpoch(0)).toBe(3);
  });

  it('revoke finishes in-flight work, flushes under the epochs held, then gives the partitions up', async () => {
    const { owner, work } = setup();
    await owner.assign([{ partition: 0, epoch: 4 }, { partition: 1, epoch: 5 }]);
    const finishing = deferred();
    work.finish.mockImplementationOnce(() => finishing.promise);
    const revoked = owner.revoke([0, 1, 3]);
    // Stopped taking signals at once; decisions still claim under the epoch held.
    expect([owner.ownedEpoch(0), owner.decisionEpoch(0), owner.state(0)?.phase]).toEqual([undefined, 4, 'releasing']);
    expect(work.flush).not.toHaveBeenCalled();
    finishing.resolve();
    await expect(revoked).resolves.toEqual([0, 1, 3]);
    expect(work.flush).toHaveBeenCalledWith(new Set([0, 1]), new Map([[0, 4], [1, 5]]));
    expect([owner.state(0), owner.state(1), owner.decisionEpoch(0)]).toEqual([undefined, undefined, -1]);
  });

  it('a revoke sent again answers only when the first one is done', async () => {
    const { owner, work } = setup();
    await owner.assign([{ partition: 0, epoch: 4 }]);
    const finishing = deferred();
    work.finish.mockImplementationOnce(() => finishing.promise);
    const first = owner.revoke([0]);
    let secondDone = false;
    const second = owner.revoke([0]).then(() => (secondDone = true));
    await Promise.resolve();
    await Promise.resolve();
    expect(secondDone).toBe(false);
    finishing.resolve();
    await Promise.all([first, second]);
    expect(secondDone).toBe(true);
    expect(work.finish).toHaveBeenCalledTimes(1);
  });

  it('a partition given back while its release waits is not flushed and stays owned at the newer epoch', async () => {
    const { owner, work } = setup();
    await owner.assign([{ partition: 0, epoch: 4 }, { partition: 1, epoch: 4 }]);
    const finishing = deferred();
    work.finish.mockImplementationOnce(() => finishing.promise);
    const revoked = owner.revoke([0, 1]);
    await owner.assign([{ partition: 0, epoch: 9 }]);
    expect(owner.state(0)).toEqual({ phase: 'reowned', epoch: 9, releasingEpoch: 4 });
    finishing.resolve();
    await revoked;
    expect(work.flush).toHaveBeenCalledWith(new Set([1]), new Map([[0, 4], [1, 4]]));
    expect(owner.state(0)).toEqual({ phase: 'owned', epoch: 9 });
  });

  it('fenced for an old epoch after the partition came back at a newer one: the partition stays', async () => {
    const { owner, work } = setup();
    await owner.assign([{ partition: 2, epoch: 4 }]);
    await owner.assign([{ partition: 2, epoch: 9 }]);
    owner.fenced(2, 4, 'fenced store');
    expect(owner.ownedEpoch(2)).toBe(9);
    expect(work.flush).not.toHaveBeenCalled();
    owner.fenced(2, 9, 'fenced store');
    expect(owner.ownedEpoch(2)).toBeUndefined();
    expect(work.flush).toHaveBeenCalledWith(new Set([2]), new Map());
  });

  it('a self-owned worker never gives a partition up on a fenced answer', () => {
    const { owner, work } = setup('self');
    owner.fenced(1, 0, 'fenced store');
    expect(owner.ownedEpoch(1)).toBe(0);
    expect(work.flush).not.toHaveBeenCalled();
  });

  it('a claim refused under an older epoch of ours is loaded again from Redis; one under the current epoch is not', async () => {
    const { owner, work } = setup();
    await owner.assign([{ partition: 3, epoch: 9 }]);
    work.resume.mockClear();
    owner.claimRefused('c-current', 3, 9);
    owner.claimRefused('c-old', 3, 4);
    owner.claimRefused('c-other', 1, 4);
    await vi.waitFor(() => expect(work.resume).toHaveBeenCalledTimes(1));
    expect(work.resume).toHaveBeenCalledWith([3], new Set(['c-old']));
  });

  it('refused correlations that could not be loaded are kept for the next try', async () => {
    const { owner, work } = setup();
    await owner.assign([{ partition: 3, epoch: 9 }]);
    work.resume.mockReset();
    work.resume.mockRejectedValueOnce(new Error('redis down'));
    owner.claimRefused('c1', 3, 4);
    await vi.waitFor(() => expect(work.resume).toHaveBeenCalledTimes(1));
    work.resume.mockResolvedValue(undefined);
    await owner.resumeRefused();
    expect(work.resume).toHaveBeenLastCalledWith([3], new Set(['c1']));
    work.resume.mockClear();
    await owner.resumeRefused();
    expect(work.resume).not.toHaveBeenCalled();
  });

  it('a table gives us partitions whose assign never arrived, but never takes one away', async () => {
    const { owner, view } = setup();
    await owner.assign([{ partition: 0, epoch: 4 }]);
    owner.onTable(table(2, [[0, 'w2', 6], [1, 'w1', 6], [2, 'w2', 6]]));
    await vi.waitFor(() => expect(owner.ownedEpoch(1)).toBe(6));
    expect(owner.ownedEpoch(0)).toBe(4);
    expect(view.ownerOf(2)).toBe('w2');
    // An older table is not applied.
    owner.onTable(table(1, [[3, 'w1', 7]]));
    expect(owner.ownedEpoch(3)).toBeUndefined();
  });

  it('a table is only followed for routing while the worker is not running', async () => {
    const { owner, view, flags } = setup();
    flags.running = false;
    owner.onTable(table(2, [[1, 'w1', 6]]));
    await Promise.resolve();
    expect(view.ownerOf(1)).toBe('w1');
    expect(owner.ownedEpoch(1)).toBeUndefined();
  });

  it('rejoin takes back what the stored table says is ours', async () => {
    const { owner } = setup();
    await owner.rejoin(table(3, [[0, 'w1', 5], [1, 'w2', 5]]));
    expect(owner.owned()).toEqual([0]);
    await owner.rejoin(undefined);
    expect(owner.owned()).toEqual([0]);
  });

  it('self-owned: every partition at epoch 0 and nothing written until Redis gives epochs; later ones are restored', async () => {
    const { owner, store, work } = setup('self', 3);
    expect([owner.owned(), owner.canWrite, owner.ownedEpoch(2)]).toEqual([[0, 1, 2], false, 0]);
    await owner.takeEpochs();
    expect([owner.canWrite, owner.ownedEpoch(0), owner.ownedEpoch(2)]).toEqual([true, 100, 102]);
    expect(work.resume).toHaveBeenCalledWith([0, 1, 2]);
    await owner.takeEpochs();
    expect(store.bumpEpochs).toHaveBeenCalledTimes(1);
    expect(store.restoreEpochs).toHaveBeenCalledWith(new Map([[0, 100], [1, 101], [2, 102]]));
  });

  it('coordinated: epochs belong to the leader', async () => {
    const { owner, store } = setup();
    await owner.takeEpochs();
    expect(owner.canWrite).toBe(true);
    expect(store.bumpEpochs).not.toHaveBeenCalled();
    expect(store.restoreEpochs).not.toHaveBeenCalled();
  });
});
