import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Subscription } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { RedisServer } from '@at-orchestrator/local-servers';
import { CLEAN_MIX, SimulatedAgents } from '@at-orchestrator/sim';
import { ClusterHarness, scrapeCounter } from './helpers/cluster.js';
import { DecisionLog, Stack } from './helpers/stack.js';

// REDLOCK_URLS: the advisory lock per decision batch on three independent masters (issue 13). The
// epoch fence keeps decisions single whatever the lock does; what this shows is that losing one of
// the three masters under load changes nothing a consumer sees: Redlock still has its quorum of
// two, decisions keep flowing, none lost, none doubled, on the stream and on a core subscription.

let stack: Stack;
const masters: RedisServer[] = [];
let cluster: ClusterHarness | undefined;

beforeAll(async () => {
  stack = await Stack.start();
  for (let i = 0; i < 3; i++) masters.push(await RedisServer.start());
});
afterAll(async () => {
  await cluster?.stopAll();
  await Promise.all(masters.map((m) => m.dispose()));
  await stack?.stop();
});

/** Every decision a plain core subscriber of orchestrated.decision receives, with when it came. */
class CoreDecisions {
  readonly counts = new Map<string, number>();
  readonly arrivals: number[] = [];
  private sub: Subscription | undefined;

  constructor(private readonly prefix: string) {}

  start(): void {
    this.sub = stack.nc.subscribe('orchestrated.decision', {
      callback: (_err, msg) => {
        const { corr_id: corrId } = msg.json<{ corr_id: string }>();
        if (!corrId.startsWith(this.prefix)) return;
        this.counts.set(corrId, (this.counts.get(corrId) ?? 0) + 1);
        this.arrivals.push(performance.now());
      },
    });
  }

  stop(): void {
    this.sub?.unsubscribe();
  }

  duplicates(): string[] {
    return [...this.counts].filter(([, n]) => n > 1).map(([id]) => id);
  }

  /** The longest gap between two decisions in [from, to] (ms, performance.now()). */
  longestGap(from: number, to: number): number {
    const inside = this.arrivals.filter((t) => t >= from && t <= to);
    let gap = 0;
    for (let i = 1; i < inside.length; i++) gap = Math.max(gap, inside[i]! - inside[i - 1]!);
    return Math.round(gap);
  }
}

/** EVAL/EVALSHA calls a server has run (INFO commandstats). */
async function scriptCalls(url: string): Promise<number> {
  const client = new Redis(url);
  try {
    const info = await client.info('commandstats');
    return [...info.matchAll(/^cmdstat_(?:eval|evalsha):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  } finally {
    client.disconnect();
  }
}

describe('Redlock across independent masters (REDLOCK_URLS)', () => {
  it('one of three lock masters killed -9 mid-load: decisions keep flowing, none lost or doubled', async () => {
    const count = 6_000;
    cluster = new ClusterHarness(stack, { REDIS_KEY_PREFIX: 'redlock', REDLOCK_URLS: masters.map((m) => m.url).join(',') });
    await cluster.startCoordinator('coord-r');
    const workers = await Promise.all(['r1', 'r2'].map((w) => cluster!.startWorker(w)));
    await cluster.waitForBalance(['r1', 'r2']);

    const decisions = new DecisionLog(stack.js, 'rl-');
    await decisions.start();
    const core = new CoreDecisions('rl-');
    core.start();
    const agents = new SimulatedAgents(stack.nc);
    const done = agents.run({ rate: 500, count, seed: 13, prefix: 'rl', mix: { ...CLEAN_MIX, jitterMs: 5 } });

    // The lock is really taken on every master while decisions flow (Redlock's scripts run there).
    await decisions.waitFor(1_000, 30_000);
    for (const master of masters) expect(await scriptCalls(master.url)).toBeGreaterThan(100);
    const killedAt = performance.now();
    process.kill(masters[0]!.pid!, 'SIGKILL');
    await decisions.waitFor(3_000, 30_000);

    await done;
    expect(agents.published).toBe(count);
    await decisions.waitFor(count, 60_000);
    core.stop();
    decisions.stop();

    const pause = core.longestGap(killedAt - 1_000, killedAt + 5_000);
    console.log(`redlock master kill -9: longest gap between decisions ${pause} ms (500 correlations/s)`);
    expect(decisions.byCorr.size).toBe(count);
    expect(decisions.duplicates()).toEqual([]);
    expect(core.duplicates()).toEqual([]);
    expect(core.counts.size).toBe(count);
    // Nothing was fenced (one owner per partition throughout), and with two of three masters the lock
    // kept its quorum: batches that went on without it are counted, and there were none or few.
    const fenced = await Promise.all(workers.map((w) => scrapeCounter(w, 'orchestrator_fenced_writes_total')));
    expect(fenced).toEqual([0, 0]);
    const lockFailures = (await Promise.all(workers.map((w) => scrapeCounter(w, 'orchestrator_lock_failures_total')))).reduce((a, b) => a + b, 0);
    console.log(`redlock: ${lockFailures} decision batches went on without the lock`);
  });
});
