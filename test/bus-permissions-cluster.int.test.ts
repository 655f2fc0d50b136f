import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DECISION_SUBJECT, signalSubject, type Env } from '@at-orchestrator/contracts';
import { NatsServer, RedisServer } from '@at-orchestrator/local-servers';
import { FAST_CLUSTER_ENV, scrapeCounter } from './helpers/cluster.js';
import { CliProcess, killStrayChildren } from './helpers/stack.js';

/**
 * A whole cluster — a coordinator and two workers as processes of the built CLI, agents, the
 * execution layer and the operator's CLI — each connected as its own user of the shipped
 * deploy/nats/nats.conf: the permissions are enough for every real flow (the workers create the
 * streams and the durable, consume, forward to each other, publish decisions; the coordinator assigns
 * and hands off; the operator reads the status and drains a worker), and every correlation is decided
 * once.
 */

const SHIPPED = fileURLToPath(new URL('../deploy/nats/nats.conf', import.meta.url));
const USERS = ['admin', 'coordinator', 'worker', 'operator', 'decisions', 'dead-letters', 'agent-momentum', 'agent-risk', 'agent-correlation'] as const;
type User = (typeof USERS)[number];
const passwords = Object.fromEntries(USERS.map((u) => [u, `p${randomBytes(16).toString('hex')}`])) as Record<User, string>;

const momentum = (corrId: string) => JSON.stringify({ corr_id: corrId, agent_name: 'momentum', analysis: { momentum_strength: 0.4, confidence: 0.9, trend_direction: 'up' } });
const risk = (corrId: string) => JSON.stringify({ corr_id: corrId, agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 1 } } });

let nats: NatsServer;
let redis: RedisServer;
const processes: CliProcess[] = [];
const connections: NatsConnection[] = [];

beforeAll(async () => {
  nats = await NatsServer.start({
    configFile: SHIPPED,
    env: Object.fromEntries(USERS.map((u) => [`NATS_${u.toUpperCase().replaceAll('-', '_')}_PASSWORD`, passwords[u]])),
  });
  redis = await RedisServer.start();
});

afterAll(async () => {
  for (const p of processes) if (p.exitCode === undefined) p.kill('SIGKILL');
  await Promise.all(processes.filter((p) => p.exitCode === undefined).map((p) => p.exited()));
  killStrayChildren();
  for (const nc of connections) await nc.close().catch(() => undefined);
  await nats?.dispose();
  await redis?.dispose();
});

function env(user: User, extra: Env = {}): Env {
  return {
    NATS_URL: nats.url,
    NATS_USER: user,
    NATS_PASSWORD: passwords[user],
    REDIS_URL: redis.url,
    HTTP_PORT: '0',
    LOG_LEVEL: 'warn',
    PARTITIONS: '16',
    ...FAST_CLUSTER_ENV,
    // The test server's JetStream holds 4 GB: three streams of 64 MB fit.
    STREAM_MAX_BYTES: String(64 * 1024 * 1024),
    CLUSTER_SECRET: 'bus-permissions-cluster-secret',
    ...extra,
  };
}

async function as(user: User): Promise<NatsConnection> {
  const nc = await connect({ servers: nats.url, user, pass: passwords[user] });
  connections.push(nc);
  return nc;
}

async function operator<T>(...args: string[]): Promise<T> {
  const r = await CliProcess.run(env('operator', { OPERATOR_TOKEN: 'bus-permissions-operator-token' }), [...args, '--json']);
  if (r.code !== 0) throw new Error(`at-orchestrator ${args.join(' ')} exited ${r.code}: ${r.output.join('\n')}`);
  expect(r.output.filter((l) => /permissions violation/i.test(l))).toEqual([]);
  return JSON.parse(r.stdout) as T;
}

async function owners(): Promise<Map<string, number>> {
  const { partitions } = await operator<{ partitions: Array<{ owner: string | null; phase: string }> }>('partitions');
  const counts = new Map<string, number>();
  for (const p of partitions) if (p.owner !== null && p.phase === 'owned') counts.set(p.owner, (counts.get(p.owner) ?? 0) + 1);
  return counts;
}

describe('a cluster on the shipped bus permissions', () => {
  it('decides every correlation once, with forwarding between workers, a handoff and an operator drain', async () => {
    // Nothing exists on the server: the first worker creates the streams and the shared durable.
    processes.push(await CliProcess.started(env('coordinator', { COORDINATOR_ID: 'coord', OPERATOR_TOKEN: 'bus-permissions-operator-token' }), 30_000, ['coordinator'], /"msg":"coordinator started"/));
    for (const id of ['w1', 'w2']) processes.push(await CliProcess.started(env('worker', { WORKER_ID: id })));
    await vi.waitFor(
      async () => {
        const counts = await owners();
        if ((counts.get('w1') ?? 0) !== 8 || (counts.get('w2') ?? 0) !== 8) throw new Error(`not balanced: ${JSON.stringify([...counts])}`);
      },
      { timeout: 30_000, interval: 250 },
    );

    const decided = new Map<string, number>();
    const decisions = await as('decisions');
    decisions.subscribe(DECISION_SUBJECT, {
      callback: (_e, m) => {
        const corrId = (m.json() as { corr_id: string }).corr_id;
        decided.set(corrId, (decided.get(corrId) ?? 0) + 1);
      },
    });
    await decisions.flush();
    const agents = { momentum: jetstream(await as('agent-momentum')), risk: jetstream(await as('agent-risk')) };
    const publish = async (prefix: string, n: number): Promise<string[]> => {
      const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
      for (const id of ids) {
        await agents.momentum.publish(signalSubject('momentum'), momentum(id));
        await agents.risk.publish(signalSubject('risk'), risk(id));
      }
      return ids;
    };
    const expectDecidedOnce = async (ids: string[]) => {
      await vi.waitFor(
        () => {
          const missing = ids.filter((id) => !decided.has(id));
          if (missing.length > 0) throw new Error(`${missing.length} of ${ids.length} not decided yet`);
        },
        { timeout: 60_000, interval: 200 },
      );
      expect(ids.filter((id) => decided.get(id) !== 1)).toEqual([]);
    };

    // Each signal goes to whichever worker pulls it; half of them belong to the other one's partitions.
    await expectDecidedOnce(await publish('before', 200));
    // Forwarded, and answered: a forward the server refused would be given back for redelivery (a
    // retry) and reach its owner only through JetStream, more slowly but still once.
    const workerCounter = async (name: string) => (await scrapeCounter(processes[1]!, name)) + (await scrapeCounter(processes[2]!, name));
    expect(await workerCounter('orchestrator_signals_forwarded_total')).toBeGreaterThan(0);
    expect(await workerCounter('orchestrator_forward_retries_total')).toBe(0);

    // The operator drains w1 (an action: sealed with OPERATOR_TOKEN): its partitions move to w2,
    // and w1 exits 0 once it owns nothing.
    const w1 = processes[1]!;
    await operator('drain', 'w1');
    expect(await w1.exited()).toBe(0);
    await vi.waitFor(
      async () => {
        if ((await owners()).get('w2') !== 16) throw new Error('w2 does not own every partition yet');
      },
      { timeout: 30_000, interval: 250 },
    );
    await expectDecidedOnce(await publish('after', 100));
    // The leader read the shared durable's lag (its one JetStream call) for the status.
    const status = await operator<{ coordinator: string; lag: { durable: string } | null }>('status');
    expect(status.coordinator).toBe('coord');
    expect(status.lag?.durable).toBe('orchestrator-consumer');
    // No process was refused anything by the server (a refusal is logged as a NATS error).
    for (const p of processes) expect(p.output.filter((l) => /permissions violation/i.test(l))).toEqual([]);
  });
});
