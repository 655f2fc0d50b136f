import { readFileSync } from 'node:fs';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signalSubject } from '@at-orchestrator/contracts';
import { freePort } from '@at-orchestrator/local-servers';
import { CliProcess, DecisionLog, Stack } from './helpers/stack.js';

/**
 * MAX_OPEN_CORRELATIONS holds memory: TOTAL correlations that never complete (one signal each) are
 * offered against a bound of CAP. Defaults are the CI size; the full run of the issue is
 * MEMORY_BOUND_TOTAL=200000 MEMORY_BOUND_CAP=10000 (figures in docs/benchmarks.md).
 *
 * The budget is the idle RSS plus CAP times the measured cost of one open correlation, plus the
 * decided set's own bound (it keeps up to DECIDED_SET_ENTRIES corr_ids, whatever the input). The
 * worker under load runs with its V8 heap limited to that budget (NODE_OPTIONS, as a container
 * would set it from its memory limit): V8 then collects garbage before the budget instead of
 * growing into free memory, so RSS measures what the worker holds. Were intake not paused at the
 * cap, the open correlations would outgrow the heap and the worker would die, losing the test.
 */
const TOTAL = Number(process.env.MEMORY_BOUND_TOTAL ?? 40_000);
const CAP = Number(process.env.MEMORY_BOUND_CAP ?? 4_000);
const enc = new TextEncoder();
let stack: Stack;

/** Bytes per entry of the decided set (fanin/decided-set.ts), measured with --expose-gc: ~93 B. */
const DECIDED_ENTRY_BYTES = 100;
const DECIDED_SET_ENTRIES = 200_000;
const rssOf = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const mb = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MB`;

async function heapUsed(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)/m.exec(text)![1]);
}

async function health(port: number): Promise<{ bounds: { open_correlations: { used: number; max: number } } }> {
  return (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as never;
}

async function publishMany(prefix: string, n: number): Promise<void> {
  const inFlight: Array<Promise<unknown>> = [];
  for (let i = 0; i < n; i++) {
    const body = JSON.stringify({ corr_id: `${prefix}${i}`, agent_name: 'momentum', analysis: { momentum_strength: 0.5, confidence: 0.9, trend_direction: 'up' } });
    inFlight.push(stack.js.publish(signalSubject('momentum'), enc.encode(body)));
    if (inFlight.length >= 2_000) await Promise.all(inFlight.splice(0));
  }
  await Promise.all(inFlight);
}

async function startWorker(extra: Record<string, string>): Promise<{ p: CliProcess; port: number }> {
  const port = await freePort();
  const p = await CliProcess.started(
    stack.env({ HTTP_PORT: String(port), MAX_OPEN_CORRELATIONS: String(CAP), REQUIRED_AGENTS: 'momentum,risk', MIN_AGENTS_REQUIRED: '2', PARTITIONS: '16', LOG_LEVEL: 'warn', ...extra }),
    30_000,
    ['worker'],
  );
  return { p, port };
}

beforeAll(async () => {
  stack = await Stack.start();
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

it(`${TOTAL} open correlations against MAX_OPEN_CORRELATIONS=${CAP}: intake pauses, open stays at most the cap, every one decided once; RSS figures printed`, async () => {
  const jsm = await jetstreamManager(stack.nc);
  const stream = stack.config().nats.stream;

  // 1. The cost of one open correlation: a worker that never times out holds CAP of them.
  const m = await startWorker({ DECISION_TIMEOUT_SEC: '50', NATS_DURABLE: 'measure', REDIS_KEY_PREFIX: 'measure' });
  const idle = rssOf(m.p.child.pid!);
  // What of the idle RSS is not the JavaScript heap (code, buffers, the runtime itself).
  const outsideHeap = idle - (await heapUsed(m.port));
  await publishMany('m-', CAP);
  while ((await health(m.port)).bounds.open_correlations.used < CAP) await new Promise((r) => setTimeout(r, 100));
  const full = rssOf(m.p.child.pid!);
  const cost = Math.max(1, (full - idle) / CAP);
  m.p.kill('SIGKILL');
  await m.p.exited();
  await jsm.consumers.delete(stream, 'measure');
  await jsm.streams.purge(stream);

  // 2. TOTAL correlations, timing out after 1 s in waves of at most CAP, in a heap held to the budget.
  const budget = idle + CAP * cost + Math.min(TOTAL, DECIDED_SET_ENTRIES) * DECIDED_ENTRY_BYTES;
  const semiSpaceMb = 1;
  const oldSpaceMb = Math.floor((budget - outsideHeap) / 1024 / 1024) - 3 * semiSpaceMb;
  const decisions = new DecisionLog(stack.js, 'b-');
  await decisions.start();
  const w = await startWorker({
    DECISION_TIMEOUT_SEC: '1',
    NATS_DURABLE: 'bound',
    REDIS_KEY_PREFIX: 'bound',
    NODE_OPTIONS: `--max-old-space-size=${oldSpaceMb} --max-semi-space-size=${semiSpaceMb}`,
  });
  const pid = w.p.child.pid!;
  const idle2 = rssOf(pid);
  let maxOpen = 0;
  let maxRss = idle2;
  let pendingWhileFull = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const used = (await health(w.port)).bounds.open_correlations.used;
      maxOpen = Math.max(maxOpen, used);
      maxRss = Math.max(maxRss, rssOf(pid));
      if (used >= CAP) pendingWhileFull = Math.max(pendingWhileFull, (await jsm.consumers.info(stream, 'bound')).num_pending);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const started = Date.now();
  await publishMany('b-', TOTAL);
  await decisions.waitFor(TOTAL, 240_000);
  sampling = false;
  await sampler;
  console.log(
    `memory bound: ${TOTAL} correlations, cap ${CAP}: idle RSS ${mb(idle)}, with ${CAP} open ${mb(full)} -> ${(cost / 1024).toFixed(2)} KB per open correlation; ` +
      `decided set ${mb(Math.min(TOTAL, DECIDED_SET_ENTRIES) * DECIDED_ENTRY_BYTES)}; budget ${mb(budget)} (old space ${oldSpaceMb} MB); ` +
      `run: idle ${mb(idle2)}, peak ${mb(maxRss)}, peak open ${maxOpen}, consumer pending while full up to ${pendingWhileFull}, ` +
      `all decided in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  expect(maxOpen).toBeLessThanOrEqual(CAP);
  expect(pendingWhileFull).toBeGreaterThan(0);
  expect(decisions.count).toBe(TOTAL);
  expect(decisions.duplicates()).toEqual([]);
  expect(maxRss).toBeLessThanOrEqual(budget);
  decisions.stop();
  w.p.kill('SIGTERM');
  await w.p.exited();
}, 300_000);
