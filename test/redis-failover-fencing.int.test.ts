import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisSentinelSet } from '@at-orchestrator/local-servers';
import type { Decision } from '@at-orchestrator/contracts';
import { ClusterHarness, scrapeCounter, sumCounter } from './helpers/cluster.js';
import { DecisionCounts, SteadyAgents, describeCounts, expectDeliveredOnce, logFailure, tally } from './helpers/ha-load.js';
import { Stack } from './helpers/stack.js';

// Fencing through a Redis failover (issue 13, item 5): a worker SIGSTOPped past its lease while the
// Redis primary is killed -9 and Sentinel promotes the replica. Real processes on loopback: a primary,
// a replica and three Sentinels (quorum 2, down-after 1 s), two coordinators and three workers of the
// built CLI configured with REDIS_SENTINELS and no REDIS_URL, agents at a steady rate. Decisions are
// counted on a JetStream consumer (0 lost, 0 doubled) and on a core subscription (no repeat; every
// loss a visible sequence gap); the pauses are printed.
//
// The worker is stopped while traffic flows, so it stops holding work: open correlations in memory,
// signals pulled or on their way in its socket. While it is stopped the primary dies, the replica is
// promoted, its heartbeat lapses and the leader gives its partitions to the others at new epochs —
// epochs the promoted replica holds (and that are at least the new term's leader epoch, which Redis's
// clock floors). Woken, it goes on where it stopped, under the epochs it held before the stop, and
// its connection to the dead primary fails its first commands before it reaches the new one: a claim
// that fails, or one skipped because Redis is down, fences nothing. So the woken worker must decide
// nothing until it has written a heartbeat again (its lease, DecisionQueue.gate), and then its claims
// and stores are refused. Without that, it published its stale decisions from memory at once (about
// 100 per run here: `stale` below).
//
// Which assertion catches a missing fence: without the epoch check in the store and claim scripts
// nothing is refused, so the woken worker's orchestrator_fenced_writes_total stays 0 and the wait for
// it after SIGCONT fails (checked by removing the epoch comparison from claim-decisions.lua and
// store-signals.lua in a local copy). The decisions it would then publish under its old epochs are
// caught by `stale` when they reach the stream first; when the new owner's copy got there first the
// stream's Nats-Msg-Id window hides them, which is why the counter is the assertion that always
// fires. `incomplete` catches a signal lost on the way (acked by the woken worker, then fenced).

const RATE = 100; // correlations per second
const PREFIX = 'ff';
const PARTITIONS = 16;

let redis: RedisSentinelSet;
let stack: Stack;

beforeAll(async () => {
  redis = await RedisSentinelSet.start({ downAfterMs: 1_000, failoverTimeoutMs: 3_000 });
  stack = await Stack.on({ redisEnv: redis.env() });
}, 90_000);
afterAll(async () => {
  await stack?.stop();
  await redis?.dispose();
});

interface TablePartition {
  partition: number;
  owner: string | null;
  epoch: number;
  phase: string;
}

describe('fencing through a Redis failover', () => {
  it('a worker SIGSTOPped past its lease while the primary is killed -9 is fenced when woken; every decision stored once', async () => {
    const c = new ClusterHarness(stack, { REDIS_KEY_PREFIX: PREFIX, PARTITIONS: String(PARTITIONS) });
    expect(c.env().REDIS_URL).toBeUndefined();
    expect(c.env()).toMatchObject({ REDIS_SENTINELS: redis.sentinelAddresses, REDIS_SENTINEL_MASTER: redis.masterName });
    const counts = new DecisionCounts(stack.nc, PREFIX);
    const agents = new SteadyAgents(stack.nc, PREFIX);
    const table = async (): Promise<TablePartition[]> => (await c.cli<{ partitions: TablePartition[] }>('partitions')).partitions;
    try {
      await c.startCoordinator('coord-a');
      await c.startCoordinator('coord-b');
      await Promise.all(['w1', 'w2', 'w3'].map((w) => c.startWorker(w)));
      await c.waitForBalance(['w1', 'w2', 'w3'], PARTITIONS);

      await counts.start();
      agents.start(RATE);
      await vi.waitFor(() => expect(counts.decided).toBeGreaterThan(RATE * 3), { timeout: 30_000, interval: 100 });

      // What w2 holds at the stop: its partitions and the epochs it writes under.
      const stopped = c.workers.get('w2')!;
      const held = new Map((await table()).filter((p) => p.owner === 'w2' && p.phase === 'owned').map((p) => [p.partition, p.epoch]));
      expect(held.size).toBeGreaterThan(0);
      expect(await scrapeCounter(stopped, 'orchestrator_fenced_writes_total')).toBe(0);
      // Work it holds: it has been taking signals of its partitions up to now.
      const heldDecisions = [...counts.stream.values()].filter((l) => held.has(l[0]!.partition) && l[0]!.worker_id === 'w2').length;
      expect(heldDecisions).toBeGreaterThan(0);

      // Stopped under load, then the primary killed while it is stopped.
      const stoppedAt = Date.now();
      stopped.kill('SIGSTOP');
      expect(await redis.primary()).toBe(0);
      await redis.kill(0, 'SIGKILL');
      const promoted = await redis.waitForFailover(0, 30_000);
      const failoverMs = Date.now() - stoppedAt;
      // Its lease ran out and the leader (of a term on the promoted replica) gave its partitions to
      // the others at new epochs.
      await c.waitForBalance(['w1', 'w3'], PARTITIONS);
      const moved = new Map((await table()).filter((p) => held.has(p.partition)).map((p) => [p.partition, p.epoch]));
      for (const [partition, epoch] of held) expect(moved.get(partition)!).toBeGreaterThan(epoch);
      const movedMs = Date.now() - stoppedAt;

      // Woken: it writes under its old epochs, and every such write is refused.
      const wokenAt = Date.now();
      stopped.kill('SIGCONT');
      await vi.waitFor(async () => expect(await scrapeCounter(stopped, 'orchestrator_fenced_writes_total')).toBeGreaterThan(0), { timeout: 30_000, interval: 200 });
      // It rejoins and takes its share again, at epochs newer still.
      await c.waitForBalance(['w1', 'w2', 'w3'], PARTITIONS);
      const rejoinedMs = Date.now() - stoppedAt;
      const after = counts.decided;
      await vi.waitFor(() => expect(counts.decided).toBeGreaterThan(after + RATE * 2), { timeout: 30_000, interval: 100 });

      await agents.stop();
      const published = agents.published;
      await vi.waitFor(() => expect(counts.stream.size).toBe(published), { timeout: 90_000, interval: 250 });
      const t = tally(counts, PREFIX, published);
      const workers = [...c.workers.values()];
      const fenced = await scrapeCounter(stopped, 'orchestrator_fenced_writes_total');
      const fencedElsewhere = await sumCounter(workers.filter((w) => w !== stopped), 'orchestrator_fenced_writes_total');
      const stateFailures = await sumCounter(workers, 'orchestrator_state_operation_failures_total');

      // Decisions of the stopped worker's partitions: their pause is the stop itself, until the new
      // owners took over (the other partitions pause only for the failover).
      const decisions = [...counts.stream.values()].map((l) => l[0]!);
      const ofHeld = decisions.filter((d) => held.has(d.partition));
      const partitionsPause = longestGap(ofHeld, stoppedAt);
      const pause = counts.pause(stoppedAt, stoppedAt + rejoinedMs);
      // A decision made after the wake-up under an epoch held before the stop: only a missing fence lets one through.
      const stale = decisions.filter((d) => d.worker_id === 'w2' && held.get(d.partition) === d.epoch && Date.parse(d.orchestrated_at) >= wokenAt);
      // The agents publish every signal of every correlation: a decision without one of them (partial
      // or timeout) means a signal was acked and lost on the way — e.g. a redelivered copy acked while
      // the woken worker's first copy was being stored, and that store fenced.
      const incomplete = decisions.filter((d) => d.status !== 'complete').map((d) => `${d.corr_id}:${d.status}:${d.agents_present.join('+')}`);

      console.log(
        `[failover-fencing] pause of the stopped worker's ${held.size} partitions ${partitionsPause} ms; any decision ${pause} ms ` +
          `(the Sentinels promoted node ${promoted} ${failoverMs} ms after the stop; its partitions moved after ${movedMs} ms, woken then; rejoined after ${rejoinedMs} ms)`,
      );
      console.log(
        `[failover-fencing] ${published} correlations at ${RATE}/s; ${describeCounts(counts, t)}; ` +
          `fenced writes on the woken worker ${fenced} (elsewhere ${fencedElsewhere}); stale decisions ${stale.length}; not complete ${incomplete.length}; state operations failed or skipped ${stateFailures}`,
      );

      expect(fenced).toBeGreaterThan(0);
      expect(stale.map((d) => d.corr_id)).toEqual([]);
      expect(incomplete).toEqual([]);
      expectDeliveredOnce(t);
    } catch (err) {
      logFailure(counts, agents, [...c.workers, ...c.coordinators]);
      throw err;
    } finally {
      counts.stop();
      await agents.stop();
      await c.stopAll();
    }
  }, 240_000);
});

/** The longest gap (ms) between decisions made one after the other, among those ending at or after `from`. */
function longestGap(decisions: readonly Decision[], from: number): number {
  const times = decisions.map((d) => Date.parse(d.orchestrated_at)).sort((a, b) => a - b);
  let longest = 0;
  for (let i = 1; i < times.length; i++) if (times[i]! >= from) longest = Math.max(longest, times[i]! - times[i - 1]!);
  return longest;
}
