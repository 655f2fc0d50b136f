import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.js';

export interface HealthReport {
  /** healthy: all dependencies up; degraded: deciding without Redis; unhealthy: cannot decide. */
  status: 'healthy' | 'degraded' | 'unhealthy';
  [field: string]: unknown;
}

export interface HealthSource {
  health(): HealthReport;
  /** Ready to take work (started, owns what it should, not draining). */
  ready(): { ready: boolean; reason?: string };
}

/** More paths served beside the built-in ones: every path under `prefix` (any method) goes to `handle`. */
export interface HttpRoute {
  readonly prefix: string;
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
}

/**
 * GET /health (200, or 503 when unhealthy), GET /ready (200 or 503), GET /metrics (Prometheus text),
 * and the routes given (a coordinator's /console). The server holds no secrets, and the reports it
 * serves carry none.
 */
export class HealthServer {
  private server: Server | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly source: HealthSource,
    private readonly registry: Registry,
    private readonly log: Logger,
    private readonly routes: readonly HttpRoute[] = [],
  ) {}

  async start(port: number, host = '0.0.0.0'): Promise<number> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.error({ err }, 'http handler failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    server.keepAliveTimeout = 5_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const bound = (server.address() as AddressInfo).port;
    this.log.info({ http_port: bound }, `http server listening on port ${bound} (${this.paths().join(', ')})`);
    return bound;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      if (this.server === undefined) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = this.routes.find((r) => path === r.prefix || path.startsWith(`${r.prefix}/`));
    if (route !== undefined) {
      await route.handle(req, res, path);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/health': {
        const report = this.source.health();
        json(res, report.status === 'unhealthy' ? 503 : 200, report);
        return;
      }
      case '/ready': {
        const r = this.source.ready();
        json(res, r.ready ? 200 : 503, r);
        return;
      }
      case '/metrics': {
        const body = await this.registry.metrics();
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(body);
        return;
      }
      default:
        json(res, 404, { error: 'not found', paths: this.paths() });
    }
  }

  private paths(): string[] {
    return ['/health', '/ready', '/metrics', ...this.routes.map((r) => r.prefix)];
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
