import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Decision, type Env } from '@at-orchestrator/contracts';
import { NatsServer, RedisServer } from '@at-orchestrator/local-servers';
import { NatsLink, memoryLogger } from '@at-orchestrator/runtime';
import { credsKind, nkeyKind, tokenKind, userPasswordKind, type NatsCredentialKind } from './helpers/nats-auth.js';
import { CliProcess, killStrayChildren } from './helpers/stack.js';
import { makeTestPki, natsTlsBlock, type TestPki } from './helpers/tls.js';

// Every process (worker, coordinator, CLI, simulated agents) against nats-servers with mutual TLS and
// one credential kind each, and a redis-server with TLS only, client certificates and an ACL user
// (the default user off, CONFIG forbidden so the maxmemory-policy check reads INFO). For each kind
// the cluster decides every correlation once, and no secret shows in any output.

const REDIS_PASSWORD = 'redis-pw-4e8b2c6d';
const CORRELATIONS = 200;

let pki: TestPki;
let dir: string;
let redis: RedisServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'at-orch-auth-'));
  pki = makeTestPki();
  redis = await RedisServer.start({
    tls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, caFile: pki.caFile },
    args: ['--user', 'default', 'off', '--user', 'orch', 'on', `>${REDIS_PASSWORD}`, '~*', '&*', '+@all', '-config'],
  });
});
afterAll(async () => {
  killStrayChildren();
  await redis?.dispose();
  pki?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function tlsEnv(): Env {
  return {
    NATS_TLS_CA_FILE: pki.caFile,
    NATS_TLS_CERT_FILE: pki.clientCertFile,
    NATS_TLS_KEY_FILE: pki.clientKeyFile,
    REDIS_URL: redis.url,
    REDIS_USERNAME: 'orch',
    REDIS_PASSWORD,
    REDIS_TLS_CA_FILE: pki.caFile,
    REDIS_TLS_CERT_FILE: pki.clientCertFile,
    REDIS_TLS_KEY_FILE: pki.clientKeyFile,
  };
}

function clusterEnv(nats: NatsServer, kind: NatsCredentialKind, prefix: string): Env {
  return {
    ...tlsEnv(),
    ...kind.env,
    NATS_URL: kind.url(`127.0.0.1:${nats.port}`),
    REDIS_KEY_PREFIX: prefix,
    CLUSTER_SECRET: 'cluster-secret-for-auth-tests',
    OPERATOR_TOKEN: 'operator-token-for-auth-tests',
    COORDINATOR: 'off',
    PARTITIONS: '8',
    // The test nats-server stores at most 4 GB.
    STREAM_MAX_BYTES: String(256 * 1024 * 1024),
    HEARTBEAT_INTERVAL_MS: '200',
    WORKER_LEASE_MS: '1500',
    LEADER_LEASE_MS: '1500',
    DECISION_TIMEOUT_SEC: '1',
    STATE_TTL_SECONDS: '30',
    SHUTDOWN_GRACE_SEC: '5',
    LOG_LEVEL: 'info',
  };
}

/** Counts decisions per corr_id on orchestrated.decision, over a connection with the same settings. */
async function decisionCounter(env: Env): Promise<{ byCorr: Map<string, number>; waitFor(n: number): Promise<void>; close(): Promise<void> }> {
  const config = loadConfig(env);
  const link = await NatsLink.connect({ servers: config.nats.servers, auth: config.nats.auth, name: 'test-decisions', log: memoryLogger().log });
  const byCorr = new Map<string, number>();
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  link.nc.subscribe('orchestrated.decision', {
    callback: (_err, msg) => {
      const d = msg.json<Decision>();
      byCorr.set(d.corr_id, (byCorr.get(d.corr_id) ?? 0) + 1);
      for (const w of waiters.filter((x) => byCorr.size >= x.n)) w.resolve();
    },
  });
  await link.nc.flush();
  return {
    byCorr,
    waitFor: (n) =>
      byCorr.size >= n
        ? Promise.resolve()
        : new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`expected ${n} decided correlations, have ${byCorr.size}`)), 60_000);
            waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
          }),
    close: () => link.close(),
  };
}

async function stop(p: CliProcess): Promise<number | null> {
  p.kill('SIGTERM');
  return p.exited();
}

function expectNoSecret(kind: NatsCredentialKind, outputs: readonly string[]): void {
  const all = outputs.join('\n');
  for (const secret of [...kind.secrets, REDIS_PASSWORD]) expect(all).not.toContain(secret);
}

const KINDS: Array<() => Promise<NatsCredentialKind> | NatsCredentialKind> = [userPasswordKind, tokenKind, () => nkeyKind(dir), () => credsKind(dir)];

describe('each NATS credential kind, with mutual TLS, and Redis with TLS and an ACL user', () => {
  it.each(KINDS.map((make, i) => [['user/password', 'token', 'nkey', 'creds'][i], make] as const))(
    '%s: worker, coordinator, CLI and sim agents connect; every correlation decided once; no secret in any output',
    async (_name, make) => {
      const kind = await make();
      const nats = await NatsServer.start({ config: `${kind.serverConfig}\n${natsTlsBlock(pki)}` });
      const processes: CliProcess[] = [];
      try {
        const env = clusterEnv(nats, kind, `auth-${randomUUID().slice(0, 6)}`);
        // The worker gives credentials in the URL where the kind has a URL form (user:password@, token@).
        const workerEnv = kind.name === 'user/password' || kind.name === 'token'
          ? { ...env, NATS_USER: '', NATS_PASSWORD: '', NATS_TOKEN: '', NATS_URL: kind.url(`127.0.0.1:${nats.port}`, true) }
          : env;
        const coordinator = await CliProcess.started({ ...env, COORDINATOR_ID: 'coord-auth' }, 30_000, ['coordinator'], /"msg":"coordinator started"/);
        processes.push(coordinator);
        const worker = await CliProcess.started({ ...workerEnv, WORKER_ID: 'w-auth' });
        processes.push(worker);
        const decisions = await decisionCounter(env);
        // Redis is reached too (TLS, client certificate, ACL user): not deciding from memory.
        const port = /"http_port":(\d+)/.exec(worker.output.join('\n'))?.[1];
        const health = await (await fetch(`http://127.0.0.1:${port}/health`)).text();
        expect(JSON.parse(health)).toMatchObject({ status: 'healthy', nats_connected: true, redis_connected: true });
        expectNoSecret(kind, [health]);

        // The CLI: status names the worker once the leader has given it the partitions.
        let status: { workers: Array<{ id: string; partitions: number }> } = { workers: [] };
        for (let tries = 0; tries < 100 && status.workers.find((w) => w.id === 'w-auth')?.partitions !== 8; tries += 1) {
          const r = await CliProcess.run(env, ['status', '--json']);
          expect(r.code, r.output.join('\n')).toBe(0);
          status = JSON.parse(r.stdout) as typeof status;
          expectNoSecret(kind, r.output);
        }
        expect(status.workers).toEqual([expect.objectContaining({ id: 'w-auth', partitions: 8 })]);

        const sim = await CliProcess.run(env, ['sim', 'agents', '--count', String(CORRELATIONS), '--rate', '400', '--seed', '3']);
        expect(sim.code, sim.output.join('\n')).toBe(0);
        expect(sim.output.some((l) => l.includes('"msg":"agents done"') && l.includes(`"published":${CORRELATIONS}`))).toBe(true);
        expectNoSecret(kind, sim.output);

        await decisions.waitFor(CORRELATIONS);
        expect(decisions.byCorr.size).toBe(CORRELATIONS);
        expect([...decisions.byCorr.values()].filter((n) => n > 1)).toEqual([]);
        await decisions.close();
        for (const p of processes.reverse()) expect(await stop(p)).toBe(0);
        expectNoSecret(kind, [...worker.output, ...coordinator.output]);
      } finally {
        killStrayChildren();
        await nats.dispose();
      }
    },
  );
});
