import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { NatsLink, createLogger } from '@at-orchestrator/runtime';
import { DecisionSink, REALISTIC_MIX, SimulatedAgents } from '@at-orchestrator/sim';
import { NatsServer, RedisServer, freePort } from '@at-orchestrator/local-servers';
import type { Command } from '../command.js';

const MAIN = new URL('../main.js', import.meta.url).pathname;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'a local cluster deciding on synthetic signals (starts its own nats-server and redis-server)',
  usage: [
    'Usage: at-orchestrator demo [--rate N] [--duration S] [--dir PATH] [--keep]',
    '',
    'Finds nats-server and redis-server (installing Debian\'s packages when run as root), starts them',
    'on free ports with their data under --dir (default .demo), starts a local cluster (--coordinators',
    'coordinator processes and --workers worker processes) and simulated agents, and shows decisions',
    'and live counts until Ctrl-C (or --duration seconds). Then it stops everything and removes the',
    'folder (unless --keep). While it runs, `at-orchestrator status` works from a second terminal',
    '(the demo prints the exact command).',
    '',
    '  --rate N       correlations per second from the simulated agents (default 50)',
    '  --duration S   stop after S seconds (default: run until Ctrl-C)',
    '  --workers N    worker processes (default 3)',
    '  --coordinators N  coordinator processes (default 2)',
  ].join('\n'),
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        rate: { type: 'string', default: '50' },
        duration: { type: 'string' },
        dir: { type: 'string', default: '.demo' },
        keep: { type: 'boolean', default: false },
        workers: { type: 'string', default: '3' },
        coordinators: { type: 'string', default: '2' },
      },
    });
    const rate = Number(values.rate);
    if (!Number.isFinite(rate) || rate <= 0) {
      process.stderr.write(`at-orchestrator demo: --rate=${JSON.stringify(values.rate)} is not valid: expected a positive number\n`);
      return 2;
    }
    const duration = values.duration === undefined ? undefined : Number(values.duration);
    if (duration !== undefined && !(duration > 0)) {
      process.stderr.write(`at-orchestrator demo: --duration=${JSON.stringify(values.duration)} is not valid: expected seconds > 0\n`);
      return 2;
    }
    const workerCount = Number(values.workers);
    const coordinatorCount = Number(values.coordinators);
    if (!Number.isInteger(workerCount) || workerCount < 1 || workerCount > 16) {
      process.stderr.write(`at-orchestrator demo: --workers=${JSON.stringify(values.workers)} is not valid: expected 1 to 16\n`);
      return 2;
    }
    if (!Number.isInteger(coordinatorCount) || coordinatorCount < 0 || coordinatorCount > 5) {
      process.stderr.write(`at-orchestrator demo: --coordinators=${JSON.stringify(values.coordinators)} is not valid: expected 0 to 5 (0: each worker runs an embedded coordinator)\n`);
      return 2;
    }
    const dir = resolve(values.dir);
    mkdirSync(dir, { recursive: true });
    const say = (line: string): void => void process.stdout.write(`${line}\n`);
    const log = createLogger({ service: 'at-orchestrator-demo', env: 'demo', level: 'warn' });

    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    process.once('SIGTERM', () => stop.abort());

    let nats: NatsServer | undefined;
    let redis: RedisServer | undefined;
    let link: NatsLink | undefined;
    const children: ChildProcess[] = [];
    try {
      say(`demo: data folder ${dir}`);
      nats = await NatsServer.start({ dir: resolve(dir, 'nats'), websocket: true, install: true, log: say });
      redis = await RedisServer.start({ dir: resolve(dir, 'redis'), install: true, log: say });
      say(`demo: nats-server ${nats.url} (websocket ${nats.wsUrl}), redis-server ${redis.url}`);

      const base = {
        ...process.env,
        NATS_URL: nats.url,
        REDIS_URL: redis.url,
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
        COORDINATOR: coordinatorCount > 0 ? 'off' : 'embedded',
        // Fresh for each run and never printed: the demo's processes trust each other only.
        CLUSTER_SECRET: randomBytes(24).toString('hex'),
        OPERATOR_TOKEN: randomBytes(24).toString('hex'),
      };
      const start = async (name: string, args: string[], env: Record<string, string>): Promise<number> => {
        const httpPort = await freePort();
        const logFile = createWriteStream(resolve(dir, `${name}.log`));
        const child = spawn(process.execPath, [MAIN, ...args], { env: { ...base, ...env, HTTP_PORT: String(httpPort), CONSOLE_URL: `http://127.0.0.1:${httpPort}/console` }, stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout?.pipe(logFile);
        child.stderr?.pipe(logFile);
        children.push(child);
        await waitForReady(`http://127.0.0.1:${httpPort}/ready`, child, stop.signal);
        return httpPort;
      };
      const ports: string[] = [];
      for (let i = 1; i <= coordinatorCount; i++) {
        ports.push(`demo-coord-${i}:${await start(`coordinator-${i}`, ['coordinator'], { COORDINATOR_ID: `demo-coord-${i}` })}`);
      }
      for (let i = 1; i <= workerCount; i++) {
        ports.push(`demo-worker-${i}:${await start(`worker-${i}`, ['worker'], { WORKER_ID: `demo-worker-${i}` })}`);
      }
      say(`demo: ${coordinatorCount} coordinator(s) and ${workerCount} worker(s) ready — /health, /ready, /metrics on 127.0.0.1 ports ${ports.join(', ')}; logs in ${dir}`);
      say(`demo: from another terminal: NATS_URL=${nats.url} node ${MAIN} status`);
      // The console's actions need the operator token: kept in a file only this user reads, never printed.
      const tokenFile = resolve(dir, 'operator-token');
      writeFileSync(tokenFile, `${base.OPERATOR_TOKEN}\n`, { mode: 0o600 });
      const consolePort = firstPort(ports);
      say(`demo: console http://127.0.0.1:${consolePort}/console (its actions ask for the operator token in ${tokenFile})`);

      link = await NatsLink.connect({ servers: [nats.url], name: 'demo', log });
      let shown = 0;
      let windowStart = Date.now();
      const sink = new DecisionSink(link.nc, (d, dup) => {
        if (Date.now() - windowStart > 1000) {
          windowStart = Date.now();
          shown = 0;
        }
        if (shown++ >= 3 && !dup) return; // a few lines a second; the counts line shows the rest
        say(
          `  ${d.corr_id.padEnd(22)} ${d.status.padEnd(8)} ${d.decision.action.padEnd(8)} ${(d.decision.direction ?? '').padEnd(7)} size=${String(d.decision.size ?? '-').padEnd(4)} conf=${d.confidence.toFixed(2)} ${d.latency_ms}ms${dup ? '  DUPLICATE' : ''}`,
        );
      });
      sink.start();
      const agents = new SimulatedAgents(link.nc);
      const started = Date.now();
      const ticker = setInterval(() => {
        const c = sink.counts;
        const secs = Math.round((Date.now() - started) / 1000);
        say(
          `[${secs}s] published ${agents.published} correlations · decisions ${c.decisions} (${fmt(c.byAction)}; ${fmt(c.byStatus)}) · duplicates ${c.duplicates}`,
        );
      }, 1000);
      const until = duration === undefined ? undefined : setTimeout(() => stop.abort(), duration * 1000);
      say(`demo: simulated agents publishing ${rate} correlations/s (Ctrl-C to stop)`);
      await agents.run({ rate, mix: REALISTIC_MIX, signal: stop.signal, prefix: `demo-${Date.now().toString(36)}` });
      clearInterval(ticker);
      if (until !== undefined) clearTimeout(until);
      await sink.stop();
      say(`demo: stopping — ${sink.counts.decisions} decisions, ${sink.counts.duplicates} duplicates`);
      return 0;
    } catch (err) {
      process.stderr.write(`at-orchestrator demo: ${(err as Error).message}\n`);
      return 1;
    } finally {
      await link?.close().catch(() => undefined);
      // Workers first (they drain), then the coordinators.
      await Promise.all(children.slice(coordinatorCount).map((w) => stopChild(w)));
      await Promise.all(children.slice(0, coordinatorCount).map((c) => stopChild(c)));
      await nats?.stop();
      await redis?.stop();
      if (!values.keep) rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** The HTTP port of the first process started ("name:port"): a coordinator, or an embedded one's worker. */
function firstPort(ports: readonly string[]): string {
  return ports[0]?.split(':').pop() ?? '';
}

function fmt(counts: Record<string, number>): string {
  return Object.entries(counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

async function waitForReady(url: string, child: ChildProcess, signal: AbortSignal, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !signal.aborted) {
    if (child.exitCode !== null) throw new Error(`a cluster process exited with code ${child.exitCode} during start (see its log)`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`a cluster process was not ready after ${timeoutMs} ms`);
}

function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
