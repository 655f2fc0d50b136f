import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findServerBinary } from './binaries.js';
import { LocalServer, freePort, type ServerOptions } from './servers.js';

export interface NatsClusterOptions extends Pick<ServerOptions, 'install' | 'log' | 'startTimeoutMs'> {
  /** Servers in the cluster (default 3: the smallest that survives losing one with R3 streams). */
  nodes?: number;
  /** The cluster's name (default at-orch-test). */
  name?: string;
  /** More configuration appended to every node's file. */
  config?: string;
  /** Each node's max_file_store in bytes (default 4 GiB: reserved, not allocated). */
  maxFileStore?: number;
}

/** What the monitoring endpoint /connz says of one client connection. */
export interface ClientConnection {
  readonly cid: number;
  /** The client's `name` connect option; absent when it gave none. */
  readonly name?: string;
  readonly ip: string;
  readonly port: number;
}

/** Lines of a node's log kept in memory (the newest). */
const LOG_LINES = 5_000;

/**
 * One nats-server of a NatsCluster: JetStream, a route to every other node, its own store folder and
 * server_name. Its log (stderr) is kept after it started, for evidence when a test fails.
 */
export class NatsClusterNode extends LocalServer {
  readonly log: string[] = [];

  constructor(
    bin: string,
    port: number,
    readonly monitorPort: number,
    readonly clusterPort: number,
    readonly serverName: string,
    dir: string,
    options: NatsClusterOptions,
  ) {
    super(bin, port, { dir, startTimeoutMs: options.startTimeoutMs ?? 20_000 }, /Server is ready/);
  }

  /** Writes the node's configuration (all routes known once every node has its ports). */
  configure(clusterName: string, routes: readonly number[], options: NatsClusterOptions): void {
    const conf = [
      `server_name: ${JSON.stringify(this.serverName)}`,
      `listen: "127.0.0.1:${this.port}"`,
      `http: "127.0.0.1:${this.monitorPort}"`,
      'max_payload: 8MB',
      // A dead peer that did not close its sockets (SIGSTOP, a lost host) is noticed in ~4 s, not minutes.
      'ping_interval: 2',
      'ping_max: 2',
      'write_deadline: "2s"',
      `jetstream { store_dir: ${JSON.stringify(join(this.dir, 'jetstream'))}, max_memory_store: 268435456, max_file_store: ${options.maxFileStore ?? 4294967296} }`,
      'cluster {',
      `  name: ${JSON.stringify(clusterName)}`,
      `  listen: "127.0.0.1:${this.clusterPort}"`,
      `  routes: [${routes.map((p) => JSON.stringify(`nats-route://127.0.0.1:${p}`)).join(', ')}]`,
      '}',
      options.config ?? '',
    ].join('\n');
    writeFileSync(join(this.dir, 'nats-server.conf'), conf);
  }

  protected args(): string[] {
    return ['-c', join(this.dir, 'nats-server.conf')];
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  override async start(): Promise<void> {
    if (this.running) return;
    await super.start();
    const stamp = (chunk: Buffer): void => {
      for (const line of chunk.toString().split('\n')) if (line !== '') this.log.push(line);
      if (this.log.length > LOG_LINES) this.log.splice(0, this.log.length - LOG_LINES);
    };
    this.child?.stdout?.on('data', stamp);
    this.child?.stderr?.on('data', stamp);
  }

  /** Sends `signal` to the process; SIGKILL, SIGTERM and SIGINT resolve once it exited. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    const ends = signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT';
    const exited = ends ? new Promise<void>((resolve) => child.once('exit', () => resolve())) : Promise.resolve();
    if (ends) child.kill('SIGCONT');
    child.kill(signal);
    await exited;
  }

  /** The monitoring endpoint's answer to `path` (e.g. /jsz?streams=true), or undefined when it does not answer 200. */
  async monitor<T>(path: string, timeoutMs = 2_000): Promise<T | undefined> {
    if (!this.running) return undefined;
    try {
      const res = await fetch(`http://127.0.0.1:${this.monitorPort}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
      if (res.status !== 200) return undefined;
      return (await res.json()) as T;
    } catch {
      return undefined;
    }
  }

  /** Whether /healthz answers ok: running, JetStream enabled and in contact with a meta leader, its assets current. */
  async healthy(): Promise<boolean> {
    return (await this.monitor<{ status: string }>('/healthz'))?.status === 'ok';
  }
}

interface JszCluster {
  leader?: string;
}
interface Jsz {
  account_details?: Array<{
    stream_detail?: Array<{ name: string; cluster?: JszCluster; consumer_detail?: Array<{ name: string; cluster?: JszCluster }> }>;
  }>;
}

/**
 * A private NATS cluster on loopback: `nodes` nats-server processes with JetStream, routes between
 * them, each with its own store folder and server_name. kill(i) and restart(i) take one node down and
 * bring it back on the same ports with the same store; the helpers say which node leads a stream or
 * a consumer and which node a named client is connected to, from the monitoring endpoints.
 */
export class NatsCluster {
  private constructor(
    readonly name: string,
    readonly nodes: readonly NatsClusterNode[],
    private readonly dir: string,
  ) {}

  static async start(options: NatsClusterOptions = {}): Promise<NatsCluster> {
    const count = options.nodes ?? 3;
    if (!Number.isInteger(count) || count < 1) throw new Error(`a NATS cluster needs at least one node, not ${count}`);
    const bin = findServerBinary('nats-server', options);
    const dir = mkdtempSync(join(tmpdir(), 'at-orch-nats-cluster-'));
    const name = options.name ?? 'at-orch-test';
    const nodes: NatsClusterNode[] = [];
    for (let i = 0; i < count; i++) {
      const nodeDir = join(dir, `n${i}`);
      nodes.push(new NatsClusterNode(bin, await freePort(), await freePort(), await freePort(), `n${i}`, nodeDir, options));
    }
    for (const node of nodes) node.configure(name, nodes.filter((other) => other !== node).map((other) => other.clusterPort), options);
    const cluster = new NatsCluster(name, nodes, dir);
    try {
      await Promise.all(nodes.map((node) => node.start()));
      await Promise.all(nodes.map((_, i) => cluster.waitHealthy(i, options.startTimeoutMs ?? 30_000)));
    } catch (err) {
      await cluster.dispose();
      throw err;
    }
    return cluster;
  }

  /** Every node's client URL, in node order. */
  get urls(): string[] {
    return this.nodes.map((node) => node.url);
  }

  /** The client URLs as NATS_URL takes them: comma separated. */
  get url(): string {
    return this.urls.join(',');
  }

  get monitorPorts(): number[] {
    return this.nodes.map((node) => node.monitorPort);
  }

  /** The index of the node with this server_name (as stream and consumer info name their leader); -1 if none. */
  indexOf(serverName: string): number {
    return this.nodes.findIndex((node) => node.serverName === serverName);
  }

  /** Sends `signal` (default SIGKILL) to node i; resolves once it exited when the signal ends it. */
  kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.node(i).kill(signal);
  }

  /** Starts node i again (same ports, same store) if it is down, and resolves once it is healthy. */
  async restart(i: number, timeoutMs = 30_000): Promise<void> {
    const node = this.node(i);
    if (!node.running) await node.start();
    await this.waitHealthy(i, timeoutMs);
  }

  /** Polls node i's /healthz until it answers ok (JetStream in contact with a meta leader, its assets current). */
  async waitHealthy(i: number, timeoutMs = 30_000): Promise<void> {
    const node = this.node(i);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await node.healthy()) return;
      if (Date.now() > deadline) throw new Error(`nats-server ${node.serverName} not healthy within ${timeoutMs} ms; its log:\n${node.log.slice(-30).join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The node that leads `stream` (JetStream's stream cluster info), read from a running node's /jsz; undefined while it has none. */
  async streamLeader(stream: string): Promise<number | undefined> {
    return this.leaderFrom((jsz) => jsz.account_details?.flatMap((a) => a.stream_detail ?? []).find((s) => s.name === stream)?.cluster?.leader);
  }

  /** The node that leads the consumer `consumer` of `stream`; undefined while it has none. */
  async consumerLeader(stream: string, consumer: string): Promise<number | undefined> {
    return this.leaderFrom(
      (jsz) =>
        jsz.account_details
          ?.flatMap((a) => a.stream_detail ?? [])
          .find((s) => s.name === stream)
          ?.consumer_detail?.find((c) => c.name === consumer)?.cluster?.leader,
    );
  }

  /** The client connections node i holds now (/connz). */
  async connections(i: number): Promise<ClientConnection[]> {
    const connz = await this.node(i).monitor<{ connections?: ClientConnection[] }>('/connz?limit=1024');
    return connz?.connections ?? [];
  }

  /** The node a client whose connection is named `name` (the `name` connect option) is connected to now. */
  async nodeOfClient(name: string): Promise<number | undefined> {
    for (let i = 0; i < this.nodes.length; i++) {
      if ((await this.connections(i)).some((c) => c.name === name)) return i;
    }
    return undefined;
  }

  /** Stops every node and removes the cluster's folder. */
  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.dispose()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private node(i: number): NatsClusterNode {
    const node = this.nodes[i];
    if (node === undefined) throw new Error(`no node ${i}: the cluster has ${this.nodes.length}`);
    return node;
  }

  /** Asks the running nodes' /jsz in turn; the first that names a leader answers. */
  private async leaderFrom(pick: (jsz: Jsz) => string | undefined): Promise<number | undefined> {
    for (const node of this.nodes) {
      const jsz = await node.monitor<Jsz>('/jsz?accounts=true&streams=true&consumers=true');
      const leader = jsz === undefined ? undefined : pick(jsz);
      if (leader !== undefined && leader !== '') {
        const index = this.indexOf(leader);
        if (index >= 0) return index;
      }
    }
    return undefined;
  }
}
