import { describe, expect, it } from 'vitest';
import { memoryLogger } from '@at-orchestrator/runtime';
import { ControlError, READ_ONLY_COMMANDS, answerLeaderRequest, type LeaderControl } from './control-api.js';

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
const OPERATOR = { verified: true } as const;

describe('answerLeaderRequest', () => {
  it('dispatches each command and wraps its data with the leader and its epoch', async () => {
    const c = control();
    expect(await answerLeaderRequest(c, { cmd: 'status' }, log, OPERATOR)).toEqual({ ok: true, leader: 'c1', leader_epoch: 7, data: { done: 'status' } });
    await answerLeaderRequest(c, { cmd: 'drain', worker: 'w2' }, log, OPERATOR);
    await answerLeaderRequest(c, { cmd: 'move', partition: 3, worker: 'w1' }, log, OPERATOR);
    expect(c.calls).toEqual(['status', 'drain w2', 'move 3 w1']);
  });

  it('refuses malformed requests with BAD_REQUEST, naming what is wrong', async () => {
    const c = control();
    expect(await answerLeaderRequest(c, undefined, log, OPERATOR)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(await answerLeaderRequest(c, { cmd: 'explode' }, log, OPERATOR)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', message: expect.stringContaining('cmd') } });
    expect(await answerLeaderRequest(c, { cmd: 'drain' }, log, OPERATOR)).toEqual({ ok: false, error: { code: 'BAD_REQUEST', message: 'drain needs a worker id' } });
    expect(await answerLeaderRequest(c, { cmd: 'move', worker: 'w1' }, log, OPERATOR)).toEqual({ ok: false, error: { code: 'BAD_REQUEST', message: 'move needs a partition number' } });
    expect(await answerLeaderRequest(c, { cmd: 'move', partition: 1.5, worker: 'w1' }, log, OPERATOR)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
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
    expect(await answerLeaderRequest(c, { cmd: 'drain', worker: 'x' }, log, OPERATOR)).toEqual({ ok: false, error: { code: 'NO_SUCH_WORKER', message: 'no such worker x' } });
    expect(await answerLeaderRequest(c, { cmd: 'pause' }, log, OPERATOR)).toEqual({ ok: false, error: { code: 'INTERNAL', message: 'pause failed: boom' } });
  });

  it('refuses every action without the operator credential (UNAUTHORIZED, saying why) and still answers read-only commands', async () => {
    const c = control();
    const anonymous = { verified: false, why: 'the request is not signed' } as const;
    for (const cmd of ['status', 'workers', 'partitions', 'plan'] as const) {
      expect(await answerLeaderRequest(c, { cmd }, log, anonymous)).toMatchObject({ ok: true, data: { done: cmd } });
    }
    const actions = [{ cmd: 'drain', worker: 'w1' }, { cmd: 'move', partition: 1, worker: 'w1' }, { cmd: 'rebalance' }, { cmd: 'pause' }, { cmd: 'resume' }];
    for (const request of actions) {
      expect(await answerLeaderRequest(c, request, log, anonymous)).toEqual({
        ok: false,
        error: { code: 'UNAUTHORIZED', message: `${request.cmd} needs the operator credential: the request is not signed` },
      });
    }
    expect(c.calls).toEqual(['status', 'workers', 'partitions', 'plan']);
    expect([...READ_ONLY_COMMANDS].sort()).toEqual(['partitions', 'plan', 'status', 'workers']);
  });
});
