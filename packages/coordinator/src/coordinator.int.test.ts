import { describe, expect, it, vi } from 'vitest';
import type { PartitionState } from '@at-orchestrator/contracts';
import type { Coordinator } from './coordinator.js';
import type { FakeWorker } from '../test/fake-worker.js';
import { memoryLogger } from '@at-orchestrator/runtime';
import { useClusterHarness, TIMING, ownerCounts } from '../test/harness.js';

const h = useClusterHarness();

const P = 12;
const waitFor = <T>(fn: () => T | Promise<T>, timeout = 10_000): Promise<T> => vi.waitFor(fn, { timeout, interval: 25 });

type Sample = { value: number; labels: object; metricName?: string };

async function samples(c: Coordinator, name: string): Promise<Sample[]> {
  const m = c.registry.getSingleMetric(name);
  return m === undefined ? [] : ((await m.get()).values as Sample[]);
}

/** The sum of a counter's or gauge's samples matching the labels. */
async function metric(c: Coordinator, name: string, labels: Record<string, string> = {}): Promise<number> {
  return (await samples(c, name))
    .filter((v) => Object.entries(labels).every(([k, value]) => (v.labels as Record<string, unknown>)[k] === value))
    .reduce((sum, v) => sum + v.value, 0);
}

async function histogramCount(c: Coordinator, name: string): Promise<number> {
  return (await samples(c, name)).find((v) => v.metricName === `${name}_count`)?.value ?? 0;
}

/** Waits until every partition is owned by a live worker, each holding `counts[id]` partitions. */
async function settled(workers: FakeWorker[], perWorker: Record<string, number>): Promise<PartitionState[]> {
  return waitFor(async () => {
    const table = await h.table();
    expect(table).toHaveLength(P);
    expect(table.every((s) => s.phase === 'owned')).toBe(true);
    expect(Object.fromEntries(ownerCounts(table))).toEqual(perWorker);
    for (const w of workers) expect(w.owned.size).toBe(perWorker[w.id] ?? 0);
    return table;
  });
}

function leaderOf(coordinators: Coordinator[]): Coordinator {
  const leading = coordinators.filter((c) => c.state === 'leading');
  expect(leading).toHaveLength(1);
  return leading[0]!;
}

describe('Coordinator (real nats-server and redis-server, fake workers)', () => {
  it('elects one leader; when it dies a standby leads within the lease, the assignment unchanged', async () => {
    const workers = [await h.worker('w1'), await h.worker('w2'), await h.worker('w3')];
    const c1 = await h.coordinator('c1');
    const c2 = await h.coordinator('c2');
    const before = await settled(workers, { w1: 4, w2: 4, w3: 4 });
    const leader = leaderOf([c1, c2]);
    const standby = leader === c1 ? c2 : c1;
    expect(standby.state).toBe('standby');
    expect(standby.leader).toBe(leader.id);
    const epoch = leader.leaderEpoch!;
    expect(await metric(leader, 'orchestrator_coordinator_is_leader')).toBe(1);
    expect(await metric(standby, 'orchestrator_coordinator_is_leader')).toBe(0);
    const commandsBefore = workers.map((w) => w.commands.length);

    const died = Date.now();
    await leader.close({ releaseLease: false }); // dies: the lease is left to expire
    await waitFor(() => expect(standby.state).toBe('leading'), 5_000);
    const tookMs = Date.now() - died;
    // Lease expiry plus at most one standby retry interval (LEADER_LEASE_MS / 3), plus scheduling slack.
    expect(tookMs).toBeLessThanOrEqual(TIMING.LEADER_LEASE_MS + TIMING.LEADER_LEASE_MS / 3 + 400);
    expect(standby.leaderEpoch).toBeGreaterThan(epoch);
    expect(await h.redis.get(h.keys.leaderEpoch())).toBe(String(standby.leaderEpoch));

    // The new leader runs past its grace period (one worker lease) and changes nothing.
    const ticks = standby.stats().ticks;
    await waitFor(() => expect(standby.stats().ticks).toBeGreaterThan(ticks + TIMING.WORKER_LEASE_MS / TIMING.HEARTBEAT_INTERVAL_MS + 3));
    expect(await h.table()).toEqual(before);
    expect(workers.map((w) => w.commands.length)).toEqual(commandsBefore);
    const reply = await h.ask({ cmd: 'status' });
    expect(reply).toMatchObject({ ok: true, leader: standby.id, leader_epoch: standby.leaderEpoch });
  });

  it('a leader that is closed releases its lease and a standby takes over at once', async () => {
    await h.worker('w1');
    const c1 = await h.coordinator('c1');
    const c2 = await h.coordinator('c2');
    const leader = leaderOf([c1, c2]);
    const standby = leader === c1 ? c2 : c1;
    await leader.close();
    expect(await h.redis.get(h.keys.leader())).toBeNull();
    const closed = Date.now();
    await waitFor(() => expect(standby.state).toBe('leading'));
    expect(Date.now() - closed).toBeLessThan(TIMING.LEADER_LEASE_MS);
  });

  it('join: 3 → 4 workers moves only the surplus, each by revoke then assign at epoch + 1', async () => {
    const workers = [await h.worker('w1'), await h.worker('w2'), await h.worker('w3')];
    const c = await h.coordinator('c1');
    const before = await settled(workers, { w1: 4, w2: 4, w3: 4 });
    for (const s of before) expect(await h.partitionEpoch(s.partition)).toBe(s.epoch);

    const w4 = await h.worker('w4');
    const after = await settled([...workers, w4], { w1: 3, w2: 3, w3: 3, w4: 3 });
    const moved = after.filter((s, p) => s.owner !== before[p]!.owner);
    expect(moved).toHaveLength(Math.ceil(P / 4));
    expect(moved.every((s) => s.owner === 'w4')).toBe(true);

    const assigns = w4.commands.filter((c) => c.command.type === 'assign');
    for (const s of moved) {
      const old = before[s.partition]!;
      expect(s.epoch).toBe(old.epoch + 1);
      expect(await h.partitionEpoch(s.partition)).toBe(s.epoch);
      const oldOwner = workers.find((w) => w.id === old.owner)!;
      const revoke = oldOwner.commands.find((c) => c.command.type === 'revoke' && c.command.partitions.includes(s.partition));
      const assign = assigns.find((c) => c.command.type === 'assign' && c.command.partitions.some((x) => x.partition === s.partition && x.epoch === s.epoch));
      expect(revoke, `revoke of ${s.partition} to ${old.owner}`).toBeDefined();
      expect(assign, `assign of ${s.partition} to w4`).toBeDefined();
      expect(revoke!.at).toBeLessThanOrEqual(assign!.at);
      expect(oldOwner.owned.has(s.partition)).toBe(false);
    }
    // Partitions that stayed kept their epoch.
    for (const s of after.filter((x, p) => x.owner === before[p]!.owner)) expect(s.epoch).toBe(before[s.partition]!.epoch);
    // Revokes are batched: one request per old owner.
    for (const w of workers) expect(w.received('revoke').length).toBeLessThanOrEqual(1);
    expect(await metric(c, 'orchestrator_handoffs_total', { outcome: 'graceful' })).toBe(3);
    expect(await metric(c, 'orchestrator_handoffs_total', { outcome: 'forced' })).toBe(0);
    await waitFor(async () => expect(await histogramCount(c, 'orchestrator_handoff_duration_seconds')).toBe(3));
    expect(await metric(c, 'orchestrator_rebalance_moves_total')).toBe(P + 3);
    expect(await metric(c, 'orchestrator_workers_live')).toBe(4);
    expect(await metric(c, 'orchestrator_partitions_assigned', { worker: 'w4' })).toBe(3);
    expect(await metric(c, 'orchestrator_partitions_assigned', { worker: 'w1' })).toBe(3);
    // Every change was broadcast: the last table the workers saw is the one in Redis.
    await waitFor(async () => expect(w4.lastTable?.partitions).toEqual(await h.table()));
  });

  it('a worker that never answers revoke is forced after REVOKE_TIMEOUT_MS, and it is counted', async () => {
    const w1 = await h.worker('w1');
    const c = await h.coordinator('c1');
    await settled([w1], { w1: P });
    w1.answerRevoke = false;
    const w2 = await h.worker('w2');
    const after = await settled([w2], { w1: P / 2, w2: P / 2 });
    const revoke = w1.commands.find((x) => x.command.type === 'revoke')!;
    const assign = w2.commands.find((x) => x.command.type === 'assign')!;
    expect(assign.at - revoke.at).toBeGreaterThanOrEqual(TIMING.REVOKE_TIMEOUT_MS - 50);
    for (const s of after.filter((x) => x.owner === 'w2')) expect(await h.partitionEpoch(s.partition)).toBe(s.epoch);
    expect(await metric(c, 'orchestrator_handoffs_total', { outcome: 'forced' })).toBe(P / 2);
    expect(await metric(c, 'orchestrator_handoffs_total', { outcome: 'graceful' })).toBe(0);
    expect(await metric(c, 'orchestrator_worker_command_failures_total', { command: 'revoke' })).toBe(1);
  });

  it('a leader that dies mid-handoff: the new leader resumes the revocation, one new epoch per partition', async () => {
    const w1 = await h.worker('w1', { answerRevoke: false });
    const c1 = await h.coordinator('c1');
    const before = await settled([w1], { w1: P });
    const c2 = await h.coordinator('c2');
    expect(c2.state).toBe('standby');
    const w2 = await h.worker('w2');
    await waitFor(async () => expect((await h.table()).filter((s) => s.phase === 'revoking')).toHaveLength(P / 2));
    await c1.close({ releaseLease: false }); // dies before the revoke timed out
    w1.answerRevoke = true;
    await waitFor(() => expect(c2.state).toBe('leading'));
    const after = await settled([w1, w2], { w1: P / 2, w2: P / 2 });
    for (const s of after.filter((x) => x.owner === 'w2')) {
      // One bump in c2's term: a partition's first new epoch in a term is that term's leader epoch.
      expect(s.epoch).toBeGreaterThan(before[s.partition]!.epoch);
      expect(s.epoch).toBe(c2.leaderEpoch);
      expect(await h.partitionEpoch(s.partition)).toBe(s.epoch);
    }
    expect(w1.received('revoke')).toHaveLength(2); // once per term
    expect(await metric(c2, 'orchestrator_handoffs_total', { outcome: 'graceful' })).toBe(P / 2);
  });

  it('a dead worker\'s partitions are reassigned at new epochs once its heartbeat expires', async () => {
    const workers = [await h.worker('w1'), await h.worker('w2'), await h.worker('w3')];
    const c = await h.coordinator('c1');
    const before = await settled(workers, { w1: 4, w2: 4, w3: 4 });
    const [w1, w2, w3] = workers as [FakeWorker, FakeWorker, FakeWorker];
    const died = Date.now();
    await w2.die();
    const after = await settled([w1, w3], { w1: 6, w3: 6 });
    const tookMs = Date.now() - died;
    expect(tookMs).toBeLessThan(TIMING.WORKER_LEASE_MS + 1_000);
    for (const s of after) {
      const old = before[s.partition]!;
      if (old.owner === 'w2') {
        expect(s.epoch).toBe(old.epoch + 1);
        expect(await h.partitionEpoch(s.partition)).toBe(s.epoch);
        const owner = s.owner === 'w1' ? w1 : w3;
        expect(owner.owned.get(s.partition)).toBe(s.epoch);
      } else {
        expect(s).toEqual(old);
      }
    }
    expect(w1.received('revoke')).toHaveLength(0);
    expect(w3.received('revoke')).toHaveLength(0);
    expect(await metric(c, 'orchestrator_handoffs_total', { outcome: 'orphaned' })).toBe(4);
    expect(await metric(c, 'orchestrator_handoffs_total', { outcome: 'forced' })).toBe(0);
  });

  it('drain: the worker hands everything off gracefully, then is told to shut down', async () => {
    const workers = [await h.worker('w1'), await h.worker('w2'), await h.worker('w3')];
    const c = await h.coordinator('c1');
    await settled(workers, { w1: 4, w2: 4, w3: 4 });
    const [w1, w2, w3] = workers as [FakeWorker, FakeWorker, FakeWorker];

    const reply = await h.ask({ cmd: 'drain', worker: 'w2' });
    expect(reply).toMatchObject({ ok: true, data: { worker: 'w2', partitions: 4, already_draining: false } });
    expect(await h.redis.smembers(h.keys.draining())).toEqual(['w2']);
    await waitFor(() => expect(w2.shutdownReceived).toBe(true));
    expect(w2.owned.size).toBe(0);
    const shutdownAt = w2.commands.find((x) => x.command.type === 'shutdown')!.at;
    const lastRevoke = Math.max(...w2.commands.filter((x) => x.command.type === 'revoke').map((x) => x.at));
    expect(shutdownAt).toBeGreaterThanOrEqual(lastRevoke);
    await settled([w1, w3], { w1: 6, w3: 6 });
    expect(await metric(c, 'orchestrator_handoffs_total', { outcome: 'graceful' })).toBe(4);
    // Once it has gone, the drain is done with.
    await waitFor(async () => expect(await h.redis.smembers(h.keys.draining())).toEqual([]));

    expect(await h.ask({ cmd: 'drain', worker: 'nope' })).toMatchObject({ ok: false, error: { code: 'NO_SUCH_WORKER' } });
    expect(await h.ask({ cmd: 'drain' })).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
  });

  it('draining the last eligible worker is refused (nobody could take its partitions)', async () => {
    const w1 = await h.worker('w1');
    await h.coordinator('c1');
    await settled([w1], { w1: P });
    expect(await h.ask({ cmd: 'drain', worker: 'w1' })).toMatchObject({ ok: false, error: { code: 'NO_ELIGIBLE_WORKER' } });
  });

  it('pause freezes a join but never orphans a dead worker\'s partitions; resume applies the join', async () => {
    const w1 = await h.worker('w1');
    const w2 = await h.worker('w2');
    const c = await h.coordinator('c1');
    await settled([w1, w2], { w1: 6, w2: 6 });
    expect(await h.ask({ cmd: 'pause' })).toMatchObject({ ok: true, data: { paused: true } });
    expect(await h.redis.get(h.keys.paused())).toBe('1');

    const w3 = await h.worker('w3');
    // The leader sees w3 (status lists it) and ticks on without moving anything to it.
    await waitFor(async () => {
      const status = await h.ask({ cmd: 'status' });
      expect(status.ok && (status.data as { workers: { id: string }[] }).workers.map((w) => w.id)).toContain('w3');
    });
    const ticks = c.stats().ticks;
    await waitFor(() => expect(c.stats().ticks).toBeGreaterThanOrEqual(ticks + 5));
    expect(w3.commands).toHaveLength(0);
    expect(w1.received('revoke')).toHaveLength(0);
    const plan = await h.ask({ cmd: 'plan' });
    expect(plan.ok).toBe(true);
    expect((plan.ok ? (plan.data as { moves: unknown[] }).moves : []).length).toBe(4);
    expect(Object.fromEntries(ownerCounts(await h.table()))).toEqual({ w1: 6, w2: 6 });

    // A dead worker's partitions move even while paused.
    await w1.die();
    await settled([w2, w3], { w2: 6, w3: 6 });
    expect(w2.received('revoke')).toHaveLength(0);
    expect(await metric(c, 'orchestrator_handoffs_total', { outcome: 'orphaned' })).toBe(6);

    // Still paused: a fourth worker gets nothing; resume balances.
    const w4 = await h.worker('w4');
    const ticks2 = c.stats().ticks;
    await waitFor(() => expect(c.stats().ticks).toBeGreaterThanOrEqual(ticks2 + 5));
    expect(w4.commands).toHaveLength(0);
    expect(await h.ask({ cmd: 'resume' })).toMatchObject({ ok: true, data: { paused: false } });
    await settled([w2, w3, w4], { w2: 4, w3: 4, w4: 4 });
  });

  it('move pins a partition onto a worker; unknown partitions and workers are refused', async () => {
    const workers = [await h.worker('w1'), await h.worker('w2'), await h.worker('w3')];
    const c = await h.coordinator('c1');
    const before = await settled(workers, { w1: 4, w2: 4, w3: 4 });
    const partition = before.find((s) => s.owner === 'w1')!.partition;

    const reply = await h.ask({ cmd: 'move', partition, worker: 'w2' });
    expect(reply).toMatchObject({ ok: true, data: { partition, worker: 'w2', from: 'w1' } });
    await waitFor(async () => {
      const table = await h.table();
      expect(table[partition]).toMatchObject({ owner: 'w2', phase: 'owned', epoch: before[partition]!.epoch + 1 });
      expect(table.every((s) => s.phase === 'owned')).toBe(true);
    });
    expect(workers[0]!.received('revoke').some((r) => r.partitions.includes(partition))).toBe(true);
    expect(await h.redis.hgetall(h.keys.pins())).toEqual({ [String(partition)]: 'w2' });
    // The others rebalance around the pin, and it stays there tick after tick.
    await waitFor(async () => {
      const table = await h.table();
      expect(table.every((s) => s.phase === 'owned')).toBe(true);
      expect(Object.fromEntries(ownerCounts(table))).toEqual({ w1: 4, w2: 4, w3: 4 });
    });
    const ticks = c.stats().ticks;
    await waitFor(() => expect(c.stats().ticks).toBeGreaterThanOrEqual(ticks + 5));
    expect((await h.table())[partition]!.owner).toBe('w2');

    expect(await h.ask({ cmd: 'move', partition: P, worker: 'w2' })).toMatchObject({ ok: false, error: { code: 'NO_SUCH_PARTITION' } });
    expect(await h.ask({ cmd: 'move', partition: 1, worker: 'ghost' })).toMatchObject({ ok: false, error: { code: 'NO_SUCH_WORKER' } });
    expect(await h.ask({ cmd: 'move', worker: 'w2' })).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
  });

  it('while Redis is unreachable the leader steps down and nothing moves; afterwards the assignment is unchanged', async () => {
    const workers = [await h.worker('w1'), await h.worker('w2')];
    const c = await h.coordinator('c1');
    const before = await settled(workers, { w1: 6, w2: 6 });
    const epoch = c.leaderEpoch!;
    const commands = workers.map((w) => w.commands.length);

    h.servers.redis.pause(); // SIGSTOP: connections stay open, nothing answers
    try {
      await waitFor(() => expect(c.state).toBe('standby'), 5_000);
      expect(await metric(c, 'orchestrator_coordinator_is_leader')).toBe(0);
      const stoppedAt = Date.now();
      await waitFor(() => expect(Date.now() - stoppedAt).toBeGreaterThan(2 * TIMING.WORKER_LEASE_MS));
    } finally {
      h.servers.redis.resume();
    }
    await waitFor(() => expect(c.state).toBe('leading'), 10_000);
    expect(c.leaderEpoch).toBeGreaterThan(epoch);
    const ticks = c.stats().ticks;
    await waitFor(() => expect(c.stats().ticks).toBeGreaterThan(ticks + TIMING.WORKER_LEASE_MS / TIMING.HEARTBEAT_INTERVAL_MS + 3));
    expect(await h.table()).toEqual(before);
    expect(workers.map((w) => w.commands.length)).toEqual(commands);
  });

  it('start fails with CONNECTION_FAILED when NATS is unreachable, and close() still resolves', async () => {
    const { freePort } = await import('@at-orchestrator/local-servers');
    const { Coordinator: CoordinatorClass } = await import('./coordinator.js');
    const { log } = memoryLogger();
    const c = new CoordinatorClass({ config: h.config({ NATS_URL: `nats://127.0.0.1:${await freePort()}`, COORDINATOR_ID: 'c-x' }), log, http: false });
    await expect(c.start()).rejects.toMatchObject({ code: 'CONNECTION_FAILED' });
    expect(c.state).toBe('closed');
    await c.close();
    expect(await h.redis.exists(h.keys.leader())).toBe(0);
  });

  it('serves /health, /ready and /metrics when asked to', async () => {
    const { Coordinator: CoordinatorClass } = await import('./coordinator.js');
    const { log } = memoryLogger();
    const c = new CoordinatorClass({ config: h.config({ COORDINATOR_ID: 'c-http' }), log });
    try {
      await c.start();
      const base = `http://127.0.0.1:${c.httpPort!}`;
      const health = (await (await fetch(`${base}/health`)).json()) as Record<string, unknown>;
      expect(health).toMatchObject({ status: 'healthy', role: 'leader', leader: 'c-http', coordinator_id: 'c-http', nats_connected: true, redis_connected: true });
      expect(typeof health.uptime_seconds).toBe('number');
      expect((await fetch(`${base}/ready`)).status).toBe(200);
      expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/^orchestrator_coordinator_is_leader\{[^}]*\} 1$/m);
    } finally {
      await c.close();
    }
  });

  it('answers status, workers and partitions with the table and the live workers', async () => {
    const workers = [await h.worker('w1', { capacity: 2 }), await h.worker('w2')];
    const c = await h.coordinator('c1');
    await settled(workers, { w1: 8, w2: 4 });
    const status = await h.ask({ cmd: 'status' });
    expect(status).toMatchObject({
      ok: true,
      leader: 'c1',
      leader_epoch: c.leaderEpoch,
      data: {
        partitions: P,
        paused: false,
        counts: { owned: P, revoking: 0, unowned: 0 },
        workers: [
          { id: 'w1', state: 'live', partitions: 8, capacity: 2 },
          { id: 'w2', state: 'live', partitions: 4, capacity: 1 },
        ],
      },
    });
    const list = await h.ask({ cmd: 'workers' });
    expect(list.ok && (list.data as { workers: { id: string; partitions: number[] }[] }).workers.map((w) => [w.id, w.partitions.length])).toEqual([
      ['w1', 8],
      ['w2', 4],
    ]);
    const partitions = await h.ask({ cmd: 'partitions' });
    const rows = partitions.ok ? (partitions.data as { partitions: { partition: number; owner: string; epoch: number; phase: string }[] }).partitions : [];
    expect(rows).toHaveLength(P);
    const table = await h.table();
    expect(rows.map((r) => [r.partition, r.owner, r.epoch, r.phase])).toEqual(table.map((s) => [s.partition, s.owner, s.epoch, s.phase]));
    expect(await h.ask({ cmd: 'rebalance' })).toMatchObject({ ok: true, data: { moves: [] } });
  });
});
