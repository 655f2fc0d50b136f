import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NatsConnection } from '@nats-io/nats-core';
import type { HttpRoute, Logger } from '@at-orchestrator/runtime';
import type { ControlErrorCode } from '../control/control-api.js';
import { requestLeader } from '../control/leader-client.js';
import { CONSOLE_ACTIONS, type ConsoleAction, type ConsoleActionReply, type ConsoleSnapshot } from './console-data.js';
import type { ConsoleFeed } from './console-feed.js';

export const CONSOLE_PREFIX = '/console';

interface PageFile {
  readonly file: string;
  readonly type: string;
}

/** The page's files, served from dist/console/page (scripts/copy-assets.mjs copies them from src). */
const PAGE_FILES: Readonly<Record<string, PageFile>> = {
  '/console': { file: 'console.html', type: 'text/html; charset=utf-8' },
  '/console/': { file: 'console.html', type: 'text/html; charset=utf-8' },
  '/console/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
};

/**
 * The page's ES modules (console.js, the entry, and what it imports) are served by name: every file
 * of the page folder whose name is this pattern, as found when the server starts. Nothing else is
 * (no other folder, no dotted or slashed name, no file added later).
 */
const MODULE_NAME = /^[a-z0-9-]+\.js$/;
const MODULE_TYPE = 'text/javascript; charset=utf-8';

/** `/console/<name>.js` for every module file in dir, or none if dir cannot be read (the page then answers 500). */
function pageModules(dir: URL): ReadonlyMap<string, PageFile> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return new Map();
  }
  return new Map(names.filter((name) => MODULE_NAME.test(name)).sort().map((name) => [`${CONSOLE_PREFIX}/${name}`, { file: name, type: MODULE_TYPE }]));
}

/** The page runs only its own files: no inline script, no other origin, never inside a frame. */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

/** Open event streams per coordinator; more are answered 503. */
export const MAX_CONSOLE_STREAMS = 64;
/** A page that does not read its stream is dropped once this much waits for it. */
const MAX_STREAM_BACKLOG_BYTES = 4 * 1024 * 1024;
const MAX_ACTION_BODY_BYTES = 4 * 1024;

const HTTP_STATUS: Partial<Record<ControlErrorCode | 'NO_LEADER', number>> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 403,
  NO_SUCH_WORKER: 404,
  NO_SUCH_PARTITION: 404,
  WORKER_DRAINING: 409,
  NO_ELIGIBLE_WORKER: 409,
  NOT_LEADER: 503,
  UNAVAILABLE: 503,
  NO_LEADER: 503,
};

export interface ConsoleServerOptions {
  readonly nc: NatsConnection;
  readonly feed: ConsoleFeed;
  readonly log: Logger;
  /** Where console.html, console.css and the page's modules (*.js) are (default: ./page beside this module). */
  readonly pageDir?: URL;
  /** For an action's request to the leader (default 5000 ms). */
  readonly actionTimeoutMs?: number;
}

/**
 * The console's HTTP side (docs/console.md): the page, its event stream and the JSON API, mounted on
 * the coordinator's HTTP port. It holds no credential of its own: an action is sealed with the token
 * the page sends and checked by the leader exactly as a CLI request is, so without the operator
 * token the page can look but not act, whatever the page itself shows.
 */
export class ConsoleServer implements HttpRoute {
  readonly prefix = CONSOLE_PREFIX;
  private readonly streams = new Set<ServerResponse>();
  private readonly pages = new Map<string, Buffer>();
  private readonly pageDir: URL;
  private readonly modules: ReadonlyMap<string, PageFile>;

  constructor(private readonly options: ConsoleServerOptions) {
    this.pageDir = options.pageDir ?? new URL('./page/', import.meta.url);
    this.modules = pageModules(this.pageDir);
  }

  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method ?? 'GET';
    if (path === '/console/api/action') {
      if (method !== 'POST') return send(res, 405, { error: 'use POST' }, { allow: 'POST' });
      return this.action(req, res);
    }
    if (method !== 'GET' && method !== 'HEAD') return send(res, 405, { error: 'use GET' }, { allow: 'GET, HEAD' });
    const page = PAGE_FILES[path] ?? this.modules.get(path);
    if (page !== undefined) return this.page(res, page.file, page.type);
    switch (path) {
      case '/console/events':
        return this.stream(req, res);
      case '/console/api/snapshot': {
        const snapshot = await this.options.feed.snapshot();
        return snapshot === undefined ? send(res, 503, { error: 'no snapshot could be assembled' }) : send(res, 200, snapshot);
      }
      case '/console/api/plan':
        return this.plan(res);
      default:
        return send(res, 404, { error: 'not found', paths: [...Object.keys(PAGE_FILES), ...this.modules.keys(), '/console/events', '/console/api/snapshot', '/console/api/plan', '/console/api/action'] });
    }
  }

  /** Ends every event stream (the HTTP server then closes). */
  close(): void {
    for (const res of this.streams) res.end();
    this.streams.clear();
  }

  private async page(res: ServerResponse, file: string, type: string): Promise<void> {
    let body = this.pages.get(file);
    if (body === undefined) {
      try {
        body = await readFile(new URL(file, this.pageDir));
      } catch {
        return send(res, 500, { error: `the console page ${file} is missing from ${this.pageDir.pathname} (was the package built?)` });
      }
      this.pages.set(file, body);
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': body.length }).end(body);
  }

  private stream(req: IncomingMessage, res: ServerResponse): void {
    if (this.streams.size >= MAX_CONSOLE_STREAMS) {
      send(res, 503, { error: `too many open consoles on this coordinator (at most ${MAX_CONSOLE_STREAMS})` });
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    this.streams.add(res);
    const push = (snapshot: ConsoleSnapshot): void => {
      if (res.writableLength > MAX_STREAM_BACKLOG_BYTES) {
        this.options.log.warn('a console page stopped reading its event stream; closing it');
        res.end();
        return;
      }
      res.write(`event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
    };
    const latest = this.options.feed.latest;
    if (latest !== undefined) push(latest);
    const unsubscribe = this.options.feed.subscribe(push);
    const done = (): void => {
      unsubscribe();
      this.streams.delete(res);
    };
    req.once('close', done);
    res.once('close', done);
  }

  private async plan(res: ServerResponse): Promise<void> {
    const answer = await requestLeader(this.options.nc, { cmd: 'plan' }, this.options.actionTimeoutMs ?? 5_000);
    if (answer.kind !== 'reply') return send(res, 503, { ok: false, error: { code: 'NO_LEADER', message: answer.message } });
    if (!answer.reply.ok) return send(res, HTTP_STATUS[answer.reply.error.code as ControlErrorCode] ?? 500, answer.reply);
    send(res, 200, answer.reply.data);
  }

  private async action(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refuse = (status: number, code: string, message: string): void => send(res, status, { ok: false, error: { code, message } } satisfies ConsoleActionReply);
    // A form on another site cannot send JSON with an Authorization header without a CORS preflight,
    // which this server never grants.
    if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) {
      return refuse(415, 'BAD_REQUEST', 'send the action as application/json');
    }
    let raw: string;
    try {
      raw = await readBody(req, MAX_ACTION_BODY_BYTES);
    } catch (err) {
      res.setHeader('connection', 'close');
      return refuse(413, 'BAD_REQUEST', err instanceof Error ? err.message : String(err));
    }
    const action = parseAction(raw);
    if (typeof action === 'string') return refuse(400, 'BAD_REQUEST', action);
    const token = bearer(req.headers.authorization);
    const answer = await requestLeader(this.options.nc, { cmd: action.cmd, worker: action.worker, partition: action.partition }, this.options.actionTimeoutMs ?? 5_000, token);
    if (answer.kind !== 'reply') return refuse(503, 'NO_LEADER', answer.message);
    const reply = answer.reply;
    if (reply.ok) {
      this.options.log.info({ cmd: action.cmd, worker: action.worker, partition: action.partition }, 'console action carried out');
      return send(res, 200, reply satisfies ConsoleActionReply);
    }
    send(res, HTTP_STATUS[reply.error.code as ControlErrorCode] ?? 500, reply satisfies ConsoleActionReply);
  }
}

/** The token of `Authorization: Bearer <token>`, or undefined (the request then goes unsigned). */
function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/** A ConsoleAction, or what is wrong with the body. */
export function parseAction(raw: string): ConsoleAction | string {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return 'the body is not JSON';
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'the body must be a JSON object';
  const { cmd, worker, partition } = body as Record<string, unknown>;
  if (typeof cmd !== 'string' || !(CONSOLE_ACTIONS as readonly string[]).includes(cmd)) {
    return `cmd must be one of ${CONSOLE_ACTIONS.join(', ')}; got ${JSON.stringify(cmd)}`;
  }
  if (worker !== undefined && (typeof worker !== 'string' || worker.length > 256)) return 'worker must be a string (a worker id)';
  if (partition !== undefined && !Number.isInteger(partition)) return 'partition must be an integer';
  return { cmd: cmd as ConsoleAction['cmd'], worker: worker as string | undefined, partition: partition as number | undefined };
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Read no further: the answer closes the connection (see action()).
        req.pause();
        req.removeAllListeners('data');
        reject(new Error(`the body is over ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, ...headers, 'content-type': 'application/json' }).end(text);
}
