import { request as httpRequest, type IncomingMessage } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { DECISION_LATENCY_BUCKETS, ClusterSubjects } from '@at-orchestrator/contracts';
import { memoryLogger } from '@at-orchestrator/runtime';
import type { Coordinator } from '../coordinator.js';
import { useClusterHarness, OPERATOR_TOKEN } from '../../test/harness.js';
import type { ConsoleSnapshot } from './console-data.js';
import { ConsoleFeed } from './console-feed.js';
import { MAX_CONSOLE_STREAMS } from './console-server.js';

const h = useClusterHarness();

const P = 12;
const waitFor = <T>(fn: () => T | Promise<T>, timeout = 10_000): Promise<T> => vi.waitFor(fn, { timeout, interval: 50 });

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function call(c: Coordinator, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: c.httpPort, path, method: init.method ?? 'GET', headers: init.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.once('error', reject);
    req.end(init.body);
  });
}

const json = async <T>(answer: Promise<Answer>): Promise<T> => JSON.parse((await answer).body) as T;

function action(c: Coordinator, body: unknown, token?: string): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  return call(c, '/console/api/action', { method: 'POST', headers, body: JSON.stringify(body) });
}

/** An open event stream: the snapshots received so far, and a way to close it. */
function stream(c: Coordinator): Promise<{ snapshots: ConsoleSnapshot[]; status: number; close(): void }> {
  return new Promise((resolve, reject) => {
    const snapshots: ConsoleSnapshot[] = [];
    const req = httpRequest({ host: '127.0.0.1', port: c.httpPort, path: '/console/events' }, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^event: snapshot\ndata: (.*)$/s.exec(event);
          if (data !== null) snapshots.push(JSON.parse(data[1]!) as ConsoleSnapshot);
        }
      });
      res.on('error', () => undefined);
      resolve({ snapshots, status: res.statusCode ?? 0, close: () => req.destroy() });
    });
    req.once('error', reject);
    req.end();
  });
}

/** Cumulative latency counts with `n` observations of about `ms` each. */
function latency(n: number, ms: number): number[] {
  return [...DECISION_LATENCY_BUCKETS.map((bound) => (bound * 1000 >= ms ? n : 0)), n];
}

describe('the console', () => {
  it("shows the leader's table, the standby, and the workers' figures and rates", async () => {
    const a = await h.coordinator('c-a', { PARTITIONS: String(P) }, true);
    const b = await h.coordinator('c-b', { PARTITIONS: String(P) }, true);
    const w1 = await h.worker('w1');
    const w2 = await h.worker('w2');
    w1.stats = { decided: 0, forwarded: 0, fenced: 0, dead_letters: {}, latency: latency(0, 1), partitions: [] };
    await waitFor(async () => expect((await h.table()).every((s) => s.phase === 'owned' && s.owner !== null)).toBe(true));
    const p = [...w1.owned.keys()][0]!;
    w1.stats = { decided: 0, forwarded: 0, fenced: 2, dead_letters: { schema: 1 }, latency: latency(0, 1), partitions: [[p, 3, 1500]] };
    await w1.beat();

    // Served by either coordinator, it is the leader's view.
    const leader = [a, b].find((c) => c.state === 'leading')!;
    const standby = [a, b].find((c) => c !== leader)!;
    const seen = await waitFor(async () => {
      const snapshot = await json<ConsoleSnapshot>(call(standby, '/console/api/snapshot'));
      expect(snapshot.leader?.id).toBe(leader.id);
      expect(snapshot.served_by).toBe(standby.id);
      expect(snapshot.coordinators.map((c) => [c.id, c.leading])).toEqual([
        ['c-a', leader === a],
        ['c-b', leader === b],
      ]);
      expect(snapshot.partitions.find((row) => row.partition === p)).toMatchObject({ owner: 'w1', open: 3, oldest_open_ms: 1500 });
      expect(snapshot.workers.find((w) => w.id === 'w1')).toMatchObject({ fenced_writes: 2, dead_letters: { schema: 1 } });
      return snapshot;
    });
    const table = await h.table();
    expect(seen.partitions.map((row) => [row.partition, row.owner, row.epoch])).toEqual(table.map((s) => [s.partition, s.owner, s.epoch]));
    // A worker that reports no figures (an older version) shows none rather than zeros.
    expect(seen.workers.find((w) => w.id === 'w2')).toMatchObject({ decided: null, open_correlations: 0 });
    expect(seen.partitions.find((row) => row.owner === 'w2')).toMatchObject({ open: null });
    expect(standby.consoleUrl).toMatch(new RegExp(`:${standby.httpPort}/console$`));
    expect(seen.status?.console_url).toBe(leader.consoleUrl);

    // Rates come from the difference between two rounds of the workers' totals.
    w1.stats = { decided: 500, forwarded: 40, fenced: 2, dead_letters: { schema: 6 }, latency: latency(500, 4), partitions: [] };
    await w1.beat();
    const moving = await waitFor(async () => {
      const snapshot = await json<ConsoleSnapshot>(call(leader, '/console/api/snapshot'));
      expect(snapshot.rates.decisions_per_s).toBeGreaterThan(0);
      return snapshot;
    });
    expect(moving.rates.p99_ms).toBeGreaterThan(2);
    expect(moving.rates.p99_ms).toBeLessThanOrEqual(5);
    expect(moving.rates.dlq_per_s.schema).toBeGreaterThan(0);
    expect(moving.history.some((point) => point.decisions_per_s !== null && point.decisions_per_s > 0)).toBe(true);
  });

  it('asks the leader once per interval however many pages are open', async () => {
    const c = await h.coordinator('c-solo', { PARTITIONS: String(P) }, true);
    await h.worker('w1');
    const requests: string[] = [];
    const spy = h.nc.subscribe(ClusterSubjects.leader, { callback: (_err, msg) => void requests.push(msg.string()) });
    const pages = await Promise.all(Array.from({ length: 8 }, () => stream(c)));
    try {
      await waitFor(() => expect(Math.min(...pages.map((page) => page.snapshots.length))).toBeGreaterThanOrEqual(2));
      const from = requests.length;
      const first = pages[0]!.snapshots.length;
      await waitFor(() => expect(pages[0]!.snapshots.length).toBeGreaterThanOrEqual(first + 3));
      // Three rounds of status + workers + partitions, give or take a round at each end; eight pages
      // polling for themselves would have asked 72 times.
      expect(requests.length - from).toBeLessThanOrEqual(15);
      for (const page of pages) expect(page.snapshots.at(-1)?.leader?.id).toBe('c-solo');
    } finally {
      for (const page of pages) page.close();
      spy.unsubscribe();
    }
  });

  it('refuses more event streams than its bound', async () => {
    const c = await h.coordinator('c-bound', { PARTITIONS: String(P) }, true);
    const pages = await Promise.all(Array.from({ length: MAX_CONSOLE_STREAMS }, () => stream(c)));
    try {
      expect(pages.every((page) => page.status === 200)).toBe(true);
      const refused = await call(c, '/console/events');
      expect(refused.status).toBe(503);
      expect(refused.body).toContain(`at most ${MAX_CONSOLE_STREAMS}`);
    } finally {
      for (const page of pages) page.close();
    }
  });

  it('carries out an action only with the operator token, which the leader checks', async () => {
    // The coordinators hold OPERATOR_TOKEN themselves: the console must not lend it to the page.
    const c = await h.coordinator('c-act', { PARTITIONS: String(P) }, true);
    await h.worker('w1');
    const paused = async (): Promise<boolean> => ((await h.ask({ cmd: 'status' })) as { data: { paused: boolean } }).data.paused;

    const unsigned = await action(c, { cmd: 'pause' });
    expect(unsigned.status).toBe(403);
    expect(JSON.parse(unsigned.body)).toMatchObject({ ok: false, error: { code: 'UNAUTHORIZED' } });
    expect(JSON.parse(unsigned.body).error.message).toContain('not signed');
    const wrong = await action(c, { cmd: 'pause' }, 'not-the-operator-token');
    expect(wrong.status).toBe(403);
    expect(JSON.parse(wrong.body).error.message).toContain('another token');
    expect(wrong.body).not.toContain('not-the-operator-token');
    expect(await paused()).toBe(false);

    const done = await action(c, { cmd: 'pause' }, OPERATOR_TOKEN);
    expect(done.status).toBe(200);
    expect(JSON.parse(done.body)).toMatchObject({ ok: true, leader: 'c-act', data: { paused: true } });
    expect(await paused()).toBe(true);
    expect(JSON.parse((await action(c, { cmd: 'drain', worker: 'nobody' }, OPERATOR_TOKEN)).body)).toMatchObject({ ok: false, error: { code: 'NO_SUCH_WORKER' } });
    expect((await action(c, { cmd: 'resume' }, OPERATOR_TOKEN)).status).toBe(200);
    expect(await paused()).toBe(false);
  });

  it('refuses malformed actions before asking the leader', async () => {
    const c = await h.coordinator('c-bad', { PARTITIONS: String(P) }, true);
    const refusal = async (answer: Promise<Answer>): Promise<[number, string]> => {
      const { status, body } = await answer;
      return [status, (JSON.parse(body) as { error: { message: string } }).error.message];
    };
    expect(await refusal(action(c, { cmd: 'status' }, OPERATOR_TOKEN))).toEqual([400, expect.stringContaining('cmd must be one of rebalance, drain, move, pause, resume')]);
    expect(await refusal(action(c, { cmd: 'move', partition: 'x' }, OPERATOR_TOKEN))).toEqual([400, 'partition must be an integer']);
    expect(await refusal(call(c, '/console/api/action', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' }))).toEqual([400, 'the body is not JSON']);
    expect(await refusal(call(c, '/console/api/action', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"cmd":"pause"}' }))).toEqual([415, 'send the action as application/json']);
    expect((await call(c, '/console/api/action', { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(10_000) })).status).toBe(413);
    expect((await call(c, '/console/api/action')).status).toBe(405);
    expect((await call(c, '/console/events', { method: 'POST' })).status).toBe(405);
  });

  it('serves the page under a policy that runs only its own files', async () => {
    const c = await h.coordinator('c-page', { PARTITIONS: String(P) }, true);
    const page = await call(c, '/console');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(page.body).toContain('console.js');
    expect((await call(c, '/console/console.js')).headers['content-type']).toContain('text/javascript');
    expect((await call(c, '/console/console.css')).headers['content-type']).toContain('text/css');
    expect((await call(c, '/console/../package.json')).status).toBe(404);
    expect((await call(c, '/console/nothing')).status).toBe(404);
  });

  it('serves each module of the page folder by name, and nothing else', async () => {
    const c = await h.coordinator('c-modules', { PARTITIONS: String(P) }, true);
    const entry = await call(c, '/console/console.js');
    const imported = [...entry.body.matchAll(/from '\.\/([a-z0-9-]+\.js)'/g)].map((m) => m[1]!);
    expect(imported).toContain('partition-map.js');
    for (const name of imported) {
      const module = await call(c, `/console/${name}`);
      expect(module.status, name).toBe(200);
      expect(module.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect(module.headers['content-security-policy']).toContain("script-src 'self'");
      expect(module.headers['x-content-type-options']).toBe('nosniff');
    }
    // Only `[a-z0-9-]+.js` files found in the page folder: no way out of it, nothing absent, no other kind.
    for (const path of ['/console/../console-server.js', '/console/..%2Fconsole-server.js', '/console/page/console.js', '/console/x.js', '/console/Console.js', '/console/console.js.map', '/console/.js']) {
      expect((await call(c, path)).status, path).toBe(404);
    }
  });

  it('says when no leader answers', async () => {
    const { log } = memoryLogger();
    const feed = new ConsoleFeed({ nc: h.nc, coordinatorId: 'lonely', coordinators: async () => [], log, timeoutMs: 300 });
    const snapshot = await feed.snapshot();
    await feed.close();
    expect(snapshot).toMatchObject({ leader: null, partitions: [], workers: [] });
    expect(snapshot?.error).toContain('no coordinator leader answered');
  });
});
