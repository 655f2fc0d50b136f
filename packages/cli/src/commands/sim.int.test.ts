import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@at-orchestrator/contracts';
import { NatsServer } from '@at-orchestrator/local-servers';
import { NatsLink, ensureJetStreamTopology, memoryLogger } from '@at-orchestrator/runtime';

// `at-orchestrator sim agents` as a user runs it: the built bin against a private nats-server.

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;

let nats: NatsServer;

beforeAll(async () => {
  nats = await NatsServer.start();
  const { log } = memoryLogger();
  const link = await NatsLink.connect({ servers: [nats.url], name: 'sim-test', log });
  // The signal stream exists, as in a deployment: JetStream accepts what the agents publish.
  await ensureJetStreamTopology(link.nc, loadConfig({ NATS_URL: nats.url }), log);
  await link.close();
});
afterAll(async () => {
  await nats?.dispose();
});

function sim(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, 'sim', ...args], { env: { PATH: process.env.PATH, NATS_URL: nats.url, LOG_LEVEL: 'info' }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

describe('at-orchestrator sim agents', () => {
  it('publishes --count correlations at --rate, reports them and exits 0 with nothing on stderr', async () => {
    // 60 correlations at 600/s: the agents wait between sends 59 times on the same stop signal.
    const result = await sim(['agents', '--count', '60', '--rate', '600', '--seed', '7']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const done = result.stdout
      .split('\n')
      .filter((l) => l.includes('"msg":"agents done"'))
      .map((l) => JSON.parse(l) as { published: number; failed: number });
    expect(done).toEqual([expect.objectContaining({ published: 60, failed: 0 })]);
  });
});
