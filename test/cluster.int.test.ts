import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLEAN_MIX, SimulatedAgents, type MixOptions } from '@at-orchestrator/sim';
import { ClusterHarness, scrapeCounter } from './helpers/cluster.js';
import { DecisionLog, Stack } from './helpers/stack.js';

// Multi-process cluster tests: real nats-server and redis-server, coordinators and workers as
// processes of the built CLI, simulated agents publishing at a steady rate. Each test counts every
// corr_id it published on the decisions stream: 0 lost, 0 decided twice.

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
  cluster = new ClusterHarness(stack, { REDIS_KEY_PREFIX: `c${run}`, ...env });
  return cluster;
}

async function load(prefix: string, count: number, rate: number, mix: Partial<MixOptions> = {}): Promise<{ agents: SimulatedAgents; done: Promise<void>; decisions: DecisionLog }> {
  const decisions = new DecisionLog(stack.js, `${prefix}-`);
  await decisions.start();
  const agents = new SimulatedAgents(stack.nc);
  const done = agents.run({ rate, count, seed: run, prefix, mix: { ...CLEAN_MIX, jitterMs: 5, ...mix } });
  return { agents, done, decisions };
}

async function expectEveryOneDecidedOnce(decisions: DecisionLog, count: number, timeout = 90_000): Promise<void> {
  await decisions.waitFor(count, timeout);
  expect(decisions.byCorr.size).toBe(count);
  expect(decisions.duplicates()).toEqual([]);
  decisions.stop();
}

describe('partitioned cluster', () => {
  it('three workers share 20,000 correlations: every one decided exactly once', async () => {
    const c = newCluster();
    await c.startCoordinator('coord-a');
    await Promise.all(['w1', 'w2', 'w3'].map((w) => c.startWorker(w)));
    const balance = await c.waitForBalance(['w1', 'w2', 'w3']);
    expect([...balance.values()].sort()).toEqual([21, 21, 22]);
    const { agents, done, decisions } = await load('three', 20_000, 1_000);
    await done;
    expect(agents.published).toBe(20_000);
    await expectEveryOneDecidedOnce(decisions, 20_000);
  });

  it('3 → 4 workers at P=64 moves only the surplus (at most ⌈64/4⌉ = 16 partitions), all to the newcomer', async () => {
    const c = newCluster();
    await c.startCoordinator('coord-a');
    await Promise.all(['w1', 'w2', 'w3'].map((w) => c.startWorker(w)));
    await c.waitForBalance(['w1', 'w2', 'w3']);
    const before = (await c.cli<{ partitions: Array<{ partition: number; owner: string }> }>('partitions')).partitions;
    await c.startWorker('w4');
    await c.waitForBalance(['w1', 'w2', 'w3', 'w4']);
    const after = (await c.cli<{ partitions: Array<{ partition: number; owner: string }> }>('partitions')).partitions;
    const moved = after.filter((p, i) => p.owner !== before[i]!.owner);
    console.log(`[figure] 3 → 4 workers at P=64: ${moved.length} partitions moved`);
    expect(moved.length).toBeLessThanOrEqual(16);
    expect(new Set(moved.map((p) => p.owner))).toEqual(new Set(['w4']));
  });

  it('scales 2 → 5 workers mid-load, then 5 → 2: nothing lost, nothing doubled', async () => {
    const c = newCluster();
    await c.startCoordinator('coord-a');
    await Promise.all(['w1', 'w2'].map((w) => c.startWorker(w)));
    await c.waitForBalance(['w1', 'w2']);
    const { done, decisions } = await load('scale', 12_000, 800);
    await decisions.waitFor(2_000);
    await Promise.all(['w3', 'w4', 'w5'].map((w) => c.startWorker(w)));
    await c.waitForBalance(['w1', 'w2', 'w3', 'w4', 'w5']);
    await decisions.waitFor(6_000);
    for (const w of ['w3', 'w4', 'w5']) c.workers.get(w)!.kill('SIGTERM');
    for (const w of ['w3', 'w4', 'w5']) expect(await c.workers.get(w)!.exited()).toBe(0);
    await c.waitForBalance(['w1', 'w2']);
    await done;
    await expectEveryOneDecidedOnce(decisions, 12_000);
    // Graceful handoffs under load (the scale-up): how long each partition had no owner taking signals.
    const pauses = c.coordinators
      .get('coord-a')!
      .output.filter((l) => l.includes('"msg":"handoff complete"'))
      .flatMap((l) => {
        const e = JSON.parse(l) as { pause_ms: number; partitions: number[] };
        return e.partitions.map(() => e.pause_ms);
      })
      .sort((a, b) => a - b);
    expect(pauses.length).toBeGreaterThan(0);
    const pct = (q: number): number => pauses[Math.min(pauses.length - 1, Math.floor(q * pauses.length))]!;
    console.log(`[figure] graceful handoff pause over ${pauses.length} partition moves: p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${pauses.at(-1)} ms`);
  });

  it('kill -9 a worker mid-load: its partitions move after its lease and its open correlations are decided', async () => {
    const c = newCluster();
    await c.startCoordinator('coord-a');
    await Promise.all(['w1', 'w2', 'w3'].map((w) => c.startWorker(w)));
    await c.waitForBalance(['w1', 'w2', 'w3']);
    const { done, decisions } = await load('kill9', 8_000, 800);
    await decisions.waitFor(2_000);
    const killedAt = Date.now();
    c.workers.get('w2')!.kill('SIGKILL');
    await c.waitForBalance(['w1', 'w3']);
    const recoveryMs = Date.now() - killedAt;
    console.log(`[figure] kill -9 recovery: partitions of the dead worker owned again after ${recoveryMs} ms (WORKER_LEASE_MS=1500)`);
    await done;
    await expectEveryOneDecidedOnce(decisions, 8_000);
  });

  it('SIGSTOP a worker for twice its lease, then SIGCONT: fencing refuses its stale writes, 0 duplicates', async () => {
    // A fifth of the correlations never get their risk signal, so they stay open until their deadline
    // (2 s here). The paused worker holds such correlations of partitions it loses, and their deadlines
    // pass while it sleeps: when it wakes, its overdue deadline timer decides them under its old epochs
    // before it can hear of any new assignment (that needs its next heartbeat), so its claims must be
    // fenced. Whether it also gets to store a stale signal depends on where the pause hits; the test
    // does not lean on that (it did, and failed in CI when the pause hit between two pulls). Run in a
    // loop, this version also found a lost-partition race, now in test/fencing.int.test.ts.
    const c = newCluster({ DECISION_TIMEOUT_SEC: '2' });
    await c.startCoordinator('coord-a');
    await Promise.all(['w1', 'w2', 'w3'].map((w) => c.startWorker(w)));
    await c.waitForBalance(['w1', 'w2', 'w3']);
    const { done, decisions } = await load('stop', 8_000, 800, { missingRisk: 0.2 });
    await decisions.waitFor(2_000);
    const paused = c.workers.get('w2')!;
    paused.kill('SIGSTOP');
    await c.waitForBalance(['w1', 'w3']); // its lease expired and its partitions moved on
    await new Promise<void>((resolve) => setTimeout(resolve, 1_500)); // twice the lease in total, by design of the test
    paused.kill('SIGCONT');
    await done;
    await expectEveryOneDecidedOnce(decisions, 8_000);
    expect(await scrapeCounter(paused, 'orchestrator_fenced_writes_total')).toBeGreaterThan(0);
  });

  it('kill the coordinator leader: the standby leads within its lease and the assignment is unchanged', async () => {
    const c = newCluster();
    await c.startCoordinator('coord-a');
    await c.startCoordinator('coord-b');
    await Promise.all(['w1', 'w2', 'w3'].map((w) => c.startWorker(w)));
    await c.waitForBalance(['w1', 'w2', 'w3']);
    const before = await c.cli<{ coordinator: string }>('status');
    const { partitions: table } = await c.cli<{ partitions: unknown[] }>('partitions');
    const killedAt = Date.now();
    c.coordinators.get(before.coordinator)!.kill('SIGKILL');
    let after = before;
    while (after.coordinator === before.coordinator) {
      try {
        after = await c.cli<{ coordinator: string }>('status');
      } catch {
        // no leader for a moment
      }
    }
    const takeoverMs = Date.now() - killedAt;
    console.log(`[figure] leader failover: ${after.coordinator} leads ${takeoverMs} ms after ${before.coordinator} was killed (LEADER_LEASE_MS=1500)`);
    expect(takeoverMs).toBeLessThan(1_500 + 2_000);
    expect((await c.cli<{ partitions: unknown[] }>('partitions')).partitions).toEqual(table);
  });

  it('drain <worker>: it ends with 0 partitions and exits cleanly, decisions keep flowing', async () => {
    const c = newCluster();
    await c.startCoordinator('coord-a');
    await Promise.all(['w1', 'w2', 'w3'].map((w) => c.startWorker(w)));
    await c.waitForBalance(['w1', 'w2', 'w3']);
    const { done, decisions } = await load('drain', 4_000, 800);
    await decisions.waitFor(1_000);
    await c.cli('drain', 'w3');
    expect(await c.workers.get('w3')!.exited()).toBe(0);
    const owners = await c.waitForBalance(['w1', 'w2']);
    expect(owners.get('w3')).toBeUndefined();
    await done;
    await expectEveryOneDecidedOnce(decisions, 4_000);
  });
});
