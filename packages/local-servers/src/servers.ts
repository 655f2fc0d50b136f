import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { findServerBinary } from './binaries.js';

/** A free TCP port on 127.0.0.1, as the kernel hands it out. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface ServerOptions {
  /** Folder for data and logs; a fresh temporary folder when absent (removed on dispose). */
  dir?: string;
  /** Install Debian's package when the binary is missing (root + apt-get only). */
  install?: boolean;
  log?: (line: string) => void;
  /** Wait at most this long for the server to say it is ready. */
  startTimeoutMs?: number;
  /** Extra environment of the server process (e.g. the passwords a configuration file reads). */
  env?: Record<string, string>;
}

/**
 * A private server process on free ports. stop/start keep the ports and the data folder, so a test
 * can restart a server and clients reconnect to the same address; pause/resume send SIGSTOP/SIGCONT.
 */
export abstract class LocalServer {
  protected child: ChildProcess | undefined;
  private readonly ownsDir: boolean;
  readonly dir: string;
  private output = '';

  protected constructor(
    protected readonly bin: string,
    readonly port: number,
    options: ServerOptions,
    private readonly readyPattern: RegExp,
  ) {
    this.ownsDir = options.dir === undefined;
    this.dir = options.dir ?? mkdtempSync(join(tmpdir(), 'at-orch-'));
    mkdirSync(this.dir, { recursive: true });
    this.startTimeoutMs = options.startTimeoutMs ?? 15_000;
    this.env = options.env;
  }
  private readonly startTimeoutMs: number;
  private readonly env: Record<string, string> | undefined;

  protected abstract args(): string[];
  abstract get url(): string;

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and resolves when its log says it is ready. */
  async start(): Promise<void> {
    if (this.running) return;
    this.output = '';
    const child = spawn(this.bin, this.args(), { stdio: ['ignore', 'pipe', 'pipe'], env: this.env === undefined ? undefined : { ...process.env, ...this.env } });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        child.kill('SIGKILL');
        reject(new Error(`${this.bin} did not become ready within ${this.startTimeoutMs} ms:\n${this.output.slice(-2000)}`));
      }, this.startTimeoutMs);
      const onData = (chunk: Buffer): void => {
        this.output += chunk.toString();
        if (this.output.length > 64_000) this.output = this.output.slice(-32_000);
        if (this.readyPattern.test(this.output)) {
          cleanup();
          resolve();
        }
      };
      const onExit = (code: number | null): void => {
        cleanup();
        reject(new Error(`${this.bin} exited with code ${code} before it was ready:\n${this.output.slice(-2000)}`));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        // Keep draining output so the child never blocks on a full pipe.
        child.stdout?.resume();
        child.stderr?.resume();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', onExit);
    });
  }

  /** Stops the process (SIGTERM, then SIGKILL after a grace period) and waits for it to exit. */
  async stop(graceMs = 5_000): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Stops the server and removes its data folder when the folder was its own. */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

/**
 * Builds a server on ports from freePort and starts it; when a port was taken between freePort and
 * the server's own bind (another test's server, a client's ephemeral port), tries again on new ports,
 * three times at most. Any other failure is thrown at once.
 */
export async function startOnFreePorts<S extends LocalServer>(make: () => Promise<S>): Promise<S> {
  for (let attempt = 1; ; attempt++) {
    const server = await make();
    try {
      await server.start();
      return server;
    } catch (err) {
      await server.dispose();
      if (attempt >= 3 || !/address already in use/i.test((err as Error).message)) throw err;
    }
  }
}

export interface NatsServerOptions extends ServerOptions {
  /** Also listen for NATS over WebSocket (for k6 and browsers), without TLS. */
  websocket?: boolean;
  /**
   * Run this configuration file (e.g. a shipped one) instead of the generated one: it is included
   * as it is, and only the address, the ports and the JetStream folder are replaced.
   */
  configFile?: string;
  /** More configuration appended to the generated file (authorization, tls, operator mode, …). */
  config?: string;
}

export class NatsServer extends LocalServer {
  readonly wsPort: number | undefined;
  readonly monitorPort: number;

  private constructor(bin: string, port: number, monitorPort: number, wsPort: number | undefined, options: NatsServerOptions) {
    super(bin, port, options, /Server is ready/);
    this.monitorPort = monitorPort;
    this.wsPort = wsPort;
    const jetstream = `jetstream { store_dir: ${JSON.stringify(join(this.dir, 'jetstream'))}, max_memory_store: 268435456, max_file_store: 4294967296 }`;
    if (options.configFile !== undefined) {
      // The file as it is, with this server's address, ports and folder after it (a later key wins;
      // nats-server resolves an include relative to the including file).
      const wrapper = [`include ${JSON.stringify(relative(this.dir, options.configFile))}`, `host: "127.0.0.1"`, `port: ${port}`, `http_port: ${monitorPort}`, jetstream];
      writeFileSync(join(this.dir, 'nats-server.conf'), wrapper.join('\n'));
      return;
    }
    const conf = [
      `listen: "127.0.0.1:${port}"`,
      `http: "127.0.0.1:${monitorPort}"`,
      `max_payload: 8MB`,
      jetstream,
      wsPort === undefined ? '' : `websocket { listen: "127.0.0.1:${wsPort}", no_tls: true, compression: false }`,
      options.config ?? '',
    ].join('\n');
    writeFileSync(join(this.dir, 'nats-server.conf'), conf);
  }

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const bin = findServerBinary('nats-server', options);
    return startOnFreePorts(async () => new NatsServer(bin, await freePort(), await freePort(), options.websocket === true ? await freePort() : undefined, options));
  }

  protected args(): string[] {
    return ['-c', join(this.dir, 'nats-server.conf')];
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string | undefined {
    return this.wsPort === undefined ? undefined : `ws://127.0.0.1:${this.wsPort}`;
  }
}

export interface RedisServerOptions extends ServerOptions {
  /** Serve TLS only (no plaintext port) with these files; `url` is then rediss://. */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** More redis-server arguments (e.g. an ACL user: ['--user', 'orch', 'on', '>pw', '~*', '+@all']). */
  args?: readonly string[];
}

export class RedisServer extends LocalServer {
  private readonly tls: RedisServerOptions['tls'];
  private readonly extraArgs: readonly string[];

  private constructor(bin: string, port: number, options: RedisServerOptions) {
    super(bin, port, options, /Ready to accept connections/);
    this.tls = options.tls;
    this.extraArgs = options.args ?? [];
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const bin = findServerBinary('redis-server', options);
    return startOnFreePorts(async () => new RedisServer(bin, await freePort(), options));
  }

  protected args(): string[] {
    const listen =
      this.tls === undefined
        ? ['--port', String(this.port)]
        : ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', this.tls.certFile, '--tls-key-file', this.tls.keyFile, '--tls-ca-cert-file', this.tls.caFile];
    return [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--protected-mode', 'yes', ...this.extraArgs];
  }

  get url(): string {
    return `${this.tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${this.port}`;
  }
}
