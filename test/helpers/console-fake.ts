import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the coordinator's console server: serves the page's files from the sources
 * (packages/coordinator/src/console/page) under the same paths and CSP as the real one, a scripted
 * SSE stream, the plan and the action endpoint. For working on the page without a cluster, and for
 * browser tests of what the page alone decides (rendering 4096 partitions, the disconnected banner).
 * The shapes follow packages/coordinator/src/console/console-data.ts (copied loosely: the test
 * package does not depend on the coordinator).
 */

export const PAGE_DIR = new URL('../../packages/coordinator/src/console/page/', import.meta.url).pathname;

export const CONSOLE_CSP =
  "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

export interface FakePartition {
  partition: number;
  owner: string | null;
  epoch: number;
  phase: 'owned' | 'revoking' | 'unowned';
  next: string | null;
  pinned_to: string | null;
  open: number | null;
  oldest_open_ms: number | null;
}

export interface FakeMove {
  partition: number;
  from: string | null;
  to: string | null;
}

export type FakeSnapshot = Record<string, unknown> & { partitions: FakePartition[]; workers: Array<Record<string, unknown> & { id: string }> };

const FILES: Record<string, { file: string; type: string }> = {
  '/console': { file: 'console.html', type: 'text/html; charset=utf-8' },
  '/console/': { file: 'console.html', type: 'text/html; charset=utf-8' },
  '/console/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
  // The page's ES modules, as the real server serves them: every `[a-z0-9-]+.js` of the page folder.
  ...Object.fromEntries(
    readdirSync(PAGE_DIR)
      .filter((name) => /^[a-z0-9-]+\.js$/.test(name))
      .map((name) => [`/console/${name}`, { file: name, type: 'text/javascript; charset=utf-8' }]),
  ),
};

/** A snapshot of `workers` sharing `partitions` round-robin, everything owned at epoch epochBase (1000) + p. */
export function fakeSnapshot(opts: { partitions: number; workers: string[]; at?: number; tableVersion?: number; paused?: boolean; epochBase?: number }): FakeSnapshot {
  const at = opts.at ?? Date.now();
  const partitions: FakePartition[] = Array.from({ length: opts.partitions }, (_, p) => ({
    partition: p,
    owner: opts.workers.length === 0 ? null : opts.workers[p % opts.workers.length]!,
    epoch: (opts.epochBase ?? 1000) + p,
    phase: opts.workers.length === 0 ? 'unowned' : 'owned',
    next: null,
    pinned_to: null,
    open: p % 7,
    oldest_open_ms: p % 7 === 0 ? null : 40 * p,
  }));
  const workers = opts.workers.map((id) => ({
    id,
    state: 'live',
    drain_requested: false,
    capacity: 1,
    load: 10,
    version: '0.1.0',
    started_at: new Date(at - 60_000).toISOString(),
    lease_left_ms: 1200,
    partitions: partitions.filter((p) => p.owner === id).map((p) => p.partition),
    reported_owned: partitions.filter((p) => p.owner === id).map((p) => p.partition),
    pinned: [],
    heartbeat_age_ms: 180,
    open_correlations: 42,
    decided: 1000,
    forwarded: 200,
    fenced_writes: 0,
    dead_letters: {},
    decisions_per_s: 120.5,
    forwarded_per_s: 30,
  }));
  const history = Array.from({ length: 60 }, (_, i) => ({
    at: at - (59 - i) * 1000,
    decisions_per_s: 100 + 40 * Math.sin(i / 6),
    p99_ms: 20 + (i % 9),
    backlog: 10 + (i % 13),
    dlq_per_s: i % 17 === 0 ? 1 : 0,
  }));
  return {
    at,
    served_by: 'fake-coordinator',
    leader: { id: 'fake-coordinator', epoch: 1795814400000 },
    error: null,
    coordinators: [
      { id: 'fake-coordinator', leading: true, console_url: 'http://127.0.0.1/console', version: '0.1.0', started_at: new Date(at - 120_000).toISOString() },
      { id: 'fake-standby', leading: false, console_url: 'http://127.0.0.2/console', version: '0.1.0', started_at: new Date(at - 110_000).toISOString() },
    ],
    status: {
      coordinator: 'fake-coordinator',
      leader_epoch: 1795814400000,
      table_version: opts.tableVersion ?? 1,
      partitions: opts.partitions,
      paused: opts.paused ?? false,
      frozen: null,
      counts: { owned: partitions.filter((p) => p.phase === 'owned').length, revoking: 0, unowned: partitions.filter((p) => p.phase === 'unowned').length },
      handoffs_in_flight: 0,
      workers: [],
      lag: { stream: 'trading-events', durable: 'orchestrator-consumer', pending: 12, ack_pending: 3 },
    },
    workers,
    partitions,
    rates: { decisions_per_s: 361.5, p99_ms: 24, forwarded_per_s: 90, dlq_per_s: { schema_invalid: 0.5 }, backlog: 12 },
    history,
  };
}

export class ConsoleFake {
  /** Every action request received: the body and the Authorization header. */
  readonly actions: Array<{ body: unknown; authorization: string | undefined }> = [];
  /** Every URL requested (path and query). */
  readonly urls: string[] = [];
  plan: { paused: boolean; moves: FakeMove[]; deferred: FakeMove[]; workers: unknown[]; unapplied_pins: unknown[]; text: string } = {
    paused: false,
    moves: [],
    deferred: [],
    workers: [],
    unapplied_pins: [],
    text: 'nothing to move',
  };
  /** While true, /console/events answers 503 (a coordinator that cannot serve). */
  refuseStreams = false;
  /** Streams refused so far. */
  refusedStreams = 0;
  private readonly streams = new Set<ServerResponse>();
  private last: FakeSnapshot | undefined;

  private constructor(
    private readonly server: Server,
    readonly token: string,
  ) {}

  static async start(token = 'fake-operator-token'): Promise<ConsoleFake> {
    const server = createServer();
    const fake = new ConsoleFake(server, token);
    server.on('request', (req, res) => fake.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Open event streams. */
  get clients(): number {
    return this.streams.size;
  }

  /** Sends a snapshot to every open stream (and to streams opened later, once). */
  push(snapshot: FakeSnapshot): void {
    this.last = snapshot;
    const frame = `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`;
    for (const res of this.streams) res.write(frame);
  }

  /** Ends every open stream, as a coordinator that stops does. */
  dropStreams(): void {
    for (const res of this.streams) res.end();
    this.streams.clear();
  }

  async stop(): Promise<void> {
    this.dropStreams();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.urls.push(req.url ?? '/');
    const path = (req.url ?? '/').split('?')[0]!;
    const file = FILES[path];
    if (req.method === 'GET' && file !== undefined) {
      res.writeHead(200, { 'content-type': file.type, 'content-security-policy': CONSOLE_CSP, 'cache-control': 'no-store' });
      res.end(readFileSync(PAGE_DIR + file.file));
      return;
    }
    if (req.method === 'GET' && path === '/console/events') {
      if (this.refuseStreams) {
        this.refusedStreams += 1;
        json(res, 503, { error: 'refusing streams' });
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write('retry: 500\n\n');
      this.streams.add(res);
      res.on('close', () => this.streams.delete(res));
      if (this.last !== undefined) res.write(`event: snapshot\ndata: ${JSON.stringify(this.last)}\n\n`);
      return;
    }
    if (req.method === 'GET' && path === '/console/api/plan') {
      json(res, 200, this.plan);
      return;
    }
    if (req.method === 'POST' && path === '/console/api/action') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const authorization = req.headers.authorization;
        let parsed: unknown = null;
        try {
          parsed = JSON.parse(body);
        } catch {
          json(res, 400, { ok: false, error: { code: 'BAD_REQUEST', message: 'body is not JSON' } });
          return;
        }
        this.actions.push({ body: parsed, authorization });
        if (authorization !== `Bearer ${this.token}`) {
          json(res, 403, { ok: false, error: { code: 'UNAUTHORIZED', message: 'operator token missing or wrong' } });
          return;
        }
        json(res, 200, { ok: true, leader: 'fake-coordinator', leader_epoch: 1795814400000, data: { paused: true } });
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
