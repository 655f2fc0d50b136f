import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { loadConfig } from '@at-orchestrator/contracts';
import { NatsCluster, NatsServer } from '@at-orchestrator/local-servers';
import { ensureJetStreamTopology, memoryLogger } from '@at-orchestrator/runtime';
import { ClusterHarness } from './helpers/cluster.js';
import { DecisionCounts, SteadyAgents, describeCounts, expectDeliveredOnce, logFailure, tally } from './helpers/ha-load.js';
import { Stack } from './helpers/stack.js';

// A 3-node NATS cluster of real nats-server processes (routes on loopback, JetStream, R3 streams via
// STREAM_REPLICAS=3), two coordinators and two workers as processes of the built CLI, agents
// publishing at a steady rate. Under load the test kills (-9) the server leading the signals stream,
// later the one leading the shared durable consumer, later the one a worker is connected to; each
// comes back. Every corr_id is counted on a JetStream consumer of the decisions (0 lost, 0 doubled)
// and on a core subscription of orchestrated.decision (no repeat; losses counted and printed).

const STREAM = 'trading-events';
const DURABLE = 'orchestrator-consumer';
const DECISIONS = 'orchestrated';
const RATE = 60; // correlations per second, two signals each: the 2-core machine runs 3 nats-servers, Redis and 4 processes
const PREFIX = 'ha';

let nats: NatsCluster;
let stack: Stack;
let jsm: JetStreamManager;

beforeAll(async () => {
  nats = await NatsCluster.start({ nodes: 3 });
  // The test's own connection lists all three servers: its publishers and counters survive the kills.
  stack = await Stack.on({ natsUrls: nats.urls, env: { STREAM_REPLICAS: '3', STREAM_MAX_BYTES: String(64 * 1024 * 1024) } });
  jsm = await jetstreamManager(stack.nc);
}, 90_000);
afterAll(async () => {
  await stack?.stop();
  await nats?.dispose();
});

function leaderIndex(leader: string | undefined): number {
  const index = nats.indexOf(leader ?? '');
  if (index < 0) throw new Error(`no leader yet (${String(leader)})`);
  return index;
}

/** Stream info's leader and whether every replica is current. */
async function streamState(name: string): Promise<{ leader: number; current: boolean }> {
  const info = await jsm.streams.info(name);
  return { leader: leaderIndex(info.cluster?.leader), current: (info.cluster?.replicas ?? []).length === 2 && (info.cluster?.replicas ?? []).every((r) => r.current && r.offline !== true) };
}

async function consumerState(): Promise<{ leader: number; current: boolean }> {
  const info = await jsm.consumers.info(STREAM, DURABLE);
  return { leader: leaderIndex(info.cluster?.leader), current: (info.cluster?.replicas ?? []).length === 2 && (info.cluster?.replicas ?? []).every((r) => r.current && r.offline !== true) };
}

/** All three nodes healthy, every stream and the durable with a leader and two current replicas. */
async function clusterSettled(timeout = 60_000): Promise<void> {
  await vi.waitFor(
    async () => {
      for (let i = 0; i < 3; i++) expect(await nats.nodes[i]!.healthy(), `node ${i} healthy`).toBe(true);
      for (const name of [STREAM, DECISIONS, 'orchestrator-dlq']) expect((await streamState(name)).current, `${name} replicas current`).toBe(true);
      expect((await consumerState()).current, 'durable replicas current').toBe(true);
    },
    { timeout, interval: 250 },
  );
}

describe('STREAM_REPLICAS on a NATS cluster', () => {
  it('the streams the workers create have 3 replicas; the durable follows its stream; an existing stream is checked, never changed', async () => {
    for (const name of [STREAM, DECISIONS, 'orchestrator-dlq']) {
      const info = await jsm.streams.info(name);
      expect(info.config.num_replicas, name).toBe(3);
      expect(info.cluster?.replicas, name).toHaveLength(2);
    }
    const durable = await jsm.consumers.info(STREAM, DURABLE);
    expect(durable.config.num_replicas ?? 0).toBe(0); // inherits
    expect(durable.cluster?.replicas).toHaveLength(2);
    // The monitoring helpers agree with stream and consumer info.
    expect(await nats.streamLeader(STREAM)).toBe((await streamState(STREAM)).leader);
    expect(await nats.consumerLeader(STREAM, DURABLE)).toBe((await consumerState()).leader);

    // A worker configured for 1 replica finds them: warned about, not changed.
    const { log, lines } = memoryLogger('info');
    await ensureJetStreamTopology(stack.nc, loadConfig({ NATS_URL: nats.url, STREAM_REPLICAS: '1' }), log);
    const warnings = lines.map((l) => JSON.parse(l) as { level: string; msg: string; stream?: string }).filter((l) => l.level === 'warn');
    expect(warnings.map((w) => w.stream)).toEqual([STREAM, DECISIONS, 'orchestrator-dlq']);
    expect(warnings[0]!.msg).toContain('stream present with 3 replica(s), STREAM_REPLICAS=1');
    expect((await jsm.streams.info(STREAM)).config.num_replicas).toBe(3);
  });

  it('a single server refuses STREAM_REPLICAS=3 with a message saying what it needs', async () => {
    const single = await NatsServer.start();
    try {
      const nc = await connect({ servers: single.url });
      const failure = await ensureJetStreamTopology(nc, loadConfig({ NATS_URL: single.url, STREAM_REPLICAS: '3' }), memoryLogger().log).then(
        () => undefined,
        (err: unknown) => err as Error,
      );
      await nc.close();
      expect(failure?.message).toContain(`JetStream cannot create stream ${STREAM} with STREAM_REPLICAS=3`);
      expect(failure?.message).toContain('it needs a NATS cluster of at least 3 JetStream servers');
    } finally {
      await single.dispose();
    }
  });
});

describe('kill -9 of NATS servers under load (2 coordinators, 2 workers, R3 streams)', () => {
  it('the stream leader, the consumer leader and a worker\'s server: every decision stored once; pauses printed', async () => {
    const c = new ClusterHarness(stack, { REDIS_KEY_PREFIX: 'ha', PARTITIONS: '16' });
    const counts = new DecisionCounts(stack.nc, PREFIX);
    const agents = new SteadyAgents(stack.nc, PREFIX);
    try {
      await c.startCoordinator('coord-a');
      await c.startCoordinator('coord-b');
      await Promise.all(['w1', 'w2'].map((w) => c.startWorker(w)));
      await c.waitForBalance(['w1', 'w2'], 16);
      await clusterSettled();

      await counts.start();
      agents.start(RATE);
      await vi.waitFor(() => expect(counts.decided).toBeGreaterThan(RATE * 2), { timeout: 30_000, interval: 100 });
      const calmFrom = Date.now();
      await vi.waitFor(() => expect(counts.decided).toBeGreaterThan(RATE * 4), { timeout: 30_000, interval: 100 });
      // The longest gap between decisions with nothing killed: what a pause compares with.
      const calm = counts.pause(calmFrom, Date.now());

      const pauses: Array<{ what: string; node: number; pause: number; ingest: number; downMs: number }> = [];
      /** What node i leads right now: the JetStream meta group, the three streams, the durable. */
      const roles = async (i: number): Promise<string[]> => {
        const led: string[] = [];
        const jsz = await nats.nodes[i]!.monitor<{ meta_cluster?: { leader?: string } }>('/jsz');
        if (jsz?.meta_cluster?.leader === nats.nodes[i]!.serverName) led.push('meta');
        for (const name of [STREAM, DECISIONS, 'orchestrator-dlq']) if ((await streamState(name)).leader === i) led.push(name);
        if ((await consumerState()).leader === i) led.push(DURABLE);
        return led;
      };
      const killAndReturn = async (what: string, node: number): Promise<void> => {
        const led = await roles(node);
        const clients = (await nats.connections(node)).flatMap((conn) => (conn.name?.startsWith('at-orchestrator:') === true ? [conn.name] : []));
        const killedAt = Date.now();
        const before = counts.decided;
        await nats.kill(node, 'SIGKILL');
        // Down until the cluster has moved on without it: decisions flow again (the stream and the
        // durable have leaders among the other two).
        await vi.waitFor(() => expect(counts.decided).toBeGreaterThan(before + RATE * 2), { timeout: 60_000, interval: 100 });
        const downMs = Date.now() - killedAt;
        await nats.restart(node);
        await clusterSettled();
        const pause = counts.pause(killedAt, Date.now());
        const ingest = agents.pause(killedAt, Date.now());
        pauses.push({ what, node, pause, ingest, downMs });
        console.log(
          `${what} kill: pause ${pause} ms (node n${node}, leading [${led.join(', ')}], clients [${clients.join(', ')}]; ` +
            `down ${downMs} ms; the agents' longest wait for a signal's PubAck meanwhile ${ingest} ms)`,
        );
        // What the processes said about it: each warning's first time after the kill, per process.
        for (const [id, p] of [...c.workers, ...c.coordinators]) {
          const seen = new Map<string, number>();
          for (const line of p.output) {
            if (!line.startsWith('{')) continue;
            const entry = JSON.parse(line) as { level: string; time: string; msg: string };
            const at = Date.parse(entry.time) - killedAt;
            if (at < 0 || entry.level === 'info' || seen.has(entry.msg)) continue;
            seen.set(entry.msg, at);
          }
          if (seen.size > 0) console.log(`  ${id}: ${[...seen].map(([msg, at]) => `+${at} ms ${msg}`).join('; ')}`);
        }
      };

      const streamLeader = (await streamState(STREAM)).leader;
      await killAndReturn('stream-leader', streamLeader);

      const consumerLeader = (await consumerState()).leader;
      await killAndReturn('consumer-leader', consumerLeader);

      const workerNode = await vi.waitFor(
        async () => {
          const node = await nats.nodeOfClient('at-orchestrator:w1');
          expect(node).toBeDefined();
          return node!;
        },
        { timeout: 10_000, interval: 200 },
      );
      await killAndReturn('worker-server', workerNode);

      await agents.stop();
      const published = agents.published;
      await vi.waitFor(() => expect(counts.stream.size).toBe(published), { timeout: 90_000, interval: 250 });

      const t = tally(counts, PREFIX, published);
      console.log(
        `[figure] NATS node kills at ${RATE} corr/s: ${published} correlations (${agents.retries} signal publishes retried by the agents); ` +
          `${describeCounts(counts, t)}; calm max gap ${calm} ms; pauses: ${pauses.map((p) => `${p.what} ${p.pause} ms`).join(', ')}`,
      );

      // What the design guarantees: the decisions stream holds every correlation once; a core
      // subscriber sees only stored decisions, once, and every copy it misses as a sequence gap.
      expectDeliveredOnce(t);
      expect(pauses.map((p) => p.what)).toEqual(['stream-leader', 'consumer-leader', 'worker-server']);
    } catch (err) {
      logFailure(counts, agents, [...c.workers, ...c.coordinators]);
      const durable = await jsm.consumers.info(STREAM, DURABLE).catch((e: unknown) => String(e));
      console.log(`durable: ${JSON.stringify(durable)}`);
      for (const node of nats.nodes) console.log(`--- ${node.serverName} (last lines)\n${node.log.filter((l) => /\[(WRN|ERR)\]/.test(l)).slice(-15).join('\n')}`);
      throw err;
    } finally {
      counts.stop();
      await agents.stop();
      await c.stopAll();
    }
  }, 240_000);
});
