import { describe, expect, it } from 'vitest';
import type { PartitionState, WorkerHeartbeat } from '@at-orchestrator/contracts';
import { memoryLogger } from '@at-orchestrator/runtime';
import { FakeRedis } from '../../test/fake-redis.js';
import { CoordinatorKeys } from '../coordinator-keys.js';
import { reconcile, type Reconciliation } from '../handoff/reconcile.js';
import type { LiveWorker } from '../membership/membership.js';
import { protocolRefusal } from '../membership/protocol.js';
import { OperatorSettings } from '../term/operator-settings.js';
import { ControlError } from './control-api.js';
import type { StatusData } from './control-data.js';
import { TermControl } from './term-control.js';
import type { TermCommands, TermView } from './term-view.js';

const keys = new CoordinatorKeys('t');
const PARTITIONS = 4;

function worker(id: string, extra: Partial<WorkerHeartbeat> = {}): LiveWorker {
  return { heartbeat: { id, capacity: 1, load: 0, version: 'v1', draining: false, started_at: '2024-01-01T00:00:00.000Z', owned: [], ...extra }, leaseLeftMs: 500 };
}

/** A live worker speaking cluster protocol `protocol` (undefined: none, as before the check) under a leader of protocol `leader`. */
function refusedWorker(id: string, protocol: number | undefined, extra: Partial<WorkerHeartbeat> = {}, leader = 1): LiveWorker {
  const live = worker(id, { ...(protocol === undefined ? {} : { protocol }), ...extra });
  const refusal = protocolRefusal(live.heartbeat, leader);
  return refusal === null ? live : { ...live, refusal };
}

function owned(partition: number, owner: string | null, epoch = 1): PartitionState {
  return owner === null ? { partition, owner, epoch, phase: 'unowned' } : { partition, owner, epoch, phase: 'owned' };
}

/** A term as the control API sees it: plain fields the test sets, and the commands it records. */
class FakeTerm implements TermView, TermCommands {
  readonly coordinatorId = 'c1';
  readonly leaderEpoch = 3;
  leading = true;
  readonly partitionCount = PARTITIONS;
  table: PartitionState[] = [owned(0, 'w1'), owned(1, 'w1'), owned(2, 'w2'), owned(3, 'w2')];
  tableVersion = 9;
  live = new Map<string, LiveWorker>([
    ['w1', worker('w1')],
    ['w2', worker('w2')],
  ]);
  /** What Redis says is live now (readLive); the last tick's `live` by default. */
  liveNow: Map<string, LiveWorker> | undefined;
  natsConnected = true;
  handoffsInFlight = 0;
  readonly asked: string[] = [];
  rebalanced: Reconciliation | undefined;

  constructor(private readonly settings: OperatorSettings) {}

  ownerCounts(): Map<string, number> {
    const counts = new Map<string, number>([...this.live.keys()].map((id) => [id, 0]));
    for (const state of this.table) if (state.owner !== null) counts.set(state.owner, (counts.get(state.owner) ?? 0) + 1);
    return counts;
  }

  holds(workerId: string): number {
    return this.table.filter((state) => state.owner === workerId || state.next === workerId).length;
  }

  preview(): Reconciliation {
    return reconcile({
      partitions: PARTITIONS,
      table: this.table,
      live: new Map([...this.live].map(([id, live]) => [id, live.heartbeat])),
      drains: this.settings.drains,
      refused: new Set([...this.live].filter(([, live]) => live.refusal !== undefined).map(([id]) => id)),
      pins: this.settings.pins,
      inFlight: new Set(),
      mode: 'auto',
    });
  }

  async readLive(): Promise<ReadonlyMap<string, LiveWorker>> {
    this.asked.push('readLive');
    return this.liveNow ?? this.live;
  }

  async rebalance(): Promise<Reconciliation | undefined> {
    this.asked.push('rebalance');
    return this.rebalanced;
  }

  requestTick(): void {
    this.asked.push('tick');
  }
}

function setup(): { term: FakeTerm; control: TermControl; settings: OperatorSettings; redis: FakeRedis; lines: string[] } {
  const redis = new FakeRedis();
  const { log, lines } = memoryLogger('info');
  const settings = new OperatorSettings(redis.client, keys, PARTITIONS, log);
  const term = new FakeTerm(settings);
  const lag: StatusData['lag'] = { stream: 'S', durable: 'D', pending: 5, ack_pending: 1 };
  const control = new TermControl({ term, commands: term, settings, lag: { read: async () => lag }, keys, log, workerLeaseMs: 5_000, consoleUrl: () => 'http://leader.test:8080/console' });
  return { term, control, settings, redis, lines };
}

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ControlError)) throw new Error(`expected a ControlError, got ${String(err)}`);
  return { code: err.code, message: err.message };
}

describe('TermControl', () => {
  it('speaks for the term it was made for', () => {
    const { control } = setup();
    expect([control.coordinatorId, control.leaderEpoch]).toEqual(['c1', 3]);
  });

  describe('once the term stopped leading', () => {
    it.each([
      ['status', (c: TermControl) => c.status()],
      ['workers', (c: TermControl) => c.workers()],
      ['partitions', (c: TermControl) => c.partitions()],
      ['plan', (c: TermControl) => c.plan()],
      ['rebalance', (c: TermControl) => c.rebalance()],
      ['drain', (c: TermControl) => c.drain('w1')],
      ['move', (c: TermControl) => c.move(0, 'w2')],
      ['pause', (c: TermControl) => c.pause()],
      ['resume', (c: TermControl) => c.resume()],
    ])('%s answers NOT_LEADER and changes nothing', async (_name, ask) => {
      const { term, control, redis } = setup();
      term.leading = false;
      expect((await refusal(ask(control))).code).toBe('NOT_LEADER');
      expect(term.asked).toEqual([]);
      expect([redis.strings.size, redis.sets.size, redis.hashes.size]).toEqual([0, 0, 0]);
    });
  });

  describe('status', () => {
    it('counts phases and partitions per worker, sorted, a gone owner included', async () => {
      const { term, control } = setup();
      term.table = [owned(0, 'w1'), { partition: 1, owner: 'w1', epoch: 1, phase: 'revoking', next: 'w2' }, owned(2, 'w0'), owned(3, null)];
      term.handoffsInFlight = 1;
      const status = await control.status();
      expect(status).toMatchObject({ coordinator: 'c1', leader_epoch: 3, table_version: 9, partitions: 4, paused: false, frozen: null, handoffs_in_flight: 1 });
      expect(status.counts).toEqual({ owned: 2, revoking: 1, unowned: 1 });
      expect(status.workers.map((w) => [w.id, w.state, w.partitions])).toEqual([
        ['w0', 'gone', 1],
        ['w1', 'live', 2],
        ['w2', 'live', 0],
      ]);
      expect(status.lag).toEqual({ stream: 'S', durable: 'D', pending: 5, ack_pending: 1 });
    });

    it.each([
      { name: 'nothing frozen', paused: false, nats: true, frozen: null },
      { name: 'paused by an operator', paused: true, nats: true, frozen: 'paused by an operator' },
      { name: 'no NATS connection', paused: false, nats: false, frozen: 'leader has no NATS connection' },
      { name: 'paused wins over no NATS', paused: true, nats: false, frozen: 'paused by an operator' },
    ])('frozen: $name', async ({ paused, nats, frozen }) => {
      const { term, control, settings } = setup();
      if (paused) await settings.pause();
      term.natsConnected = nats;
      expect(await control.status()).toMatchObject({ paused, frozen });
    });
  });

  it('workers shows drains (asked or reported), pins and what each owns', async () => {
    const { term, control } = setup();
    term.live.set('w3', worker('w3', { draining: true, owned: [9] }));
    await control.move(2, 'w1');
    await control.drain('w2');
    const { workers } = await control.workers();
    expect(workers.map((w) => [w.id, w.state, w.drain_requested, w.partitions, w.pinned, w.reported_owned])).toEqual([
      ['w1', 'live', false, [0, 1], [2], []],
      ['w2', 'draining', true, [2, 3], [], []],
      ['w3', 'draining', false, [], [], [9]],
    ]);
  });

  describe('workers of another cluster protocol', () => {
    it.each([
      { name: 'a newer protocol', protocol: 2, leader: 1, shown: '2' },
      { name: 'an older protocol', protocol: 1, leader: 3, shown: '1' },
      { name: 'no protocol (older than the check) under a leader of protocol 2', protocol: undefined, leader: 2, shown: 'none (a build older than the protocol check: 1)' },
    ])('status and workers list a worker of $name as refused, naming both protocols', async ({ protocol, leader, shown }) => {
      const { term, control } = setup();
      term.live.set('w3', refusedWorker('w3', protocol, {}, leader));
      term.live.set('w1', worker('w1', { protocol: 1 }));
      const message = `worker w3 speaks cluster protocol ${shown}, the leader ${leader}: refused, it is assigned no partition`;
      const status = await control.status();
      expect(status.workers.map((w) => [w.id, w.state, w.protocol, w.refused === null ? null : w.refused.slice(0, message.length)])).toEqual([
        ['w1', 'live', 1, null],
        ['w2', 'live', null, null],
        ['w3', 'refused', protocol ?? null, message],
      ]);
      const { workers } = await control.workers();
      expect(workers.find((w) => w.id === 'w3')).toMatchObject({ state: 'refused', protocol: protocol ?? null, refused: expect.stringContaining(message) });
      expect(workers.find((w) => w.id === 'w1')).toMatchObject({ state: 'live', protocol: 1, refused: null });
    });

    it('a refused worker that also drains itself shows as refused (the reason it gets nothing)', async () => {
      const { term, control } = setup();
      term.live.set('w3', refusedWorker('w3', 2, { draining: true }));
      expect((await control.workers()).workers.find((w) => w.id === 'w3')?.state).toBe('refused');
    });

    it('move onto a refused worker is refused with WORKER_REFUSED naming both protocols', async () => {
      const { term, control, settings } = setup();
      term.live.set('w3', refusedWorker('w3', 2));
      const answer = await refusal(control.move(0, 'w3'));
      expect(answer.code).toBe('WORKER_REFUSED');
      expect(answer.message).toContain('cannot move partition 0 to w3: worker w3 speaks cluster protocol 2, the leader 1: refused');
      expect(settings.pins).toEqual([]);
    });

    it('drain refuses when the only other workers are refused (they could not take the partitions)', async () => {
      const { term, control } = setup();
      term.liveNow = new Map([
        ['w1', worker('w1')],
        ['w2', refusedWorker('w2', 2)],
      ]);
      expect((await refusal(control.drain('w1'))).code).toBe('NO_ELIGIBLE_WORKER');
    });

    it('plan moves a refused worker\'s partitions to the others', async () => {
      const { term, control } = setup();
      term.live.set('w2', refusedWorker('w2', 2));
      const plan = await control.plan();
      expect(plan.moves).toEqual([
        { partition: 2, from: 'w2', to: 'w1' },
        { partition: 3, from: 'w2', to: 'w1' },
      ]);
    });
  });

  it('partitions lists the table with each partition\'s pin', async () => {
    const { control } = setup();
    await control.move(3, 'w1');
    const data = await control.partitions();
    expect(data.table_version).toBe(9);
    expect(data.partitions.map((p) => [p.partition, p.owner, p.phase, p.pinned_to])).toEqual([
      [0, 'w1', 'owned', null],
      [1, 'w1', 'owned', null],
      [2, 'w2', 'owned', null],
      [3, 'w2', 'owned', 'w1'],
    ]);
  });

  it('plan shows what a tick would do and does none of it', async () => {
    const { term, control, settings } = setup();
    await settings.pin(3, 'w1');
    term.asked.length = 0;
    const plan = await control.plan();
    expect(plan.moves).toContainEqual({ partition: 3, from: 'w2', to: 'w1' });
    expect(plan.paused).toBe(false);
    expect(plan.text).toEqual(expect.any(String));
    expect(term.asked).toEqual([]);
  });

  describe('rebalance', () => {
    it('runs a tick and reports its moves by partition, leaving out epoch repairs', async () => {
      const { term, control } = setup();
      term.rebalanced = {
        plan: term.preview().plan,
        reassign: [
          { partition: 3, from: null, to: 'w1' },
          { partition: 0, from: 'w1', to: 'w1' },
        ],
        handoffs: [{ partition: 1, from: 'w1', to: 'w2' }],
        deferred: [],
      };
      expect(await control.rebalance()).toEqual({
        paused: false,
        moves: [
          { partition: 1, from: 'w1', to: 'w2' },
          { partition: 3, from: null, to: 'w1' },
        ],
        deferred: [],
      });
      expect(term.asked).toEqual(['rebalance']);
    });

    it('answers NOT_LEADER when the term ended before its tick ran', async () => {
      const { control } = setup();
      expect((await refusal(control.rebalance())).code).toBe('NOT_LEADER');
    });
  });

  describe('drain', () => {
    it('drains a live worker, asks for a tick and says how many partitions it still holds', async () => {
      const { term, control, settings, redis } = setup();
      expect(await control.drain('w1')).toEqual({ worker: 'w1', partitions: 2, already_draining: false, paused: false });
      expect([...settings.drains]).toEqual(['w1']);
      expect(redis.members(keys.draining())).toEqual(['w1']);
      expect(term.asked).toEqual(['readLive', 'tick']);
      expect((await control.drain('w1')).already_draining).toBe(true);
    });

    it.each([
      { name: 'a worker with no live heartbeat', worker: 'w9', live: ['w1', 'w2'], code: 'NO_SUCH_WORKER', message: `no such worker "w9": no live heartbeat at ${keys.worker('w9')}` },
      { name: 'the last worker that could take partitions', worker: 'w1', live: ['w1'], code: 'NO_ELIGIBLE_WORKER', message: 'cannot drain w1: no other live worker could take its partitions' },
    ])('refuses $name', async ({ worker: id, live, code, message }) => {
      const { term, control, redis } = setup();
      term.liveNow = new Map(live.map((w) => [w, worker(w)]));
      expect(await refusal(control.drain(id))).toEqual({ code, message });
      expect(redis.sets.size).toBe(0);
      expect(term.asked).toEqual(['readLive']);
    });

    it('refuses when every other worker drains itself', async () => {
      const { term, control } = setup();
      term.liveNow = new Map([
        ['w1', worker('w1')],
        ['w2', worker('w2', { draining: true })],
      ]);
      expect((await refusal(control.drain('w1'))).code).toBe('NO_ELIGIBLE_WORKER');
    });

    it('with Redis unreachable answers UNAVAILABLE and changes nothing', async () => {
      const { term, control, settings, redis } = setup();
      redis.down = true;
      expect(await refusal(control.drain('w1'))).toEqual({ code: 'UNAVAILABLE', message: 'Redis is unreachable, nothing changed: connect ECONNREFUSED 127.0.0.1:6379' });
      expect(settings.drains.size).toBe(0);
      expect(term.asked).toEqual(['readLive']);
    });
  });

  describe('move', () => {
    it('pins the partition, asks for a tick and names where it comes from', async () => {
      const { term, control, settings, redis } = setup();
      expect(await control.move(2, 'w1')).toEqual({ partition: 2, worker: 'w1', from: 'w2', epoch: 1 });
      expect(settings.pins).toEqual([{ partition: 2, worker: 'w1' }]);
      expect(redis.hash(keys.pins())).toEqual({ '2': 'w1' });
      expect(term.asked).toEqual(['readLive', 'tick']);
    });

    it.each([-1, 1.5, PARTITIONS])('refuses partition %s as NO_SUCH_PARTITION without reading membership', async (partition) => {
      const { term, control } = setup();
      expect(await refusal(control.move(partition, 'w1'))).toEqual({ code: 'NO_SUCH_PARTITION', message: `no such partition ${partition}: partitions are 0 to ${PARTITIONS - 1}` });
      expect(term.asked).toEqual([]);
    });

    it.each([
      { name: 'no live heartbeat', prepare: (t: FakeTerm) => t.live.delete('w2'), code: 'NO_SUCH_WORKER' },
      { name: 'draining itself', prepare: (t: FakeTerm) => t.live.set('w2', worker('w2', { draining: true })), code: 'WORKER_DRAINING' },
    ])('refuses a target with $name', async ({ prepare, code }) => {
      const { term, control, settings } = setup();
      prepare(term);
      expect((await refusal(control.move(0, 'w2'))).code).toBe(code);
      expect(settings.pins).toEqual([]);
    });

    it('refuses a target an operator is draining', async () => {
      const { control, settings } = setup();
      await control.drain('w2');
      expect(await refusal(control.move(0, 'w2'))).toEqual({ code: 'WORKER_DRAINING', message: 'cannot move partition 0 to w2: it is draining' });
      expect(settings.pins).toEqual([]);
    });
  });

  it('pause freezes without a tick; resume unfreezes and asks for one', async () => {
    const { term, control, settings, redis, lines } = setup();
    expect(await control.pause()).toEqual({ paused: true });
    expect([settings.paused, redis.strings.get(keys.paused()), term.asked]).toEqual([true, '1', []]);
    expect(await control.resume()).toEqual({ paused: false });
    expect([settings.paused, redis.strings.has(keys.paused()), term.asked]).toEqual([false, false, ['tick']]);
    expect(lines.filter((line) => line.includes('rebalancing paused') || line.includes('rebalancing resumed'))).toHaveLength(2);
  });

  it('pause with Redis unreachable answers UNAVAILABLE and stays unpaused', async () => {
    const { control, settings, redis } = setup();
    redis.down = true;
    expect((await refusal(control.pause())).code).toBe('UNAVAILABLE');
    expect(settings.paused).toBe(false);
  });
});
