import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type ConnectionOptions, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSubjects, DLQ_SUBJECT, DECISION_SUBJECT, STORED_DECISION_SUBJECT, loadConfig, signalSubject } from '@at-orchestrator/contracts';
import { NatsServer } from '@at-orchestrator/local-servers';
import { ensureJetStreamTopology, memoryLogger } from '@at-orchestrator/runtime';
import { listDeadLetters, redriveDeadLetters } from '@at-orchestrator/worker';

/**
 * The shipped bus permissions (deploy/nats/nats.conf, as it is) on a real nats-server: each role is
 * refused what it must not do, and the flows each role needs still work.
 *
 * A refused publish is reported to the publisher asynchronously (an error on its status stream) and
 * the message is dropped. So every refused publish is followed, on the same connection, by an allowed
 * one: the observer (the admin user) subscribes to both subjects, and once the allowed message has
 * arrived, the refused one would have arrived before it (one connection's messages keep their order).
 */

const SHIPPED = fileURLToPath(new URL('../deploy/nats/nats.conf', import.meta.url));
const SHIPPED_TLS = fileURLToPath(new URL('../deploy/nats/nats-tls.conf', import.meta.url));
const USERS = ['admin', 'coordinator', 'worker', 'operator', 'decisions', 'dead-letters', 'agent-momentum', 'agent-risk', 'agent-correlation'] as const;
type User = (typeof USERS)[number];

// Letters and digits only: the server parses a variable's value as it would a value in the file.
const passwords = Object.fromEntries(USERS.map((u) => [u, `p${randomBytes(16).toString('hex')}`])) as Record<User, string>;
const passwordEnv = Object.fromEntries(USERS.map((u) => [`NATS_${u.toUpperCase().replaceAll('-', '_')}_PASSWORD`, passwords[u]]));

/** A connection that records the permission violations the server reports to it. */
interface Watched {
  nc: NatsConnection;
  violations: { operation: string; subject: string }[];
  /** Resolves when the server has reported a violation on `subject`. */
  violation(subject: string): Promise<{ operation: string; subject: string }>;
}

let server: NatsServer;
const open: NatsConnection[] = [];

async function as(user: User, url = server.url, extra: Partial<ConnectionOptions> = {}): Promise<Watched> {
  const nc = await connect({ servers: url, user, pass: passwords[user], name: `perm-test-${user}`, ...extra });
  open.push(nc);
  const violations: Watched['violations'] = [];
  const waiters: { subject: string; resolve: (v: { operation: string; subject: string }) => void }[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type !== 'error') continue;
      const e = s.error as Error & { operation?: string; subject?: string };
      if (e.name !== 'PermissionViolationError') continue;
      const v = { operation: e.operation ?? '', subject: e.subject ?? '' };
      violations.push(v);
      for (const w of waiters.filter((x) => x.subject === v.subject)) w.resolve(v);
    }
  })();
  return {
    nc,
    violations,
    violation: (subject) => {
      const seen = violations.find((v) => v.subject === subject);
      return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ subject, resolve }));
    },
  };
}

/** The admin user, subscribed to `subjects`, collecting what arrives there. */
async function observe(subjects: string[]): Promise<{ seen: string[]; arrived: (subject: string) => Promise<void>; close: () => void }> {
  const { nc } = await as('admin');
  const seen: string[] = [];
  const waiters: { subject: string; resolve: () => void }[] = [];
  const subs = subjects.map((s) =>
    nc.subscribe(s, {
      callback: (_err, msg: Msg) => {
        seen.push(msg.subject);
        for (const w of waiters.filter((x) => x.subject === msg.subject)) w.resolve();
      },
    }),
  );
  await nc.flush();
  return {
    seen,
    arrived: (subject) => (seen.includes(subject) ? Promise.resolve() : new Promise((resolve) => waiters.push({ subject, resolve }))),
    close: () => subs.forEach((s) => s.unsubscribe()),
  };
}

/**
 * `user` publishes to `denied` then to `allowed`: the allowed one arrives, the denied one never does,
 * and the server reported the denied subject as a publish violation.
 */
async function expectRefused(user: User, denied: string, allowed: string): Promise<void> {
  const observer = await observe([denied, allowed]);
  const role = await as(user);
  role.nc.publish(denied, 'forged');
  role.nc.publish(allowed, 'fine');
  await role.nc.flush();
  await observer.arrived(allowed);
  // Had the server let it through, the refused message would have arrived first.
  expect(observer.seen, `${user} → ${denied}`).toEqual([allowed]);
  await expect(role.violation(denied)).resolves.toEqual({ operation: 'publish', subject: denied });
  expect(role.violations.map((v) => v.subject)).toEqual([denied]);
  observer.close();
  await role.nc.close();
}

beforeAll(async () => {
  server = await NatsServer.start({ configFile: SHIPPED, env: passwordEnv });
});

afterAll(async () => {
  for (const nc of open) if (!nc.isClosed()) await nc.close();
  await server?.dispose();
});

describe('the shipped configuration', () => {
  it('is valid for nats-server -t, and the server refuses to start when a password variable is missing', () => {
    const check = (env: Record<string, string>) => {
      try {
        execFileSync('nats-server', ['-c', SHIPPED, '-t'], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', stdio: 'pipe' });
        return { ok: true, output: '' };
      } catch (err) {
        return { ok: false, output: String((err as { stderr?: string }).stderr ?? err) };
      }
    };
    expect(check(passwordEnv)).toEqual({ ok: true, output: '' });
    const { NATS_WORKER_PASSWORD: _dropped, ...withoutWorker } = passwordEnv;
    const missing = check(withoutWorker);
    expect(missing.ok).toBe(false);
    expect(missing.output).toContain("'NATS_WORKER_PASSWORD'");
  });

  it("compose's configuration, with the shipped permissions mounted beside it, is valid too", () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-nats-'));
    try {
      mkdirSync(join(dir, 'shipped'));
      copyFileSync(fileURLToPath(new URL('../deploy/nats/permissions.conf', import.meta.url)), join(dir, 'shipped', 'permissions.conf'));
      copyFileSync(fileURLToPath(new URL('../deploy/compose/nats.conf', import.meta.url)), join(dir, 'nats.conf'));
      const env = { ...passwordEnv, NATS_SIMULATED_AGENTS_PASSWORD: 'psim' };
      const out = execFileSync('nats-server', ['-c', join(dir, 'nats.conf'), '-t'], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', stdio: 'pipe' });
      expect(out).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a wrong password', async () => {
    await expect(connect({ servers: server.url, user: 'worker', pass: 'wrong', reconnect: false })).rejects.toThrow(/Authorization Violation/i);
  });
});

describe('each role is refused what it must not do', () => {
  it.each([
    ['another agent', signalSubject('risk')],
    ['a worker command', ClusterSubjects.worker('w1')],
    ['the assignment table', ClusterSubjects.assignment],
    ['a forwarded batch', ClusterSubjects.forward('w1')],
    ['an operator request', ClusterSubjects.leader],
    ['a decision', DECISION_SUBJECT],
    ['a decision to store', STORED_DECISION_SUBJECT],
    ['a dead letter', DLQ_SUBJECT],
  ])('an agent cannot publish %s (%s)', async (_what, subject) => {
    await expectRefused('agent-momentum', subject, signalSubject('momentum'));
  });

  it.each([
    ['a worker command', ClusterSubjects.worker('w1')],
    ['the assignment table', ClusterSubjects.assignment],
    ['a forwarded batch', ClusterSubjects.forward('w1')],
    ['a signal', signalSubject('momentum')],
  ])('an operator cannot publish %s (%s)', async (_what, subject) => {
    await expectRefused('operator', subject, ClusterSubjects.leader);
  });

  it.each([
    ['the assignment table', ClusterSubjects.assignment],
    ['a command to another worker', ClusterSubjects.worker('w2')],
    ['an operator request', ClusterSubjects.leader],
    ['a signal', signalSubject('momentum')],
    // Only the decisions stream puts decisions there (RePublish of what it stored).
    ['a decision straight to subscribers', DECISION_SUBJECT],
  ])('a worker cannot publish %s (%s)', async (_what, subject) => {
    await expectRefused('worker', subject, ClusterSubjects.forward('w2'));
  });

  it.each([
    ['a decision', DECISION_SUBJECT],
    ['a decision to store', STORED_DECISION_SUBJECT],
    ['a forwarded batch', ClusterSubjects.forward('w1')],
    ['a signal', signalSubject('momentum')],
  ])('a coordinator cannot publish %s (%s)', async (_what, subject) => {
    await expectRefused('coordinator', subject, ClusterSubjects.assignment);
  });

  it('the decision consumer cannot publish a decision', async () => {
    await expectRefused('decisions', DECISION_SUBJECT, '$JS.API.INFO');
    await expectRefused('decisions', STORED_DECISION_SUBJECT, '$JS.API.INFO');
  });

  it.each([
    ['an operator cannot listen as the leader', 'operator' as User, ClusterSubjects.leader],
    ['an operator cannot listen as a worker', 'operator' as User, ClusterSubjects.worker('w1')],
    ['a worker cannot listen as the leader', 'worker' as User, ClusterSubjects.leader],
    ['an agent cannot read decisions', 'agent-momentum' as User, 'orchestrated.>'],
    ['an agent cannot read forwarded batches', 'agent-momentum' as User, 'orchestrator.fwd.*'],
  ])('%s (subscribe %s)', async (_what, user, subject) => {
    const role = await as(user);
    const sub = role.nc.subscribe(subject);
    await role.nc.flush();
    await expect(role.violation(subject)).resolves.toEqual({ operation: 'subscription', subject });
    // nats.js closes a refused subscription with the server's error.
    await expect(sub.closed).resolves.toBeInstanceOf(Error);
    await role.nc.close();
  });
});

describe('the flows each role needs work with the shipped users', () => {
  // Small streams: the test server's JetStream holds 4 GB, less than three streams of the default size.
  const config = loadConfig({ NATS_URL: 'nats://127.0.0.1:4222', STREAM_MAX_BYTES: String(64 * 1024 * 1024) });

  it('a worker creates the streams and the shared durable, pulls and acks; an agent publishes its signal; decisions reach the decision consumer', async () => {
    const worker = await as('worker');
    await ensureJetStreamTopology(worker.nc, config, memoryLogger().log);
    // A second start finds everything in place (info only).
    await ensureJetStreamTopology(worker.nc, config, memoryLogger().log);

    const agent = await as('agent-momentum');
    const ack = await jetstream(agent.nc).publish(signalSubject('momentum'), '{"corr_id":"c1"}');
    expect(ack.stream).toBe(config.nats.stream);

    const consumer = await jetstream(worker.nc).consumers.get(config.nats.stream, config.nats.durable);
    const msg = await consumer.next({ expires: 5_000 });
    expect(msg?.subject).toBe(signalSubject('momentum'));
    expect(await msg!.ackAck()).toBe(true);
    // A message past MAX_DELIVER is read back by its sequence for the dead letter.
    const stored = await (await jetstreamManager(worker.nc)).streams.getMessage(config.nats.stream, { seq: ack.seq });
    expect(stored?.subject).toBe(signalSubject('momentum'));

    const decisions = await as('decisions');
    const sub = decisions.nc.subscribe('orchestrated.>', { max: 1 });
    await decisions.nc.flush();
    const published = await jetstream(worker.nc).publish(STORED_DECISION_SUBJECT, '{"corr_id":"c1"}', { msgID: 'c1' });
    expect(published.stream).toBe(config.nats.decisionStream);
    expect((await jetstream(worker.nc).publish(DLQ_SUBJECT, '{"reason":"test"}')).stream).toBe(config.nats.dlqStream);
    // The decisions stream republishes what it stored: the decision consumer receives it on orchestrated.decision.
    for await (const m of sub) expect(m.subject).toBe(DECISION_SUBJECT);
    // And reads it through a durable of its own, on the stored subject.
    const jsmDecisions = await jetstreamManager(decisions.nc, { checkAPI: false });
    await jsmDecisions.consumers.add(config.nats.decisionStream, { durable_name: 'execution', ack_policy: AckPolicy.Explicit, filter_subject: STORED_DECISION_SUBJECT });
    const fromStream = await (await jetstream(decisions.nc).consumers.get(config.nats.decisionStream, 'execution')).next({ expires: 5_000 });
    expect([fromStream?.subject, fromStream?.json<{ corr_id: string }>().corr_id]).toEqual([STORED_DECISION_SUBJECT, 'c1']);
    expect(await fromStream!.ackAck()).toBe(true);

    // The coordinator reads the durable's lag for the status page.
    const jsm = await jetstreamManager((await as('coordinator')).nc, { checkAPI: false });
    expect((await jsm.consumers.info(config.nats.stream, config.nats.durable)).num_pending).toBe(0);
    expect([...worker.violations, ...agent.violations, ...decisions.violations]).toEqual([]);
  });

  it('the dead-letter user lists letters and re-drives one to its agent subject, and can do nothing else', async () => {
    const worker = await as('worker');
    await ensureJetStreamTopology(worker.nc, config, memoryLogger().log);
    const letter = {
      reason: 'bad_json',
      detail: 'test',
      subject: signalSubject('risk'),
      received_at: new Date(0).toISOString(),
      worker_id: 'w1',
      payload_b64: Buffer.from('{"corr_id":"dl1"}').toString('base64'),
    };
    const stored = await jetstream(worker.nc).publish(DLQ_SUBJECT, JSON.stringify(letter));
    const dlq = await as('dead-letters');
    const listed = await listDeadLetters(dlq.nc, config.nats.dlqStream, 'bad_json', 10);
    expect(listed.map((l) => [l.seq, l.subject])).toContainEqual([stored.seq, signalSubject('risk')]);
    const [redriven] = await redriveDeadLetters(dlq.nc, config.nats.dlqStream, [stored.seq]);
    expect(redriven).toMatchObject({ ok: true, subject: signalSubject('risk'), stream: config.nats.stream });
    expect(dlq.violations).toEqual([]);
    await expectRefused('dead-letters', ClusterSubjects.worker('w1'), signalSubject('risk'));
    await expectRefused('dead-letters', DECISION_SUBJECT, signalSubject('risk'));
  });

  it('a worker cannot delete or purge a stream, nor delete the durable', async () => {
    const jsm = await jetstreamManager((await as('worker')).nc);
    await expect(jsm.streams.delete(config.nats.decisionStream)).rejects.toThrow();
    await expect(jsm.streams.purge(config.nats.stream)).rejects.toThrow();
    await expect(jsm.consumers.delete(config.nats.stream, config.nats.durable)).rejects.toThrow();
    const admin = await jetstreamManager((await as('admin')).nc);
    expect((await admin.streams.info(config.nats.decisionStream)).config.name).toBe(config.nats.decisionStream);
  });

  it('a coordinator requests a worker, a worker forwards to a worker, an operator (and the CLI in a coordinator pod) asks the leader', async () => {
    const worker = await as('worker');
    const coordinator = await as('coordinator');
    const operator = await as('operator');
    worker.nc.subscribe(ClusterSubjects.worker('w1'), { callback: (_e, m) => void m.respond('ok-command') });
    worker.nc.subscribe(ClusterSubjects.forward('w1'), { callback: (_e, m) => void m.respond('ok-forward') });
    coordinator.nc.subscribe(ClusterSubjects.leader, { callback: (_e, m) => void m.respond('ok-leader') });
    const table = await observe([ClusterSubjects.assignment]);
    await Promise.all([worker.nc.flush(), coordinator.nc.flush()]);

    expect((await coordinator.nc.request(ClusterSubjects.worker('w1'), 'assign', { timeout: 5_000 })).string()).toBe('ok-command');
    const other = await as('worker');
    expect((await other.nc.request(ClusterSubjects.forward('w1'), 'batch', { timeout: 5_000 })).string()).toBe('ok-forward');
    expect((await operator.nc.request(ClusterSubjects.leader, 'status', { timeout: 5_000 })).string()).toBe('ok-leader');
    // The CLI run inside a coordinator pod asks the leader as the coordinator.
    const standby = await as('coordinator');
    expect((await standby.nc.request(ClusterSubjects.leader, 'status', { timeout: 5_000 })).string()).toBe('ok-leader');
    coordinator.nc.publish(ClusterSubjects.assignment, 'table');
    await table.arrived(ClusterSubjects.assignment);
    const workerSeesTable = worker.nc.subscribe(ClusterSubjects.assignment, { max: 1 });
    await worker.nc.flush();
    coordinator.nc.publish(ClusterSubjects.assignment, 'table');
    for await (const m of workerSeesTable) expect(m.string()).toBe('table');
    expect([...worker.violations, ...coordinator.violations, ...operator.violations, ...other.violations, ...standby.violations]).toEqual([]);
  });
});

describe('the TLS variant (nats-tls.conf)', () => {
  it('serves the same users over mutual TLS, and refuses a client without a certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nats-tls-'));
    try {
      const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test-ca', '-keyout', 'ca.key', '-out', 'ca.crt');
      const leaf = (name: string, ext: string) => {
        ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
        writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
        ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-out', `${name}.crt`, '-extfile', `${name}.ext`);
      };
      leaf('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
      leaf('client', 'extendedKeyUsage=clientAuth');
      const tlsServer = await NatsServer.start({
        configFile: SHIPPED_TLS,
        env: {
          ...passwordEnv,
          NATS_SERVER_TLS_CERT_FILE: join(dir, 'server.crt'),
          NATS_SERVER_TLS_KEY_FILE: join(dir, 'server.key'),
          NATS_SERVER_TLS_CA_FILE: join(dir, 'ca.crt'),
        },
      });
      try {
        const url = `tls://127.0.0.1:${tlsServer.port}`;
        const tls = { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'client.crt'), keyFile: join(dir, 'client.key') };
        const operator = await as('operator', url, { tls });
        const coordinator = await as('coordinator', url, { tls });
        coordinator.nc.subscribe(ClusterSubjects.leader, { callback: (_e, m) => void m.respond('ok-leader') });
        await coordinator.nc.flush();
        expect((await operator.nc.request(ClusterSubjects.leader, 'status', { timeout: 5_000 })).string()).toBe('ok-leader');
        operator.nc.publish(ClusterSubjects.assignment, 'forged');
        await operator.nc.flush();
        await expect(operator.violation(ClusterSubjects.assignment)).resolves.toMatchObject({ operation: 'publish' });
        await expect(
          connect({ servers: url, user: 'operator', pass: passwords.operator, tls: { caFile: tls.caFile }, reconnect: false }),
        ).rejects.toThrow();
      } finally {
        await tlsServer.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
