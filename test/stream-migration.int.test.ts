import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DiscardPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { ClusterSubjects, DECISION_SUBJECT, STORED_DECISION_SUBJECT, signalSubject, type Env } from '@at-orchestrator/contracts';
import { decisionStreamLayout } from '@at-orchestrator/runtime';
import { NatsServer, RedisServer } from '@at-orchestrator/local-servers';
import { CLI_MAIN, CliProcess, TEST_CLUSTER_SECRET, TEST_OPERATOR_TOKEN } from './helpers/stack.js';

// Upgrading a NATS account whose decisions stream has the layout of cluster protocol 1 (it stored
// orchestrated.* itself): a worker of this build refuses it and names the migration;
// `at-orchestrator streams migrate` refuses while a cluster runs, then keeps the old decisions in
// <stream>-protocol1 and recreates the stream with the same limits, storing orchestrator.decided.* and
// republishing onto orchestrated.*; after it a worker starts and every kind of consumer gets each
// decision once (docs/delivery.md, "Migrating the decisions stream").

const STREAM = 'orchestrated';
const OLD = 20;
const enc = new TextEncoder();

let nats: NatsServer;
let redis: RedisServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  nats = await NatsServer.start();
  redis = await RedisServer.start();
  nc = await connect({ servers: nats.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
  await redis?.dispose();
});

const env = (extra: Env = {}): Env => ({
  NATS_URL: nats.url,
  REDIS_URL: redis.url,
  CLUSTER_SECRET: TEST_CLUSTER_SECRET,
  OPERATOR_TOKEN: TEST_OPERATOR_TOKEN,
  LOG_LEVEL: 'info',
  ...extra,
});

function cli(args: string[], extra: Env = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI_MAIN, ...args], { env: { PATH: process.env.PATH, ...env(extra) } as NodeJS.ProcessEnv, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

describe('migrating a protocol-1 decisions stream', () => {
  it('refused by a worker, refused while a cluster runs, then migrated: old decisions kept, limits kept, one copy per decision for every consumer', async () => {
    // The protocol-1 layout, as the previous build created it, with decisions in it.
    await jsm.streams.add({ name: STREAM, subjects: ['orchestrated.>'], duplicate_window: nanos(120_000), max_bytes: 8 * 1024 * 1024, discard: DiscardPolicy.New });
    for (let i = 0; i < OLD; i++) await js.publish(DECISION_SUBJECT, enc.encode(JSON.stringify({ corr_id: `old-${i}` })), { msgID: `old-${i}` });

    // A worker of this build stops at start and says what to run.
    const refused = CliProcess.spawn(env({ HTTP_PORT: '0' }));
    const code = await refused.exited();
    expect(code).not.toBe(0);
    expect(refused.output.join('\n')).toContain('has the decision layout of cluster protocol 1');
    expect(refused.output.join('\n')).toContain('at-orchestrator streams migrate');
    expect(decisionStreamLayout(await jsm.streams.info(STREAM))).toBe('protocol1');

    // A cluster still running (a coordinator leader answers): the migration refuses and changes nothing.
    const leader = nc.subscribe(ClusterSubjects.leader, {
      callback: (_err, m) => {
        m.respond(enc.encode(JSON.stringify({ ok: true, leader: 'coord-old', leader_epoch: 3, data: {} })));
      },
    });
    await nc.flush();
    const busy = await cli(['streams', 'migrate']);
    expect(busy.code).toBe(3);
    expect(busy.stderr).toContain('the cluster is running (coordinator coord-old leads on orchestrator.ctl.leader): stop every worker and coordinator');
    expect(decisionStreamLayout(await jsm.streams.info(STREAM))).toBe('protocol1');
    leader.unsubscribe();

    const migrated = await cli(['streams', 'migrate']);
    expect(migrated.stderr).toBe('');
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toContain(`copying ${OLD} decision(s) of ${STREAM} into ${STREAM}-protocol1`);
    expect(migrated.stdout).toContain(`migrated ${STREAM}; its ${OLD} earlier message(s) are in ${STREAM}-protocol1`);

    // The old decisions, as they were, in the kept stream, which sources nothing any more.
    const kept = await jsm.streams.info(`${STREAM}-protocol1`);
    expect(kept.state.messages).toBe(OLD);
    expect(kept.config.sources ?? []).toEqual([]);
    const first = await jsm.streams.getMessage(`${STREAM}-protocol1`, { seq: 1 });
    expect([first!.subject, first!.header?.get('Nats-Msg-Id')]).toEqual([DECISION_SUBJECT, 'old-0']);
    // The stream itself: the current layout, with the limits and the duplicate window it had.
    const now = await jsm.streams.info(STREAM);
    expect(decisionStreamLayout(now)).toBe('current');
    expect([now.config.max_bytes, now.config.discard, now.config.duplicate_window, now.state.messages]).toEqual([8 * 1024 * 1024, DiscardPolicy.New, nanos(120_000), 0]);

    // A second run changes nothing.
    const again = await cli(['streams', 'migrate']);
    expect([again.code, again.stdout.trim()]).toEqual([0, `stream ${STREAM} is already in the current layout: nothing to do`]);

    // A worker starts, and a decision reaches the stream and a core subscriber once each.
    const core: string[] = [];
    const sub = nc.subscribe(DECISION_SUBJECT, {
      callback: (_err, m) => {
        core.push(m.json<{ corr_id: string }>().corr_id);
      },
    });
    await nc.flush();
    const worker = await CliProcess.started(env());
    try {
      await js.publish(signalSubject('momentum'), enc.encode(JSON.stringify({ corr_id: 'new-1', agent_name: 'momentum', analysis: { momentum_strength: 0.4, confidence: 0.9, trend_direction: 'up' } })));
      await js.publish(signalSubject('risk'), enc.encode(JSON.stringify({ corr_id: 'new-1', agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 1 } } })));
      await vi.waitFor(() => expect(core, worker.output.slice(-8).join('\n')).toEqual(['new-1']), { timeout: 20_000 });
      const stored = await jsm.streams.getMessage(STREAM, { seq: 1 });
      expect([stored!.subject, stored!.header?.get('Nats-Msg-Id')]).toEqual([STORED_DECISION_SUBJECT, 'new-1']);
      expect((await jsm.streams.info(STREAM)).state.messages).toBe(1);
    } finally {
      sub.unsubscribe();
      worker.child.kill('SIGTERM');
      await worker.exited();
    }
  });

  it('a decisions stream that is neither layout is refused by name, and nothing is changed', async () => {
    await jsm.streams.add({ name: 'foreign', subjects: ['elsewhere.>'] });
    const result = await cli(['streams', 'migrate'], { NATS_DECISION_STREAM: 'foreign' });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('JetStream stream foreign exists with subjects [elsewhere.>], no RePublish');
    expect((await jsm.streams.info('foreign')).config.subjects).toEqual(['elsewhere.>']);
  });

  it('bad usage is refused before connecting', async () => {
    expect((await cli(['streams'])).code).toBe(2);
    expect((await cli(['streams', 'migrate', '--keep-as', 'a.b'])).stderr).toContain('--keep-as="a.b" is not a stream name');
  });
});
