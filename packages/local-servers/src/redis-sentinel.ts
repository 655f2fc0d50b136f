import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findServerBinary } from './binaries.js';
import { LocalServer, RedisServer, freePort, type ServerOptions } from './servers.js';

export interface RedisSentinelSetOptions extends Pick<ServerOptions, 'install' | 'log' | 'startTimeoutMs'> {
  /** The name the Sentinels monitor the primary under (default orch-primary). */
  masterName?: string;
  /** Sentinels (default 3; quorum 2). */
  sentinels?: number;
  /** Replicas of the primary (default 1). */
  replicas?: number;
  /** How long a silent primary is up before it is "subjectively down" (default 1000 ms; Sentinel's own default is 30 s). */
  downAfterMs?: number;
  /** Sentinel's failover-timeout (default 3000 ms). */
  failoverTimeoutMs?: number;
}

/** A RESP reply: what the small client below reads. */
type Resp = string | number | null | Error | Resp[];

/**
 * Sends one command to 127.0.0.1:`port` and reads one RESP reply (no dependency on a Redis client:
 * this package has none). Rejects when nobody answers within `timeoutMs`.
 */
export async function redisCommand(port: number, args: readonly string[], timeoutMs = 2_000): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`127.0.0.1:${port} did not answer ${args[0]} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      const parsed = parseResp(buffer, 0);
      if (parsed === undefined) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(parsed.value);
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

/** One RESP value from `buf` at `at`, or undefined while it is incomplete. */
function parseResp(buf: Buffer, at: number): { value: Resp; next: number } | undefined {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return undefined;
  const line = buf.toString('utf8', at + 1, eol);
  switch (String.fromCharCode(buf[at]!)) {
    case '+':
      return { value: line, next: eol + 2 };
    case '-':
      return { value: new Error(line), next: eol + 2 };
    case ':':
      return { value: Number(line), next: eol + 2 };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, next: eol + 2 };
      if (buf.length < eol + 2 + length + 2) return undefined;
      return { value: buf.toString('utf8', eol + 2, eol + 2 + length), next: eol + 2 + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next: eol + 2 };
      const items: Resp[] = [];
      let next = eol + 2;
      for (let i = 0; i < count; i++) {
        const item = parseResp(buf, next);
        if (item === undefined) return undefined;
        items.push(item.value);
        next = item.next;
      }
      return { value: items, next };
    }
    default:
      throw new Error(`not a RESP reply: ${JSON.stringify(buf.toString('utf8', at, Math.min(buf.length, at + 40)))}`);
  }
}

/** One `redis-server --sentinel` process with a generated sentinel.conf it may rewrite (it does, as it learns). */
export class RedisSentinelNode extends LocalServer {
  constructor(bin: string, port: number, dir: string, options: { masterName: string; primaryPort: number; quorum: number; downAfterMs: number; failoverTimeoutMs: number; startTimeoutMs?: number }) {
    super(bin, port, { dir, startTimeoutMs: options.startTimeoutMs ?? 15_000 }, /\+monitor master/);
    const conf = [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${JSON.stringify(dir)}`,
      'sentinel resolve-hostnames no',
      'sentinel announce-hostnames no',
      `sentinel monitor ${options.masterName} 127.0.0.1 ${options.primaryPort} ${options.quorum}`,
      `sentinel down-after-milliseconds ${options.masterName} ${options.downAfterMs}`,
      `sentinel failover-timeout ${options.masterName} ${options.failoverTimeoutMs}`,
      `sentinel parallel-syncs ${options.masterName} 1`,
    ].join('\n');
    writeFileSync(join(dir, 'sentinel.conf'), `${conf}\n`);
  }

  protected args(): string[] {
    return [join(this.dir, 'sentinel.conf'), '--sentinel'];
  }

  /** host:port, as REDIS_SENTINELS lists it. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `redis://${this.address}`;
  }
}

/**
 * Redis with Sentinel on loopback, for tests: a primary, its replicas (`--replicaof`) and three
 * Sentinels (quorum 2) with short timeouts. kill(i) takes a data node down (SIGKILL by default) and
 * restart(i) brings it back on the same port (an old primary returns empty, without persistence, and
 * the Sentinels make it a replica of the new one); primary() asks the Sentinels which node leads.
 */
export class RedisSentinelSet {
  private constructor(
    readonly masterName: string,
    /** The data nodes: index 0 is the first primary, the others its replicas. */
    readonly servers: readonly RedisServer[],
    readonly sentinels: readonly RedisSentinelNode[],
    private readonly dir: string,
  ) {}

  static async start(options: RedisSentinelSetOptions = {}): Promise<RedisSentinelSet> {
    const masterName = options.masterName ?? 'orch-primary';
    const dir = mkdtempSync(join(tmpdir(), 'at-orch-sentinel-'));
    const servers: RedisServer[] = [];
    const sentinels: RedisSentinelNode[] = [];
    const set = new RedisSentinelSet(masterName, servers, sentinels, dir);
    try {
      const primary = await RedisServer.start({ ...options, dir: join(dir, 'r0') });
      servers.push(primary);
      for (let i = 1; i <= (options.replicas ?? 1); i++) {
        servers.push(await RedisServer.start({ ...options, dir: join(dir, `r${i}`), args: ['--replicaof', '127.0.0.1', String(primary.port)] }));
      }
      const bin = findServerBinary('redis-server', options);
      const count = options.sentinels ?? 3;
      for (let i = 0; i < count; i++) {
        const sentinelDir = join(dir, `s${i}`);
        sentinels.push(
          new RedisSentinelNode(bin, await freePort(), sentinelDir, {
            masterName,
            primaryPort: primary.port,
            quorum: Math.floor(count / 2) + 1,
            downAfterMs: options.downAfterMs ?? 1_000,
            failoverTimeoutMs: options.failoverTimeoutMs ?? 3_000,
            startTimeoutMs: options.startTimeoutMs,
          }),
        );
      }
      await Promise.all(sentinels.map((s) => s.start()));
      await set.waitReady(options.startTimeoutMs ?? 30_000);
    } catch (err) {
      await set.dispose();
      throw err;
    }
    return set;
  }

  /** REDIS_SENTINELS: every Sentinel's host:port, comma separated. */
  get sentinelAddresses(): string {
    return this.sentinels.map((s) => s.address).join(',');
  }

  /** The variables a process reaches this Redis with, instead of REDIS_URL. */
  env(): { REDIS_SENTINELS: string; REDIS_SENTINEL_MASTER: string } {
    return { REDIS_SENTINELS: this.sentinelAddresses, REDIS_SENTINEL_MASTER: this.masterName };
  }

  /** The data node the running Sentinels name primary (most of them agree), or undefined while they do not say. */
  async primary(): Promise<number | undefined> {
    const votes = new Map<number, number>();
    for (const sentinel of this.sentinels) {
      if (!sentinel.running) continue;
      const reply = await redisCommand(sentinel.port, ['SENTINEL', 'get-master-addr-by-name', this.masterName]).catch(() => undefined);
      if (!Array.isArray(reply)) continue;
      const port = Number(reply[1]);
      const index = this.servers.findIndex((s) => s.port === port);
      if (index >= 0) votes.set(index, (votes.get(index) ?? 0) + 1);
    }
    const [best] = [...votes].sort((a, b) => b[1] - a[1]);
    return best !== undefined && best[1] > this.sentinels.filter((s) => s.running).length / 2 ? best[0] : undefined;
  }

  /** What INFO replication of data node i says its role is ("master" or "slave"), or undefined when it does not answer. */
  async role(i: number): Promise<string | undefined> {
    const reply = await redisCommand(this.node(i).port, ['ROLE']).catch(() => undefined);
    return Array.isArray(reply) && typeof reply[0] === 'string' ? reply[0] : undefined;
  }

  /** Sends `signal` (default SIGKILL) to data node i and, for a signal that ends it, waits until it exited. */
  async kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const server = this.node(i);
    const pid = server.pid;
    if (pid === undefined || !server.running) return;
    process.kill(pid, signal);
    if (signal !== 'SIGKILL' && signal !== 'SIGTERM' && signal !== 'SIGINT') return;
    await poll(() => !server.running, 10_000, `redis-server ${server.port} still running after ${signal}`);
  }

  /** Starts data node i again on its port (empty: no persistence in tests) and waits until it answers. */
  async restart(i: number): Promise<void> {
    await this.node(i).start();
  }

  /** Resolves once the Sentinels agree on a primary other than `not` (a failover finished), within `timeoutMs`. */
  async waitForFailover(not: number, timeoutMs = 30_000): Promise<number> {
    let primary: number | undefined;
    await poll(
      async () => {
        primary = await this.primary();
        return primary !== undefined && primary !== not && (await this.role(primary)) === 'master';
      },
      timeoutMs,
      `the Sentinels did not promote a replica of node ${not} within ${timeoutMs} ms`,
    );
    return primary!;
  }

  /** Resolves once data node i is a replica in sync with the primary (master_link_status up). */
  waitReplicaInSync(i: number, timeoutMs = 30_000): Promise<void> {
    return waitReplicaInSync(this.node(i).port, timeoutMs);
  }

  /** Stops every process and removes the set's folder. */
  async dispose(): Promise<void> {
    await Promise.all([...this.sentinels, ...this.servers].map((s) => s.dispose()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The replicas in sync, every Sentinel naming node 0 primary and knowing its peers (a failover could be authorised). */
  private async waitReady(timeoutMs: number): Promise<void> {
    for (let i = 1; i < this.servers.length; i++) await this.waitReplicaInSync(i, timeoutMs);
    await poll(
      async () => {
        for (const sentinel of this.sentinels) {
          const ok = await redisCommand(sentinel.port, ['SENTINEL', 'ckquorum', this.masterName]).catch(() => undefined);
          if (typeof ok !== 'string' || !ok.includes(`${this.sentinels.length} usable Sentinels`)) return false;
          const replicas = await redisCommand(sentinel.port, ['SENTINEL', 'replicas', this.masterName]).catch(() => undefined);
          if (!Array.isArray(replicas) || replicas.length < this.servers.length - 1) return false;
        }
        return (await this.primary()) === 0;
      },
      timeoutMs,
      `the Sentinels did not see the primary, its replicas and each other within ${timeoutMs} ms`,
    );
  }

  private node(i: number): RedisServer {
    const server = this.servers[i];
    if (server === undefined) throw new Error(`no data node ${i}: the set has ${this.servers.length}`);
    return server;
  }
}

/** Resolves once the redis-server on `port` is a replica whose link to its master is up (Sentinel sets and Redis Clusters). */
export async function waitReplicaInSync(port: number, timeoutMs: number): Promise<void> {
  await poll(
    async () => {
      const info = await redisCommand(port, ['INFO', 'replication']).catch(() => undefined);
      return typeof info === 'string' && info.includes('role:slave') && info.includes('master_link_status:up');
    },
    timeoutMs,
    `redis-server ${port} is not a replica in sync within ${timeoutMs} ms`,
  );
}

/** Checks every 100 ms until `check` holds; rejects with `message` past `timeoutMs`. */
export async function poll(check: () => boolean | Promise<boolean>, timeoutMs: number, message: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(message);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
