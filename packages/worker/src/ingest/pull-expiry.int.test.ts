import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { NatsServer } from '@at-orchestrator/local-servers';
import { PULL_EXPIRES_MS, pullExpiryFor } from './signal-consumer.js';

/**
 * What the single-server pull expiry (30 s, pullExpiryFor) relies on: a worker that dies leaves no
 * pull request behind on the server, so signals published after its death go to the others at once
 * rather than into the dead request (to come back only after ack-wait). The victim is a real process
 * killed with SIGKILL, its consumer pulling as the worker's does.
 */
let server: NatsServer;
let nc: NatsConnection;
const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url));

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
});
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

describe('pull requests of a killed worker (single nats-server)', () => {
  it('the server reports no cluster, so the worker pulls with the 30 s expiry', () => {
    expect(pullExpiryFor(nc.info)).toBe(PULL_EXPIRES_MS.single);
  });

  it('are dropped with its connection: what is published after a SIGKILL is delivered to the next consumer at once, never redelivered', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'EXPIRY', subjects: ['expiry.>'] });
    // An ack-wait far beyond the test: a message delivered into a dead request would not come back in time.
    await jsm.consumers.add('EXPIRY', { durable_name: 'shared', ack_policy: AckPolicy.Explicit, ack_wait: nanos(120_000) });
    const victim = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { connect } from '@nats-io/transport-node';
         import { jetstream } from '@nats-io/jetstream';
         const nc = await connect({ servers: ${JSON.stringify(server.url)} });
         const messages = await (await jetstream(nc).consumers.get('EXPIRY', 'shared')).consume({ max_messages: 256, expires: ${PULL_EXPIRES_MS.single} });
         setTimeout(() => console.log('pulling'), 300);
         for await (const m of messages) console.log('got', m.seq);`,
      ],
      { cwd: PACKAGE_DIR, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      victim.on('exit', (code) => reject(new Error(`the victim exited early (${code})`)));
      victim.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('pulling')) resolve();
      });
    });
    victim.removeAllListeners('exit');
    const exited = new Promise((resolve) => victim.on('exit', resolve));
    victim.kill('SIGKILL');
    await exited;

    const js = jetstream(nc);
    for (let i = 0; i < 10; i++) await js.publish('expiry.signal', `s${i}`);
    const messages = await (await js.consumers.get('EXPIRY', 'shared')).consume({ max_messages: 256, expires: PULL_EXPIRES_MS.single });
    const seen: Array<{ seq: number; redelivered: boolean }> = [];
    for await (const m of messages) {
      seen.push({ seq: m.seq, redelivered: m.redelivered });
      m.ack();
      if (seen.length === 10) break;
    }
    expect(seen.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(seen.every((m) => !m.redelivered)).toBe(true);
  }, 30_000); // a signal lost into the dead request would only come back after the 120 s ack-wait
});
