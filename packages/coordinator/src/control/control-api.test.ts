import { describe, expect, it } from 'vitest';
import { memoryLogger } from '@at-orchestrator/runtime';
import { ControlError, answerLeaderRequest, type LeaderControl } from './control-api.js';

function control(overrides: Partial<LeaderControl> = {}): LeaderControl & { calls: string[] } {
  const calls: string[] = [];
  // The data's shape is the leader's business; here only the dispatch is under test.
  const ok = (name: string) => async (...args: unknown[]): Promise<never> => {
    calls.push([name, ...args].join(' '));
    return { done: name } as never;
  };
  return {
    calls,
    coordinatorId: 'c1',
    leaderEpoch: 7,
    status: ok('status'),
    workers: ok('workers'),
    partitions: ok('partitions'),
    plan: ok('plan'),
    rebalance: ok('rebalance'),
    drain: ok('drain'),
    move: ok('move'),
    pause: ok('pause'),
    resume: ok('resume'),
    ...overrides,
  };
}
const { log } = memoryLogger();

describe('answerLeaderRequest', () => {
  it('dispatches each command and wraps its data with the leader and its epoch', async () => {
    const c = control();
    expect(await answerLeaderRequest(c, { cmd: 'status' }, log)).toEqual({ ok: true, leader: 'c1', leader_epoch: 7, data: { done: 'status' } });
    await answerLeaderRequest(c, { cmd: 'drain', worker: 'w2' }, log);
    await answerLeaderRequest(c, { cmd: 'move', partition: 3, worker: 'w1' }, log);
    expect(c.calls).toEqual(['status', 'drain w2', 'move 3 w1']);
  });

  it('refuses malformed requests with BAD_REQUEST, naming what is wrong', async () => {
    const c = control();
    expect(await answerLeaderRequest(c, undefined, log)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(await answerLeaderRequest(c, { cmd: 'explode' }, log)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', message: expect.stringContaining('cmd') } });
    expect(await answerLeaderRequest(c, { cmd: 'drain' }, log)).toEqual({ ok: false, error: { code: 'BAD_REQUEST', message: 'drain needs a worker id' } });
    expect(await answerLeaderRequest(c, { cmd: 'move', worker: 'w1' }, log)).toEqual({ ok: false, error: { code: 'BAD_REQUEST', message: 'move needs a partition number' } });
    expect(await answerLeaderRequest(c, { cmd: 'move', partition: 1.5, worker: 'w1' }, log)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(c.calls).toEqual([]);
  });

  it('passes a ControlError\'s code through and hides nothing else as INTERNAL', async () => {
    const c = control({
      drain: async (worker) => {
        throw new ControlError('NO_SUCH_WORKER', `no such worker ${worker}`);
      },
      pause: async () => {
        throw new Error('boom');
      },
    });
    expect(await answerLeaderRequest(c, { cmd: 'drain', worker: 'x' }, log)).toEqual({ ok: false, error: { code: 'NO_SUCH_WORKER', message: 'no such worker x' } });
    expect(await answerLeaderRequest(c, { cmd: 'pause' }, log)).toEqual({ ok: false, error: { code: 'INTERNAL', message: 'pause failed: boom' } });
  });
});
