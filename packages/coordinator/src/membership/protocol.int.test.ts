import { describe, expect, it, vi } from 'vitest';
import { CLUSTER_PROTOCOL } from '@at-orchestrator/contracts';
import type { Coordinator } from '../coordinator.js';
import type { StatusData, WorkersData } from '../control/control-data.js';
import { useClusterHarness, ownerCounts } from '../../test/harness.js';

/** A leader refuses workers of another cluster protocol: real nats-server and redis-server, fake workers. */

const h = useClusterHarness();

const P = 12;
const NEWER = CLUSTER_PROTOCOL + 1;
const waitFor = <T>(fn: () => T | Promise<T>, timeout = 10_000): Promise<T> => vi.waitFor(fn, { timeout, interval: 25 });

async function refusedTotal(c: Coordinator): Promise<number> {
  const metric = c.registry.getSingleMetric('orchestrator_workers_refused_total');
  const values = metric === undefined ? [] : (await metric.get()).values;
  return values.filter((v) => (v.labels as Record<string, unknown>).reason === 'protocol').reduce((sum, v) => sum + v.value, 0);
}

function refusalLines(c: Coordinator, worker: string): string[] {
  return (h.linesOf.get(c) ?? []).filter((line) => line.includes(`"worker":"${worker}"`) && line.includes('speaks cluster protocol'));
}

async function ask<T>(cmd: 'status' | 'workers'): Promise<T> {
  const reply = await h.ask({ cmd });
  if (!reply.ok) throw new Error(reply.error.message);
  return reply.data as T;
}

describe('cluster protocol check (real servers, fake workers)', () => {
  it('assigns nothing to workers of another protocol; lists, logs and counts each once; stamps tables and commands', async () => {
    const w1 = await h.worker('w1');
    const newer = await h.worker('w-newer', { protocol: NEWER });
    const older = await h.worker('w-older', { protocol: CLUSTER_PROTOCOL - 1 });
    // A worker older than the check states no protocol: it speaks protocol 1, accepted by a leader of protocol 1.
    const unstated = await h.worker('w-unstated', { protocol: null });
    const c1 = await h.coordinator('c1');

    const table = await waitFor(async () => {
      const t = await h.table();
      expect(t.filter((s) => s.phase === 'owned')).toHaveLength(P);
      return t;
    });
    expect(Object.fromEntries(ownerCounts(table))).toEqual(CLUSTER_PROTOCOL === 1 ? { w1: P / 2, 'w-unstated': P / 2 } : { w1: P });
    expect(unstated.owned.size).toBe(CLUSTER_PROTOCOL === 1 ? P / 2 : 0);
    // Several ticks later, still nothing for them, and each refusal logged and counted once.
    await waitFor(async () => expect((await ask<StatusData>('status')).table_version).toBeGreaterThan(0));
    const ticks = c1.stats().ticks;
    await waitFor(() => expect(c1.stats().ticks).toBeGreaterThan(ticks + 5));
    expect(newer.commands).toEqual([]);
    expect(older.commands).toEqual([]);
    expect(refusalLines(c1, 'w-newer')).toHaveLength(1);
    expect(refusalLines(c1, 'w-older')).toHaveLength(1);
    expect(refusalLines(c1, 'w1')).toHaveLength(0);
    expect(refusalLines(c1, 'w-unstated')).toHaveLength(CLUSTER_PROTOCOL === 1 ? 0 : 1);
    expect(JSON.parse(refusalLines(c1, 'w-newer')[0]!)).toMatchObject({ level: 'warn', worker_protocol: NEWER, leader_protocol: CLUSTER_PROTOCOL });
    expect(await refusedTotal(c1)).toBe(CLUSTER_PROTOCOL === 1 ? 2 : 3);

    const status = await ask<StatusData>('status');
    expect(status.workers.filter((w) => w.id !== 'w-unstated').map((w) => [w.id, w.state, w.partitions, w.protocol])).toEqual([
      ['w-newer', 'refused', 0, NEWER],
      ['w-older', 'refused', 0, CLUSTER_PROTOCOL - 1],
      ['w1', 'live', CLUSTER_PROTOCOL === 1 ? P / 2 : P, CLUSTER_PROTOCOL],
    ]);
    expect(status.workers.find((w) => w.id === 'w-unstated')).toMatchObject({ state: CLUSTER_PROTOCOL === 1 ? 'live' : 'refused', protocol: null });
    expect(status.workers[0]!.refused).toContain(`worker w-newer speaks cluster protocol ${NEWER}, the leader ${CLUSTER_PROTOCOL}: refused`);
    expect(status.workers[1]!.refused).toContain(`worker w-older speaks cluster protocol ${CLUSTER_PROTOCOL - 1}, the leader ${CLUSTER_PROTOCOL}: refused`);
    const { workers } = await ask<WorkersData>('workers');
    expect(workers.find((w) => w.id === 'w-newer')).toMatchObject({ state: 'refused', partitions: [], protocol: NEWER });

    // move onto a refused worker: refused with its own code; nothing pinned.
    const move = await h.ask({ cmd: 'move', partition: 0, worker: 'w-newer' });
    expect(move).toMatchObject({ ok: false, error: { code: 'WORKER_REFUSED' } });

    // The leader stamps its protocol on what it sends.
    expect(w1.received('assign').every((c) => c.protocol === CLUSTER_PROTOCOL)).toBe(true);
    await waitFor(() => expect(w1.lastTable?.protocol).toBe(CLUSTER_PROTOCOL));
  });

  it('a worker that comes back speaking another protocol hands its partitions over cooperatively; upgraded, it is accepted again', async () => {
    const w1 = await h.worker('w1');
    const w2 = await h.worker('w2');
    const c1 = await h.coordinator('c1');
    await waitFor(async () => expect(Object.fromEntries(ownerCounts(await h.table()))).toEqual({ w1: 6, w2: 6 }));

    w2.protocol = NEWER; // as if restarted with another build under the same id
    await w2.beat();
    await waitFor(async () => {
      expect(Object.fromEntries(ownerCounts(await h.table()))).toEqual({ w1: P });
      expect(w1.owned.size).toBe(P);
    });
    // Revoked, not orphaned: the refused worker was asked to release, and it did.
    expect(w2.received('revoke').flatMap((c) => c.partitions)).toHaveLength(6);
    expect(w2.owned.size).toBe(0);
    expect(await refusedTotal(c1)).toBe(1);

    w2.protocol = CLUSTER_PROTOCOL;
    await w2.beat();
    await waitFor(async () => expect(Object.fromEntries(ownerCounts(await h.table()))).toEqual({ w1: 6, w2: 6 }));
    expect((await ask<StatusData>('status')).workers.map((w) => w.state)).toEqual(['live', 'live']);
    // Refused a second time: reported again (once), since it had been accepted in between.
    w2.protocol = NEWER;
    await w2.beat();
    await waitFor(async () => expect(await refusedTotal(c1)).toBe(2));
    expect(refusalLines(c1, 'w2')).toHaveLength(2);
  });

  it('with only refused workers, the owners keep their partitions and nothing is handed to no one', async () => {
    const w1 = await h.worker('w1');
    const c1 = await h.coordinator('c1');
    await waitFor(async () => expect(Object.fromEntries(ownerCounts(await h.table()))).toEqual({ w1: P }));
    w1.protocol = NEWER;
    await w1.beat();
    await waitFor(async () => expect(await refusedTotal(c1)).toBe(1));
    const ticks = c1.stats().ticks;
    await waitFor(() => expect(c1.stats().ticks).toBeGreaterThan(ticks + 5));
    expect(Object.fromEntries(ownerCounts(await h.table()))).toEqual({ w1: P });
    expect(w1.received('revoke')).toEqual([]);
    expect((await ask<StatusData>('status')).workers.map((w) => [w.id, w.state, w.partitions])).toEqual([['w1', 'refused', P]]);
  });
});
