import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { findServerBinary } from './binaries.js';
import { poll, redisCommand, waitReplicaInSync } from './redis-sentinel.js';
import { RedisServer, freePort, type ServerOptions } from './servers.js';

export interface RedisClusterSetOptions extends Pick<ServerOptions, 'install' | 'log' | 'startTimeoutMs'> {
  /** Masters (default 3), each serving a third of the 16,384 slots. */
  masters?: number;
  /** Replicas per master (default 1). */
  replicasPerMaster?: number;
  /** cluster-node-timeout: how long a silent master is up before its replica takes over (default 1000 ms; Redis's own default is 15 s). */
  nodeTimeoutMs?: number;
}

/** One line of CLUSTER NODES, with the set's index of the node. */
export interface ClusterNodeInfo {
  readonly index: number;
  readonly id: string;
  readonly port: number;
  readonly role: 'master' | 'replica';
  /** The master's node id, for a replica. */
  readonly masterId: string | undefined;
  /** fail or fail? flagged by the node asked. */
  readonly failing: boolean;
  /** Slot ranges served, inclusive (masters). */
  readonly slots: ReadonlyArray<readonly [number, number]>;
}

/**
 * A Redis Cluster on loopback, for tests: `masters` masters and `replicasPerMaster` replicas each, on
 * free ports (the cluster bus on its own free port, `cluster-port`), created with `redis-cli --cluster
 * create … --cluster-replicas N --cluster-yes`, with a short cluster-node-timeout. kill(i) takes node i
 * down (SIGKILL by default), restart(i) brings it back on its port with its nodes.conf (no data: a
 * master that failed over comes back as a replica of its promoted replica). masterOfSlot(slot) and
 * nodes() read CLUSTER NODES from a running node.
 */
export class RedisClusterSet {
  private constructor(
    readonly servers: readonly RedisServer[],
    private readonly dir: string,
  ) {}

  static async start(options: RedisClusterSetOptions = {}): Promise<RedisClusterSet> {
    const masters = options.masters ?? 3;
    const replicas = options.replicasPerMaster ?? 1;
    const dir = mkdtempSync(join(tmpdir(), 'at-orch-cluster-'));
    const servers: RedisServer[] = [];
    const set = new RedisClusterSet(servers, dir);
    try {
      for (let i = 0; i < masters * (1 + replicas); i++) {
        const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 1_000), '--cluster-port', String(await freePort())];
        servers.push(await RedisServer.start({ ...options, dir: join(dir, `n${i}`), args }));
      }
      // redis-cli makes the first `masters` addresses masters and gives each its replicas.
      await run(redisCli(findServerBinary('redis-server', options)), ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], options.startTimeoutMs ?? 30_000);
      await set.waitHealthy(options.startTimeoutMs ?? 30_000);
    } catch (err) {
      await set.dispose();
      throw err;
    }
    return set;
  }

  /** REDIS_CLUSTER_NODES: every node's host:port, comma separated. */
  get nodeAddresses(): string {
    return this.servers.map((s) => `127.0.0.1:${s.port}`).join(',');
  }

  /** The variable a process reaches this cluster with, instead of REDIS_URL. */
  env(): { REDIS_CLUSTER_NODES: string } {
    return { REDIS_CLUSTER_NODES: this.nodeAddresses };
  }

  /** CLUSTER NODES as a running node (the first that answers) sees it. */
  async nodes(): Promise<ClusterNodeInfo[]> {
    for (const server of this.servers) {
      if (!server.running) continue;
      const reply = await redisCommand(server.port, ['CLUSTER', 'NODES']).catch(() => undefined);
      if (typeof reply === 'string') return this.parseNodes(reply);
    }
    throw new Error('no node of the cluster answers CLUSTER NODES');
  }

  /** The slot a key hashes to (CLUSTER KEYSLOT, asked of a running node). */
  async keySlot(key: string): Promise<number> {
    const server = this.servers.find((s) => s.running);
    if (server === undefined) throw new Error('no node of the cluster is running');
    return Number(await redisCommand(server.port, ['CLUSTER', 'KEYSLOT', key]));
  }

  /** The index of the node a running node names master of `slot` (and not failing), or undefined. */
  async masterOfSlot(slot: number): Promise<number | undefined> {
    const node = (await this.nodes()).find((n) => n.role === 'master' && !n.failing && n.slots.some(([from, to]) => slot >= from && slot <= to));
    return node?.index;
  }

  /** The indexes of the masters serving slots now. */
  async masters(): Promise<number[]> {
    return (await this.nodes())
      .filter((n) => n.role === 'master' && !n.failing && n.slots.length > 0)
      .map((n) => n.index)
      .sort((a, b) => a - b);
  }

  /** Keys held by node i (DBSIZE). */
  async keyCount(i: number): Promise<number> {
    return Number(await redisCommand(this.node(i).port, ['DBSIZE']));
  }

  /** Sends `signal` (default SIGKILL) to node i and, for a signal that ends it, waits until it exited. */
  async kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const server = this.node(i);
    const pid = server.pid;
    if (pid === undefined || !server.running) return;
    process.kill(pid, signal);
    if (signal !== 'SIGKILL' && signal !== 'SIGTERM' && signal !== 'SIGINT') return;
    await poll(() => !server.running, 10_000, `redis-server ${server.port} still running after ${signal}`);
  }

  /** Starts node i again on its port, with its nodes.conf (it rejoins the cluster), and waits until it answers. */
  async restart(i: number): Promise<void> {
    await this.node(i).start();
  }

  /** Stops every node (SIGTERM: each saves its nodes.conf), as a Redis outage. */
  async stopAll(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }

  /**
   * Starts every node again on its port with its nodes.conf (same slots, same roles, no data: no
   * persistence in tests) and waits until the cluster is healthy.
   */
  async startAll(timeoutMs = 30_000): Promise<void> {
    await Promise.all(this.servers.map((s) => s.start()));
    await this.waitHealthy(timeoutMs);
  }

  /**
   * Resolves once the slots node `failed` served are served by another master (its replica was
   * promoted) and the cluster is healthy again as the running nodes see it; returns that master.
   */
  async waitForFailover(failed: number, slot: number, timeoutMs = 30_000): Promise<number> {
    let master: number | undefined;
    await poll(
      async () => {
        master = await this.masterOfSlot(slot).catch(() => undefined);
        return master !== undefined && master !== failed && (await this.clusterOk());
      },
      timeoutMs,
      `no replica of node ${failed} took slot ${slot} over within ${timeoutMs} ms`,
    );
    return master!;
  }

  /** Resolves once node i is a replica whose link to its master is up. */
  waitReplicaInSync(i: number, timeoutMs = 30_000): Promise<void> {
    return waitReplicaInSync(this.node(i).port, timeoutMs);
  }

  /** Stops every node and removes the set's folder. */
  async dispose(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.dispose()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** cluster_state:ok on every running node. */
  private async clusterOk(): Promise<boolean> {
    for (const server of this.servers) {
      if (!server.running) continue;
      const info = await redisCommand(server.port, ['CLUSTER', 'INFO']).catch(() => undefined);
      if (typeof info !== 'string' || !info.includes('cluster_state:ok')) return false;
    }
    return true;
  }

  /** Every node sees every other, every slot is served, every replica is in sync. */
  private async waitHealthy(timeoutMs: number): Promise<void> {
    await poll(
      async () => {
        if (!(await this.clusterOk())) return false;
        for (const server of this.servers) {
          const reply = await redisCommand(server.port, ['CLUSTER', 'NODES']).catch(() => undefined);
          if (typeof reply !== 'string' || reply.trim().split('\n').length !== this.servers.length || /\bfail\??\b|handshake|noaddr/.test(reply)) return false;
        }
        return true;
      },
      timeoutMs,
      `the cluster did not become healthy (cluster_state:ok, every node known to every node) within ${timeoutMs} ms`,
    );
    const replicas = (await this.nodes()).filter((n) => n.role === 'replica');
    for (const r of replicas) await this.waitReplicaInSync(r.index, timeoutMs);
  }

  private parseNodes(text: string): ClusterNodeInfo[] {
    const out: ClusterNodeInfo[] = [];
    for (const line of text.trim().split('\n')) {
      // <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot> <slot> ...
      const [id, address, flags, master, , , , , ...slots] = line.trim().split(' ');
      if (id === undefined || address === undefined || flags === undefined) continue;
      const port = Number(/:(\d+)@/.exec(address)?.[1]);
      const index = this.servers.findIndex((s) => s.port === port);
      if (index < 0) continue;
      const flagList = flags.split(',');
      out.push({
        index,
        id,
        port,
        role: flagList.includes('master') ? 'master' : 'replica',
        masterId: master === '-' ? undefined : master,
        failing: flagList.includes('fail') || flagList.includes('fail?'),
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s) => {
            const [from, to] = s.split('-').map(Number);
            return [from!, to ?? from!] as const;
          }),
      });
    }
    return out;
  }

  private node(i: number): RedisServer {
    const server = this.servers[i];
    if (server === undefined) throw new Error(`no node ${i}: the cluster has ${this.servers.length}`);
    return server;
  }
}

/** redis-cli beside redis-server (Debian ships both in redis-tools), else from PATH. */
function redisCli(serverBin: string): string {
  const beside = join(dirname(serverBin), 'redis-cli');
  try {
    accessSync(beside, constants.X_OK);
    return beside;
  } catch {
    return 'redis-cli';
  }
}

function run(bin: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${bin} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}
