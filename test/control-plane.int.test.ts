import type { Msg, MsgHdrs } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AssignmentTable, ClusterSubjects, WorkerCommand, signalSubject, type LeaderReply, type WorkerCommandReply } from '@at-orchestrator/contracts';
import { ControlSealer } from '@at-orchestrator/runtime';
import { CLEAN_MIX, SimulatedAgents, makeCorrelation, seededRandom } from '@at-orchestrator/sim';
import { ClusterHarness } from './helpers/cluster.js';
import { CliProcess, DecisionLog, Stack, TEST_CLUSTER_SECRET } from './helpers/stack.js';

// The control plane defends itself (docs/security.md, "The control plane"): with bus permissions off
// (a plain nats-server), a plain NATS client forges every kind of control message at a real cluster
// (coordinator and worker processes) and none of it is obeyed; a real drain from the CLI still works.

const P = 8;
const encoder = new TextEncoder();
let stack: Stack;
let cluster: ClusterHarness | undefined;
let run = 0;

beforeAll(async () => {
  stack = await Stack.start();
});
afterEach(async () => {
  await cluster?.stopAll();
  cluster = undefined;
});
afterAll(async () => {
  await stack?.stop();
});

function newCluster(env: Record<string, string> = {}): ClusterHarness {
  run += 1;
  cluster = new ClusterHarness(stack, { REDIS_KEY_PREFIX: `ctl${run}`, PARTITIONS: String(P), ...env });
  return cluster;
}

async function http<T>(proc: CliProcess, path: '/health' | '/metrics'): Promise<T> {
  const line = proc.output.find((l) => l.includes('"http_port"'));
  if (line === undefined) throw new Error('process did not log its http_port');
  const res = await fetch(`http://127.0.0.1:${(JSON.parse(line) as { http_port: number }).http_port}${path}`);
  return (path === '/health' ? await res.json() : await res.text()) as T;
}

/** orchestrator_control_refused_total of a process, as `kind/reason` → count. */
async function refusals(proc: CliProcess): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const line of (await http<string>(proc, '/metrics')).split('\n')) {
    if (!line.startsWith('orchestrator_control_refused_total{')) continue;
    const kind = /kind="([^"]+)"/.exec(line)?.[1];
    const reason = /reason="([^"]+)"/.exec(line)?.[1];
    counts[`${kind}/${reason}`] = Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return counts;
}

/** The next message on `subject` (with its headers), as a reader of the bus sees it. */
function nextMessage(subject: string, match: (msg: Msg) => boolean = () => true): Promise<Msg> {
  return new Promise((resolve) => {
    const sub = stack.nc.subscribe(subject, {
      callback: (_err, msg) => {
        if (!match(msg)) return;
        sub.unsubscribe();
        resolve(msg);
      },
    });
  });
}

/** A request as a forger sends it: unsigned unless `headers` are given; resolves to the reply, or undefined when none came. */
async function forge(subject: string, body: unknown, headers?: MsgHdrs, timeout = 1_000): Promise<WorkerCommandReply | LeaderReply | undefined> {
  const data = encoder.encode(JSON.stringify(body));
  try {
    return (await stack.nc.request(subject, data, { timeout, headers })).json();
  } catch {
    return undefined;
  }
}

describe('control plane with bus permissions off', () => {
  it('forged commands, tables and forwards (huge and live leader epoch) and a replayed command are refused: the worker keeps its partitions, keeps deciding, counts each refusal', async () => {
    const c = newCluster();
    // A reader of the bus captures a genuine assign to w1 and a genuine table broadcast.
    const capturedAssign = nextMessage(ClusterSubjects.worker('w1'), (m) => WorkerCommand.safeParse(m.json()).data?.type === 'assign');
    await c.startCoordinator('coord-a');
    const w1 = await c.startWorker('w1');
    await c.waitForBalance(['w1'], P);
    const assign = await capturedAssign;
    const tableMsg = await nextMessage(ClusterSubjects.assignment);
    const liveEpoch = AssignmentTable.parse(tableMsg.json()).leader_epoch;
    expect(liveEpoch).toBeGreaterThan(0);
    const before = await c.cli<{ partitions: unknown[] }>('partitions');

    const w1Subject = ClusterSubjects.worker('w1');
    const everything = Array.from({ length: P }, (_, p) => p);
    for (const epoch of [9e15, liveEpoch, liveEpoch + 1]) {
      for (const command of [
        { type: 'shutdown', leader_epoch: epoch },
        { type: 'revoke', leader_epoch: epoch, partitions: everything },
        { type: 'assign', leader_epoch: epoch, partitions: [{ partition: 0, epoch: epoch + 1 }] },
      ]) {
        expect(await forge(w1Subject, command)).toEqual({ ok: false, partitions: [], error: 'refused: the command carries no valid seal' });
      }
      // A table giving everything to someone else, unsigned and sealed with a key nobody configured.
      const table = { version: 10_000, leader: 'mallory', leader_epoch: epoch, partitions: everything.map((p) => ({ partition: p, owner: 'mallory', epoch: epoch + 1, phase: 'owned' })) };
      const body = encoder.encode(JSON.stringify(table));
      stack.nc.publish(ClusterSubjects.assignment, body);
      stack.nc.publish(ClusterSubjects.assignment, body, { headers: new ControlSealer(['a-key-nobody-configured'], 'mallory').seal('assignment', ClusterSubjects.assignment, body) });
    }
    // Replays of genuine messages, byte for byte: the captured assign to w1 and the captured table.
    const replayed = await stack.nc.request(w1Subject, assign.data, { headers: assign.headers, timeout: 1_000 });
    expect(replayed.json()).toMatchObject({ ok: false, error: expect.stringMatching(/refused/) });
    stack.nc.publish(ClusterSubjects.assignment, tableMsg.data, { headers: tableMsg.headers });
    // A forged forward of a valid signal: it must never be decided.
    const forged = makeCorrelation('forged-forward-1', seededRandom(1), CLEAN_MIX);
    const forward = { from: 'w2', signals: forged.signals.map((s) => ({ partition: 0, subject: signalSubject(s.agent), payload: s.body })) };
    expect(await forge(ClusterSubjects.forward('w1'), forward, undefined, 500)).toBeUndefined();
    const sealedByStranger = new ControlSealer(['a-key-nobody-configured'], 'w2').seal('forward', ClusterSubjects.forward('w1'), encoder.encode(JSON.stringify(forward)));
    expect(await forge(ClusterSubjects.forward('w1'), forward, sealedByStranger, 500)).toBeUndefined();

    await vi.waitFor(async () => {
      expect(await refusals(w1)).toEqual({
        'worker-command/unsigned': 9,
        'worker-command/replay': 1,
        'assignment/unsigned': 3,
        'assignment/unknown_key': 3,
        'assignment/replay': 1,
        'forward/unsigned': 1,
        'forward/unknown_key': 1,
      });
    });
    console.log(`[figure] forgeries refused by the worker: ${JSON.stringify(await refusals(w1))}`);

    // Nothing changed: the worker runs, owns every partition, the leader's table is the same.
    expect(w1.exitCode).toBeUndefined();
    expect(await http<{ partitions_owned: number }>(w1, '/health')).toMatchObject({ partitions_owned: P, state: 'running' });
    expect(await c.cli('partitions')).toEqual(before);
    // Its idea of the leader epoch did not move to 9e15: the real leader's revoke (at the live epoch)
    // is still obeyed when a second worker joins.
    await c.startWorker('w2');
    await c.waitForBalance(['w1', 'w2'], P);
    expect(await http<{ partitions_owned: number }>(w1, '/health')).toMatchObject({ partitions_owned: P / 2 });
    // And it keeps deciding: correlations published after the forgeries are decided once each.
    const decisions = new DecisionLog(stack.js, 'after-forgery-');
    await decisions.start();
    await new SimulatedAgents(stack.nc).run({ rate: 500, count: 300, seed: 7, prefix: 'after-forgery', mix: { ...CLEAN_MIX, jitterMs: 5 } });
    await decisions.waitFor(300);
    expect(decisions.byCorr.size).toBe(300);
    expect(decisions.duplicates()).toEqual([]);
    decisions.stop();
    const forgedDecisions = new DecisionLog(stack.js, 'forged-forward-');
    await forgedDecisions.start();
    await expect(forgedDecisions.waitFor(1, 1_000)).rejects.toThrow(/expected 1 decisions, have 0/);
    forgedDecisions.stop();
  });

  it('a forged operator drain (unsigned, or signed with the wrong token) is refused and changes nothing; a real drain from the CLI with OPERATOR_TOKEN works', async () => {
    const c = newCluster();
    const coordinator = await c.startCoordinator('coord-a');
    await Promise.all(['w1', 'w2'].map((w) => c.startWorker(w)));
    await c.waitForBalance(['w1', 'w2'], P);
    const before = await c.cli<{ partitions: unknown[] }>('partitions');

    const unsigned = await forge(ClusterSubjects.leader, { cmd: 'drain', worker: 'w2' });
    expect(unsigned).toEqual({ ok: false, error: { code: 'UNAUTHORIZED', message: expect.stringMatching(/^drain needs the operator credential: the request is not signed/) } });
    const drain = { cmd: 'drain', worker: 'w2' };
    const wrongToken = new ControlSealer(['not-the-operator-token'], 'mallory').seal('operator', ClusterSubjects.leader, encoder.encode(JSON.stringify(drain)));
    expect(await forge(ClusterSubjects.leader, drain, wrongToken)).toMatchObject({ ok: false, error: { code: 'UNAUTHORIZED' } });
    for (const cmd of ['pause', 'rebalance']) expect(await forge(ClusterSubjects.leader, { cmd })).toMatchObject({ ok: false, error: { code: 'UNAUTHORIZED' } });
    // The CLI without the operator credential: refused (exit 3), the code printed.
    const cli = await CliProcess.run(c.env({ OPERATOR_TOKEN: '' }), ['drain', 'w2']);
    expect(cli.code).toBe(3);
    expect(cli.output.join('\n')).toMatch(/UNAUTHORIZED/);
    // Read-only commands still work without it.
    expect((await CliProcess.run(c.env({ OPERATOR_TOKEN: '' }), ['status', '--json'])).code).toBe(0);

    expect(await refusals(coordinator)).toEqual({ 'operator/unsigned': 4, 'operator/unknown_key': 1 });
    const workers = await c.cli<{ workers: Array<{ id: string; drain_requested: boolean; state: string }> }>('workers');
    expect(workers.workers.map((w) => [w.id, w.state, w.drain_requested])).toEqual([
      ['w1', 'live', false],
      ['w2', 'live', false],
    ]);
    expect(await c.cli<{ paused: boolean }>('status')).toMatchObject({ paused: false });
    expect(await c.cli('partitions')).toEqual(before);
    expect(c.workers.get('w2')!.exitCode).toBeUndefined();

    // The operator, with OPERATOR_TOKEN (the harness's environment has it): drained, told to stop, exits 0.
    await c.cli('drain', 'w2');
    expect(await c.workers.get('w2')!.exited()).toBe(0);
    await c.waitForBalance(['w1'], P);
  });

  it('rollover: workers with CLUSTER_SECRET=new and CLUSTER_SECRET_PREVIOUS=old obey a leader sealing with old, then one sealing with new; a worker with new alone refuses old', async () => {
    const OLD = TEST_CLUSTER_SECRET;
    const NEW = 'the-new-cluster-secret-2027';
    const c = newCluster();
    await c.startCoordinator('coord-old');
    const rolling = { CLUSTER_SECRET: NEW, CLUSTER_SECRET_PREVIOUS: OLD };
    const wa = await CliProcess.started(c.env({ WORKER_ID: 'wa', ...rolling }));
    c.workers.set('wa', wa);
    await c.waitForBalance(['wa'], P);
    await vi.waitFor(async () => expect(await http<{ partitions_owned: number }>(wa, '/health')).toMatchObject({ partitions_owned: P }));

    // Not yet rolled: a worker that knows only the new secret refuses the old leader's commands.
    const onlyNew = await CliProcess.started(c.env({ WORKER_ID: 'wn', CLUSTER_SECRET: NEW }));
    c.workers.set('wn', onlyNew);
    await vi.waitFor(async () => expect((await refusals(onlyNew))['worker-command/unknown_key']).toBeGreaterThan(0), { timeout: 20_000 });
    expect(await http<{ partitions_owned: number }>(onlyNew, '/health')).toMatchObject({ partitions_owned: 0 });
    onlyNew.kill('SIGTERM');
    expect(await onlyNew.exited()).toBe(0);
    c.workers.delete('wn');
    await c.waitForBalance(['wa'], P);

    // The coordinators roll to the new secret: the rolling workers obey it too.
    const old = c.coordinators.get('coord-old')!;
    old.kill('SIGTERM');
    expect(await old.exited()).toBe(0);
    c.coordinators.delete('coord-old');
    const fresh = await CliProcess.started(c.env({ COORDINATOR_ID: 'coord-new', ...rolling }), 30_000, ['coordinator'], /"msg":"coordinator started"/);
    c.coordinators.set('coord-new', fresh);
    const wb = await CliProcess.started(c.env({ WORKER_ID: 'wb', ...rolling }));
    c.workers.set('wb', wb);
    await c.waitForBalance(['wa', 'wb'], P);
    await vi.waitFor(async () => {
      const owned = await Promise.all([wa, wb].map(async (w) => (await http<{ partitions_owned: number }>(w, '/health')).partitions_owned));
      expect(owned).toEqual([P / 2, P / 2]);
    });
    expect(await refusals(wa)).toEqual({});
    expect(await refusals(wb)).toEqual({});
  });

  it('a coordinated worker and a coordinator without CLUSTER_SECRET exit 2 with one line naming it', async () => {
    const c = newCluster();
    for (const args of [['worker'], ['coordinator']]) {
      const result = await CliProcess.run(c.env({ CLUSTER_SECRET: '' }), args);
      expect(result.code).toBe(2);
      expect(result.output).toEqual([expect.stringMatching(/^at-orchestrator: invalid configuration: CLUSTER_SECRET is not set: /)]);
    }
  });
});
