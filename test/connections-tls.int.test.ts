import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '@at-orchestrator/contracts';
import { NatsServer, RedisServer } from '@at-orchestrator/local-servers';
import { NatsLink, memoryLogger, NO_NATS_AUTH } from '@at-orchestrator/runtime';
import { NATS_PASSWORD, operatorMode, userPasswordKind } from './helpers/nats-auth.js';
import { CliProcess, killStrayChildren } from './helpers/stack.js';
import { makeTestPki, natsTlsBlock, type TestPki } from './helpers/tls.js';

// What an operator sees when a connection setting is wrong (exit 2 and one line naming the variable,
// or exit 1 for refused credentials, never the secret), an evicting Redis, and credential files
// rotated on disk being used at the next reconnect by the same process.

let dir: string;
let pki: TestPki;
let plainNats: NatsServer;
let tlsNats: NatsServer;
let redis: RedisServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'at-orch-conn-'));
  pki = makeTestPki('conn');
  [plainNats, tlsNats, redis] = await Promise.all([
    NatsServer.start(),
    NatsServer.start({ config: `${userPasswordKind().serverConfig}\n${natsTlsBlock(pki)}` }),
    RedisServer.start(),
  ]);
});
afterAll(async () => {
  killStrayChildren();
  await Promise.all([plainNats?.dispose(), tlsNats?.dispose(), redis?.dispose()]);
  pki?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function env(extra: Env): Env {
  return {
    NATS_URL: plainNats.url,
    REDIS_URL: redis.url,
    HTTP_PORT: '0',
    LOG_LEVEL: 'info',
    CLUSTER_SECRET: 'cluster-secret-for-conn-tests',
    OPERATOR_TOKEN: 'operator-token-for-conn-tests',
    STREAM_MAX_BYTES: String(64 * 1024 * 1024),
    SHUTDOWN_GRACE_SEC: '2',
    ...extra,
  };
}

const stderrLine = (output: readonly string[], pattern: RegExp): string | undefined => output.find((l) => pattern.test(l));

describe('refused at start', () => {
  it('NATS_TLS_REQUIRED=true against a plaintext server: worker, CLI and sim exit 2 with a clear line', async () => {
    const e = env({ NATS_TLS_REQUIRED: 'true' });
    const worker = await CliProcess.run(e, ['worker']);
    expect(worker.code).toBe(2);
    expect(stderrLine(worker.output, /^at-orchestrator: invalid configuration: NATS at nats:\/\/127\.0\.0\.1:\d+ offers no TLS, and TLS is required/)).toBeDefined();
    const status = await CliProcess.run(e, ['status']);
    expect(status.code).toBe(2);
    expect(stderrLine(status.output, /^at-orchestrator status: invalid configuration: NATS at .* offers no TLS/)).toBeDefined();
    const sim = await CliProcess.run(e, ['sim', 'agents', '--count', '1']);
    expect(sim.code).toBe(2);
    expect(stderrLine(sim.output, /^at-orchestrator sim: invalid configuration: NATS at .* offers no TLS/)).toBeDefined();
  });

  it.each([
    ['NATS_CREDS_FILE', () => ({ NATS_CREDS_FILE: join(dir, 'missing.creds') }), /NATS_CREDS_FILE=".*missing\.creds" cannot be read: no such file/],
    ['NATS_NKEY_SEED_FILE', () => ({ NATS_NKEY_SEED_FILE: file('bad.nk', 'SUNOTASEED') }), /NATS_NKEY_SEED_FILE=".*bad\.nk" is not valid: expected an NKey seed/],
    ['NATS_TLS_CA_FILE', () => ({ NATS_TLS_CA_FILE: file('bad-ca.pem', 'not a certificate') }), /NATS_TLS_CA_FILE=".*bad-ca\.pem" is not valid: expected a PEM certificate/],
    ['REDIS_TLS_CA_FILE', () => ({ REDIS_URL: 'rediss://127.0.0.1:1', REDIS_TLS_CA_FILE: join(dir, 'none.pem') }), /REDIS_TLS_CA_FILE=".*none\.pem" cannot be read: no such file/],
  ] as const)('%s missing or unparsable: the worker exits 2 naming the variable', async (_variable, extra, line) => {
    const r = await CliProcess.run(env(extra()), ['worker']);
    expect(r.code).toBe(2);
    expect(stderrLine(r.output, new RegExp(`^at-orchestrator: invalid configuration: ${line.source}`))).toBeDefined();
  });

  it('a wrong password: exit 1 with the server\'s refusal, and the password never printed (URL form and variables)', async () => {
    const tls = { NATS_TLS_CA_FILE: pki.caFile, NATS_TLS_CERT_FILE: pki.clientCertFile, NATS_TLS_KEY_FILE: pki.clientKeyFile };
    const wrong = 'wrong-pw-9d2f41';
    for (const auth of [{ NATS_URL: `nats://orch:${wrong}@127.0.0.1:${tlsNats.port}` }, { NATS_URL: tlsNats.url, NATS_USER: 'orch', NATS_PASSWORD: wrong }]) {
      const worker = await CliProcess.run(env({ ...tls, ...auth }), ['worker']);
      expect(worker.code).toBe(1);
      expect(stderrLine(worker.output, /^at-orchestrator: worker failed to start: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: Authorization Violation/)).toBeDefined();
      const status = await CliProcess.run(env({ ...tls, ...auth }), ['status']);
      expect(status.code).toBe(1);
      expect(stderrLine(status.output, /Authorization Violation/)).toBeDefined();
      expect([...worker.output, ...status.output].join('\n')).not.toContain(wrong);
    }
    // The right password on the same server works: the refusal above was the password's.
    const ok = await CliProcess.run(env({ ...tls, NATS_URL: tlsNats.url, NATS_USER: 'orch', NATS_PASSWORD }), ['status']);
    expect(stderrLine(ok.output, /Authorization Violation|cannot connect/)).toBeUndefined();
  });
});

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

describe("Redis's maxmemory-policy", () => {
  it('an evicting policy is refused at start: exit 2 with the policy to set', async () => {
    const evicting = await RedisServer.start({ args: ['--maxmemory-policy', 'volatile-lru'] });
    try {
      const r = await CliProcess.run(env({ REDIS_URL: evicting.url, COORDINATOR: 'off' }), ['worker']);
      expect(r.code).toBe(2);
      expect(stderrLine(r.output, /^at-orchestrator: invalid configuration: the Redis at REDIS_URL has maxmemory-policy volatile-lru, .*expected "maxmemory-policy noeviction"/)).toBeDefined();
    } finally {
      await evicting.dispose();
    }
  });

  it('Redis down at start: checked at the first connection; an evicting policy then stops the worker with exit 2', async () => {
    const evicting = await RedisServer.start({ args: ['--maxmemory-policy', 'allkeys-lru'] });
    try {
      await evicting.stop();
      const worker = await CliProcess.started(env({ REDIS_URL: evicting.url, COORDINATOR: 'off', WORKER_ID: 'w-late-redis' }));
      expect(worker.output.some((l) => l.includes('redis unreachable at start'))).toBe(true);
      await evicting.start();
      expect(await worker.exited()).toBe(2);
      expect(stderrLine(worker.output, /^at-orchestrator: invalid configuration: the Redis at REDIS_URL has maxmemory-policy allkeys-lru/)).toBeDefined();
    } finally {
      await evicting.dispose();
    }
  });
});

/** Resolves at the link's next reconnect. */
async function nextReconnect(link: NatsLink): Promise<void> {
  for await (const s of link.nc.status()) if (s.type === 'reconnect') return;
}

/** Resolves once the server has refused the link's credentials `n` times. */
async function authRefusals(link: NatsLink, n: number): Promise<void> {
  let seen = 0;
  for await (const s of link.nc.status()) {
    if (s.type === 'error' && /authorization/i.test(String(s.error))) seen += 1;
    if (seen >= n) return;
  }
}

/** A message published on the link comes back to a subscription of the same link. */
async function roundTrip(link: NatsLink, subject: string): Promise<string> {
  const sub = link.nc.subscribe(subject, { max: 1 });
  link.nc.publish(subject, 'ping');
  for await (const m of sub) return m.string();
  throw new Error('subscription ended without a message');
}

describe('rotation: a replaced credential file is used from the next reconnect, without a restart', () => {
  it('.creds: the file now holds a user of another account, and the server only knows that account', async () => {
    const mode = await operatorMode(2);
    const serverDir = join(dir, 'creds-server');
    mkdirSync(serverDir);
    writeFileSync(join(serverDir, 'auth.conf'), mode.serverConfig([0]));
    const nats = await NatsServer.start({ dir: serverDir, config: 'include "auth.conf"' });
    try {
      const credsFile = join(dir, 'rotating.creds');
      await mode.writeUserCreds(credsFile, 0);
      const link = await NatsLink.connect({ servers: [nats.url], auth: { ...NO_NATS_AUTH, credsFile }, name: 'rotation', log: memoryLogger().log });
      expect(await roundTrip(link, 'rot.a')).toBe('ping');

      // The server moves first: the old user's account is gone, and the link is refused again and
      // again (nats.js would give up after two) until the new file lands; only that one gets in.
      writeFileSync(join(serverDir, 'auth.conf'), mode.serverConfig([1]));
      const refusedTwice = authRefusals(link, 2);
      const reconnected = nextReconnect(link);
      await nats.restart();
      await refusedTwice;
      await mode.writeUserCreds(credsFile, 1);
      await reconnected;
      expect(await roundTrip(link, 'rot.b')).toBe('ping');
      await link.close();
    } finally {
      await nats.dispose();
    }
  });

  it('CA, client certificate and key: the server now presents a certificate of a new CA and asks for a client certificate of it', async () => {
    const next = makeTestPki('next', join(dir, 'pki-next'));
    const serverDir = join(dir, 'tls-server');
    mkdirSync(serverDir);
    writeFileSync(join(serverDir, 'tls.conf'), natsTlsBlock(pki));
    const nats = await NatsServer.start({ dir: serverDir, config: 'include "tls.conf"' });
    try {
      const client = { caFile: join(dir, 'client-ca.pem'), certFile: join(dir, 'client.pem'), keyFile: join(dir, 'client.key') };
      copyFileSync(pki.caFile, client.caFile);
      copyFileSync(pki.clientCertFile, client.certFile);
      copyFileSync(pki.clientKeyFile, client.keyFile);
      const auth = { ...NO_NATS_AUTH, tls: { ...client, required: true } };
      const link = await NatsLink.connect({ servers: [nats.url], auth, name: 'tls-rotation', log: memoryLogger().log });
      expect(await roundTrip(link, 'tls.a')).toBe('ping');

      copyFileSync(next.caFile, client.caFile);
      copyFileSync(next.clientCertFile, client.certFile);
      copyFileSync(next.clientKeyFile, client.keyFile);
      writeFileSync(join(serverDir, 'tls.conf'), natsTlsBlock(next));
      const reconnected = nextReconnect(link);
      await nats.restart();
      await reconnected;
      expect(await roundTrip(link, 'tls.b')).toBe('ping');
      await link.close();
    } finally {
      await nats.dispose();
      next.dispose();
    }
  });
});
