import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { RedisKeys, loadConfig, partitionOf } from '@at-orchestrator/contracts';
import { memoryLogger } from '@at-orchestrator/runtime';
import { OrchestratorWorker } from '@at-orchestrator/worker';
import { ClusterHarness } from './helpers/cluster.js';
import { DecisionLog, Stack } from './helpers/stack.js';

// A partition taken over is loaded from Redis a page at a time, each page waiting for room under
// MAX_OPEN_CORRELATIONS (docs/security.md, "Bounds"): worker A dies owning partitions whose open
// correlations in Redis are many times the cap of worker B, which takes them over while running.

const P = 8;
const CAP = 100;
const OPEN = 1_500;
const PREFIX = 'pg';
const momentum = (corrId: string) => JSON.stringify({ corr_id: corrId, agent_name: 'momentum', analysis: { momentum_strength: 0.4, confidence: 0.9, trend_direction: 'up' } });
const risk = (corrId: string) => JSON.stringify({ corr_id: corrId, agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 1 } } });

/** Open correlations of a worker, from its /health report. */
const openOf = (w: OrchestratorWorker): number => (w.health().bounds as { open_correlations: { used: number } }).open_correlations.used;

let stack: Stack;
let cluster: ClusterHarness;
let b: OrchestratorWorker | undefined;
let redis: Redis;

beforeAll(async () => {
  stack = await Stack.start();
  redis = new Redis(stack.redis.url);
}, 60_000);

afterAll(async () => {
  await b?.close();
  await cluster?.stopAll();
  redis?.disconnect();
  await stack?.stop();
});

it(`${OPEN} open correlations of a dead owner's partitions against MAX_OPEN_CORRELATIONS=${CAP}: loaded page by page, open never above the cap, every one decided once`, async () => {
  cluster = new ClusterHarness(stack, { REDIS_KEY_PREFIX: PREFIX, PARTITIONS: String(P) });
  await cluster.startCoordinator('coord-a');
  const a = await cluster.startWorker('wa');
  const log = memoryLogger('info');
  b = new OrchestratorWorker({ config: loadConfig(cluster.env({ WORKER_ID: 'wb', MAX_OPEN_CORRELATIONS: String(CAP), HTTP_PORT: '0' })), log: log.log, http: false, ownership: 'coordinated' });
  await b.start();
  await cluster.waitForBalance(['wa', 'wb'], P);
  const ofA = new Set((await cluster.cli<{ partitions: Array<{ partition: number; owner: string }> }>('partitions')).partitions.filter((p) => p.owner === 'wa').map((p) => p.partition));

  // Open in Redis under A's partitions, as A stored them: one in five complete (ready at once), the rest
  // waiting for risk with their deadline passed (decided at the deadline as soon as loaded).
  const keys = new RedisKeys(PREFIX, P);
  const corrIds: string[] = [];
  for (let i = 0; corrIds.length < OPEN; i++) if (ofA.has(partitionOf(`pg-${i}`, P))) corrIds.push(`pg-${i}`);
  const write = redis.pipeline();
  corrIds.forEach((corrId, i) => {
    const signals: Record<string, string> = { momentum: momentum(corrId) };
    if (i % 5 === 0) signals.risk = risk(corrId);
    write.hset(keys.signals(corrId), signals);
    write.expire(keys.signals(corrId), 600);
    write.zadd(keys.open(partitionOf(corrId, P)), Date.now() - 1_000, corrId);
  });
  await write.exec();

  const decisions = new DecisionLog(stack.js, 'pg-');
  await decisions.start();
  // Open correlations of B after every turn of the event loop (a page is loaded in one turn).
  let maxOpen = 0;
  let sampling = true;
  const sample = (): void => {
    maxOpen = Math.max(maxOpen, openOf(b!));
    if (sampling) setImmediate(sample);
  };
  sample();

  a.kill('SIGKILL');
  await a.exited();
  await decisions.waitFor(OPEN, 60_000);
  sampling = false;

  console.log(`[figure] paged resume: ${OPEN} open correlations taken over, cap ${CAP}, largest open seen ${maxOpen}`);
  expect(decisions.byCorr.size).toBe(OPEN);
  expect(decisions.duplicates()).toEqual([]);
  expect(maxOpen).toBeGreaterThan(0);
  expect(maxOpen).toBeLessThanOrEqual(CAP);
  await vi.waitFor(async () => expect(await cluster.ownership()).toEqual(new Map([['wb', P]])));
  // Loaded in pages: more than one resume line adds up to every correlation (each line is one takeover).
  const resumed = log.lines.filter((l) => l.includes('resumed open correlations from redis')).map((l) => JSON.parse(l) as { loaded: number });
  expect(resumed.reduce((n, r) => n + r.loaded, 0)).toBe(OPEN);
  // Every index entry closed.
  for (const p of ofA) expect(await redis.zcard(keys.open(p))).toBe(0);
}, 120_000);

it(`a worker starting over ${OPEN} open correlations in Redis (self-owned: it takes every partition at start) loads them page by page under MAX_OPEN_CORRELATIONS=${CAP}`, async () => {
  const prefix = 'pgs';
  const keys = new RedisKeys(prefix, P);
  const corrIds = Array.from({ length: OPEN }, (_, i) => `pgs-${i}`);
  const write = redis.pipeline();
  corrIds.forEach((corrId, i) => {
    const signals: Record<string, string> = { momentum: momentum(corrId) };
    if (i % 5 === 0) signals.risk = risk(corrId);
    write.hset(keys.signals(corrId), signals);
    write.zadd(keys.open(partitionOf(corrId, P)), Date.now() - 1_000, corrId);
  });
  await write.exec();
  const decisions = new DecisionLog(stack.js, 'pgs-');
  await decisions.start();
  const w = new OrchestratorWorker({ config: stack.config({ REDIS_KEY_PREFIX: prefix, PARTITIONS: String(P), MAX_OPEN_CORRELATIONS: String(CAP), NATS_DURABLE: 'pgs' }), log: memoryLogger('warn').log, http: false, ownership: 'self' });
  let maxOpen = 0;
  let sampling = true;
  const sample = (): void => {
    maxOpen = Math.max(maxOpen, openOf(w));
    if (sampling) setImmediate(sample);
  };
  sample();
  try {
    await w.start();
    await decisions.waitFor(OPEN, 60_000);
  } finally {
    sampling = false;
    await w.close();
  }
  console.log(`[figure] paged resume at start: ${OPEN} open correlations, cap ${CAP}, largest open seen ${maxOpen}`);
  expect(decisions.byCorr.size).toBe(OPEN);
  expect(decisions.duplicates()).toEqual([]);
  expect(maxOpen).toBeLessThanOrEqual(CAP);
}, 120_000);
