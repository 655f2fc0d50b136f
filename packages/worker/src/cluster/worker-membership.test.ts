import { describe, expect, it, vi } from 'vitest';
import type { Msg, NatsConnection } from '@nats-io/nats-core';
import type { Redis } from 'ioredis';
import { CLUSTER_PROTOCOL, ClusterKeys, ClusterSubjects, type WorkerCommandReply, type WorkerHeartbeat } from '@at-orchestrator/contracts';
import { ControlRefusals, ControlSealer, Registry, memoryLogger } from '@at-orchestrator/runtime';
import { WorkerMembership } from './worker-membership.js';

const SECRET = 'worker-membership-test-secret';
const encoder = new TextEncoder();

/** Just enough of a NATS connection: subscriptions by subject, and messages delivered to them by the test. */
class FakeNats {
  readonly callbacks = new Map<string, (err: Error | null, msg: Msg) => void>();
  subscribe(subject: string, opts: { callback: (err: Error | null, msg: Msg) => void }): { unsubscribe(): void } {
    this.callbacks.set(subject, opts.callback);
    return { unsubscribe: () => this.callbacks.delete(subject) };
  }
  async flush(): Promise<void> {}
  /** Delivers `body` sealed by the leader; resolves with the reply, if the subject answers one. */
  deliver(kind: 'worker-command' | 'assignment', subject: string, body: unknown): Promise<WorkerCommandReply | undefined> {
    const data = encoder.encode(JSON.stringify(body));
    const headers = new ControlSealer([SECRET], 'c1').seal(kind, subject, data);
    return new Promise((resolve) => {
      const msg = {
        subject,
        headers,
        data,
        json: () => JSON.parse(new TextDecoder().decode(data)) as unknown,
        respond: (reply: Uint8Array) => {
          resolve(JSON.parse(new TextDecoder().decode(reply)) as WorkerCommandReply);
          return true;
        },
      } as unknown as Msg;
      this.callbacks.get(subject)!(null, msg);
      if (kind === 'assignment') resolve(undefined);
    });
  }
}

/** A Redis that records the heartbeat the worker writes. */
function fakeRedis(written: WorkerHeartbeat[], state: { failing: boolean }): Redis {
  const chain = {
    set: (_key: string, value: string) => {
      written.push(JSON.parse(value) as WorkerHeartbeat);
      return chain;
    },
    sadd: () => chain,
    del: () => chain,
    srem: () => chain,
    exec: async () => {
      if (state.failing) throw new Error('Connection is closed.');
      return [];
    },
  };
  return { multi: () => chain } as unknown as Redis;
}

async function setup(o: { failingRedis?: boolean; redis?: { failing: boolean }; heartbeatMs?: number; leaseMs?: number } = {}): Promise<{ nats: FakeNats; membership: WorkerMembership; lines: string[]; heartbeats: WorkerHeartbeat[]; assigned: number[][] }> {
  const nats = new FakeNats();
  const { log, lines } = memoryLogger('info');
  const heartbeats: WorkerHeartbeat[] = [];
  const assigned: number[][] = [];
  const membership = new WorkerMembership({
    nc: nats as unknown as NatsConnection,
    redis: fakeRedis(heartbeats, o.redis ?? { failing: o.failingRedis === true }),
    redisAvailable: () => true,
    keys: new ClusterKeys('t'),
    workerId: 'w1',
    capacity: 1,
    heartbeatMs: o.heartbeatMs ?? 60_000,
    leaseMs: o.leaseMs ?? 120_000,
    log,
    handlers: {
      assign: async (partitions) => {
        assigned.push(partitions.map((p) => p.partition));
        return partitions.map((p) => p.partition);
      },
      revoke: async (partitions) => partitions,
      shutdown: () => undefined,
      table: () => undefined,
      heartbeat: async () => ({ load: 0, owned: [], draining: false }),
    },
    clusterSecrets: [SECRET],
    refusals: new ControlRefusals(new Registry(), log),
  });
  await membership.start();
  return { nats, membership, lines, heartbeats, assigned };
}

const mismatchLines = (lines: string[]): Array<Record<string, unknown>> =>
  lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => String(entry.msg).includes('the coordinator leader speaks cluster protocol'));

describe('WorkerMembership and the cluster protocol', () => {
  it('its heartbeat carries CLUSTER_PROTOCOL', async () => {
    const { heartbeats, membership } = await setup();
    expect(heartbeats[0]).toMatchObject({ id: 'w1', protocol: CLUSTER_PROTOCOL });
    await membership.close();
  });

  it.each([
    { name: 'the same protocol', protocol: CLUSTER_PROTOCOL as number | undefined, logged: false, shown: '' },
    { name: 'a newer protocol', protocol: CLUSTER_PROTOCOL + 1, logged: true, shown: String(CLUSTER_PROTOCOL + 1) },
    { name: 'an older protocol', protocol: CLUSTER_PROTOCOL - 1, logged: true, shown: String(CLUSTER_PROTOCOL - 1) },
    // A leader older than the check states none: it speaks protocol 1.
    { name: 'no protocol (a leader older than the check)', protocol: undefined as number | undefined, logged: CLUSTER_PROTOCOL !== 1, shown: 'none (a build older than the protocol check: 1)' },
  ])('a command and a table from a leader speaking $name: logged as an error once per term, naming both; still obeyed', async ({ protocol, logged, shown }) => {
    const { nats, membership, lines, assigned } = await setup();
    const stamp = protocol === undefined ? {} : { protocol };
    for (let i = 0; i < 3; i++) {
      const reply = await nats.deliver('worker-command', ClusterSubjects.worker('w1'), { type: 'assign', leader_epoch: 7, partitions: [{ partition: i, epoch: 7 }], ...stamp });
      expect(reply).toMatchObject({ ok: true, partitions: [i] });
      await nats.deliver('assignment', ClusterSubjects.assignment, { version: i + 1, leader: 'c1', leader_epoch: 7, partitions: [], ...stamp });
    }
    expect(assigned).toEqual([[0], [1], [2]]);
    const found = mismatchLines(lines);
    if (!logged) {
      expect(found).toEqual([]);
    } else {
      expect(found).toHaveLength(1);
      expect(found[0]).toMatchObject({ level: 'error', leader_epoch: 7, leader_protocol: protocol ?? null, worker_protocol: CLUSTER_PROTOCOL });
      expect(found[0]!.msg).toContain(`the coordinator leader speaks cluster protocol ${shown}, this worker ${CLUSTER_PROTOCOL}`);
      // A new term of such a leader is reported again.
      await nats.deliver('assignment', ClusterSubjects.assignment, { version: 9, leader: 'c2', leader_epoch: 8, partitions: [], ...stamp });
      expect(mismatchLines(lines)).toHaveLength(2);
      expect(mismatchLines(lines)[1]).toMatchObject({ leader: 'c2', leader_epoch: 8 });
    }
    await membership.close();
  });
});

describe('WorkerMembership: the heartbeat lease', () => {
  it('holds from an acknowledged heartbeat until WORKER_LEASE_MS after it was sent, less a tenth; never without one', async () => {
    const before = performance.now();
    const { membership } = await setup();
    const after = performance.now();
    expect(membership.holdsLease()).toBe(true);
    // leaseMs 120 s: the key lives at least until sent + 120 s; the worker counts on 108 s of it.
    expect(membership.holdsLease(before + 107_999)).toBe(true);
    expect(membership.holdsLease(after + 108_000)).toBe(false);
    await membership.close();

    // Redis never acknowledged a heartbeat: no lease, whatever the clock says.
    const { membership: unacked, heartbeats } = await setup({ failingRedis: true });
    expect(heartbeats).toHaveLength(1);
    expect(unacked.holdsLease()).toBe(false);
    await unacked.close();
  });

  it('past the lease: decides on through a Redis outage it lives through, not after a stall past the lease, until a heartbeat is acknowledged again', async () => {
    const redis = { failing: false };
    const { membership, heartbeats } = await setup({ redis, heartbeatMs: 20, leaseMs: 200 });
    expect(membership.mayDecideFromMemory()).toBe(true);

    // Redis refuses every heartbeat while the process runs: the lease lapses, deciding goes on.
    redis.failing = true;
    await vi.waitFor(() => expect(membership.holdsLease()).toBe(false), { timeout: 5_000, interval: 10 });
    expect(membership.mayDecideFromMemory()).toBe(true);

    // A stall past the lease (the event loop blocked, as a stopped process's is): no heartbeat tick ran.
    const until = performance.now() + 250;
    while (performance.now() < until) {
      // blocked on purpose: what SIGSTOP or a long pause does to the timers
    }
    expect(membership.mayDecideFromMemory()).toBe(false);
    // Ticks resume, Redis still refuses: nothing from memory until a heartbeat is acknowledged.
    const attempts = heartbeats.length;
    await vi.waitFor(() => expect(heartbeats.length).toBeGreaterThan(attempts + 2), { timeout: 5_000, interval: 10 });
    expect(membership.mayDecideFromMemory()).toBe(false);

    redis.failing = false;
    await vi.waitFor(() => expect(membership.holdsLease()).toBe(true), { timeout: 5_000, interval: 10 });
    expect(membership.mayDecideFromMemory()).toBe(true);
    await membership.close();
  });
});
