import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { RedisKeys, partitionOf } from '@at-orchestrator/contracts';
import { ClusterHarness } from './helpers/cluster.js';
import { DecisionCounts, SteadyAgents } from './helpers/ha-load.js';
import { Stack } from './helpers/stack.js';

// The chaos scenario (issue 13, item 0): one run of a cluster through every kind of fault a worker
// cluster meets, under steady load — a worker joining, a worker killed -9, a worker SIGSTOPped past
// its lease, the coordinator leader killed. Decisions are counted on a durable JetStream consumer of
// the decisions stream (every correlation exactly once: asserted) and on a plain core subscription of
// orchestrated.decision, which receives what the decisions stream republishes: never a repeat
// (asserted), and any copy it misses must show as a gap in the republished sequences (asserted;
// docs/delivery.md). One run is part of
// the integration project (`pnpm test`); `bash scripts/chaos.sh N` runs this file N times in a row and
// prints each run's [chaos] line.

const RATE = 400;
const COUNT = 8_000;

let stack: Stack;
let cluster: ClusterHarness | undefined;

beforeAll(async () => {
  stack = await Stack.start();
});
afterAll(async () => {
  await cluster?.stopAll();
  await stack?.stop();
});

describe('chaos: join, kill -9, SIGSTOP past the lease, leader kill', () => {
  it(`${COUNT} correlations at ${RATE}/s through all four faults: each decided exactly once on the stream`, async () => {
    const c = new ClusterHarness(stack, { REDIS_KEY_PREFIX: 'chaos', DECISION_TIMEOUT_SEC: '10' });
    cluster = c;
    await c.startCoordinator('coord-a');
    await c.startCoordinator('coord-b');
    await Promise.all(['w1', 'w2'].map((w) => c.startWorker(w)));
    await c.waitForBalance(['w1', 'w2']);

    const prefix = `chaos${Date.now().toString(36)}`;
    const counts = new DecisionCounts(stack.nc, prefix);
    await counts.start();
    const agents = new SteadyAgents(stack.nc, prefix);
    agents.start(RATE);
    const decided = (n: number): Promise<void> => waitUntil(() => counts.decided >= n, `${n} decisions (have ${counts.decided})`);
    const pauses: Record<string, number> = {};
    const fault = async (name: string, act: () => Promise<void>): Promise<void> => {
      pauses[name] = Date.now();
      await act();
    };

    await decided(800);
    await fault('join', async () => {
      await c.startWorker('w3');
      await c.waitForBalance(['w1', 'w2', 'w3']);
    });
    await decided(counts.decided + 800);
    await fault('kill -9', async () => {
      c.workers.get('w1')!.kill('SIGKILL');
      await c.waitForBalance(['w2', 'w3']);
    });
    await decided(counts.decided + 800);
    await fault('SIGSTOP', async () => {
      const paused = c.workers.get('w2')!;
      paused.kill('SIGSTOP');
      // Its lease ran out and its partitions moved on: only then is it woken up.
      await c.waitForBalance(['w3']);
      paused.kill('SIGCONT');
    });
    await decided(counts.decided + 800);
    await fault('leader kill', async () => {
      const before = await c.cli<{ coordinator: string }>('status');
      c.coordinators.get(before.coordinator)!.kill('SIGKILL');
      await waitUntil(async () => {
        try {
          return (await c.cli<{ coordinator: string }>('status')).coordinator !== before.coordinator;
        } catch {
          return false; // no leader for a moment
        }
      }, 'a new leader');
    });

    await waitUntil(() => agents.started >= COUNT, `${COUNT} correlations started`);
    await agents.stop();
    const published = agents.published;
    try {
      await waitUntil(() => counts.stream.size >= published, `every published correlation decided (${counts.stream.size} of ${published})`, 90_000);
    } catch (err) {
      console.log(`[chaos] undecided: ${JSON.stringify(await whereAre(undecided(counts, prefix, agents.started), c, counts))}`);
      throw err;
    }
    counts.stop();

    const streamDuplicates = [...counts.stream.values()].filter((list) => list.length > 1).length;
    const coreRepeated = [...counts.core.values()].filter((copies) => copies.length > 1);
    const coreDiffering = coreRepeated.filter((copies) => new Set(copies).size > 1).length;
    const coreMissing = [...counts.stream.keys()].filter((id) => !counts.core.has(id)).length;
    const coreMissingUnexplained = [...counts.stream.keys()].filter((id) => !counts.core.has(id) && !counts.coreMissedSequences.has(counts.sequenceOf.get(id)!));
    // Every signal of every correlation is published: a decision without one (partial, timeout) means
    // a signal was lost on the way, as a correlation never decided means all of them were.
    const incomplete = [...counts.stream.values()].filter(([d]) => d!.status !== 'complete').length;
    // Each fault's pause: the longest gap between stored decisions from its start to the next fault's.
    const names = ['join', 'kill -9', 'SIGSTOP', 'leader kill'];
    const pauseOf = (name: string): number => {
      const i = names.indexOf(name);
      const from = pauses[name]!;
      const next = names[i + 1];
      return counts.pause(from, next === undefined ? from + 10_000 : pauses[next]!);
    };
    console.log(
      `[chaos] published ${published} · stream: ${counts.stream.size} decided, ${published - counts.stream.size} lost, ${streamDuplicates} duplicates, ${incomplete} not complete · ` +
        `core: ${counts.core.size} seen, ${coreRepeated.length} repeated (${coreDiffering} with differing bodies), ${coreMissing} missing · ` +
        `pauses ms: ${names.map((n) => `${n} ${pauseOf(n)}`).join(', ')}`,
    );

    expect(counts.stream.size).toBe(published);
    expect(streamDuplicates).toBe(0);
    // Whatever reached a core subscriber is a decision the stream holds, once; a copy it missed is a
    // gap it can see.
    expect([...counts.core.keys()].filter((id) => !counts.stream.has(id))).toEqual([]);
    expect(coreRepeated).toEqual([]);
    expect(coreMissingUnexplained).toEqual([]);
    // About 30 s when it passes; up to 90 s more to show what a failing run left undecided.
  }, 240_000);
});

/** The started correlations the decisions stream has not shown. */
function undecided(counts: DecisionCounts, prefix: string, started: number): string[] {
  const ids: string[] = [];
  for (let i = 0; i < started; i++) if (!counts.stream.has(`${prefix}-${i}`)) ids.push(`${prefix}-${i}`);
  return ids;
}

/** For a failed run: what Redis holds of each undecided correlation, and whether core saw it. */
async function whereAre(ids: string[], c: ClusterHarness, counts: DecisionCounts): Promise<unknown[]> {
  const keys = new RedisKeys('chaos');
  const redis = new Redis(c.env().REDIS_URL!);
  try {
    return await Promise.all(
      ids.slice(0, 20).map(async (id) => {
        const partition = partitionOf(id, 64);
        const [done, signals, openScore, epoch] = await Promise.all([
          redis.get(keys.done(id)),
          redis.hkeys(keys.signals(id)),
          redis.zscore(keys.open(partition), id),
          redis.get(keys.epoch(partition)),
        ]);
        return { id, partition, done, signals, open: openScore, epoch, core: counts.core.has(id) };
      }),
    );
  } finally {
    redis.disconnect();
  }
}

/** Waits (vi.waitFor) until `condition` — an event the test cannot subscribe to — holds; fails naming `what`. */
function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  return vi.waitFor(
    async () => {
      if (!(await condition())) throw new Error(`timed out waiting for ${what}`);
    },
    { timeout: timeoutMs, interval: 50 },
  );
}
