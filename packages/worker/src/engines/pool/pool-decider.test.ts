import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type EnrichedSignal, type Env } from '@at-orchestrator/contracts';
import { Registry, createLogger } from '@at-orchestrator/runtime';
import { seededRandom as random } from '@at-orchestrator/sim';
import { EngineMetrics, InlineDecider } from '../decider.js';
import type { EngineInput, EngineResult } from '../engine.js';
import { RuleSet, WorkflowEngine, generateRules } from '../workflow/index.js';
import { createDecider, createEngine } from '../index.js';
import { PoolDecider, TEST_HOOKS, resolveThreadFile, threadEngineSpec } from './index.js';

// The pool runs the compiled thread (dist/engines/pool/decision-thread.js) and the engines it
// imports from dist, so `pnpm build` must have run since the engines last changed; say so plainly
// rather than test stale code.
beforeAll(() => {
  resolveThreadFile(); // throws "run pnpm build first" when there is no build
  const srcDir = fileURLToPath(new URL('..', import.meta.url));
  const distDir = fileURLToPath(new URL('../../../dist/engines/', import.meta.url));
  const stale = (dir: string): string[] =>
    readdirSync(join(srcDir, dir)).flatMap((name) => {
      const rel = join(dir, name);
      if (statSync(join(srcDir, rel)).isDirectory()) return stale(rel);
      if (!/\.ts$/.test(name) || /\.test\.ts$/.test(name)) return [];
      const built = join(distDir, rel.replace(/\.ts$/, '.js'));
      return !existsSync(built) || statSync(built).mtimeMs < statSync(join(srcDir, rel)).mtimeMs ? [rel] : [];
    });
  const outdated = stale('.');
  if (outdated.length > 0) throw new Error(`the build of ${outdated.join(', ')} is missing or older than its source: run "pnpm build" first`);
});

const quiet = createLogger({ service: 'test', env: 'test', level: 'silent' });

function config(env: Env) {
  return loadConfig({ NATS_URL: 'nats://127.0.0.1:1', REDIS_URL: 'redis://127.0.0.1:1', ...env });
}

const INSTRUMENTS = ['CRYPTO:BTC-USD', 'CRYPTO:ETH-USD', 'EQ:AAPL', 'EQ:S12', 'EQ:S23.X', 'FX:EUR/USD', undefined] as const;
const LEVELS = ['low', 'medium', 'high', 'blocked'] as const;
const DIRECTIONS = ['bullish', 'bearish', 'up', 'sideways'] as const;

/** Correlations covering every engine branch: missing risk or momentum, blocked, every instrument family, extra agents. */
function inputs(n: number, seed = 7, prefix = 'c'): EngineInput[] {
  const rnd = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  return Array.from({ length: n }, (_, i) => {
    const corrId = `${prefix}-${i}`;
    const instrument = pick(INSTRUMENTS);
    const signals: Record<string, EnrichedSignal> = {};
    const env = { corr_id: corrId, ...(instrument === undefined ? {} : { instrument }) };
    if (rnd() < 0.9) {
      signals.momentum = { ...env, agent_name: 'momentum', analysis: { momentum_strength: rnd(), confidence: rnd(), trend_direction: pick(DIRECTIONS) } };
    }
    if (rnd() < 0.92) {
      signals.risk = { ...env, agent_name: 'risk', analysis: { risk_level: pick(LEVELS), position_sizing: { recommended_size: Math.round(rnd() * 3000) } } };
    }
    if (rnd() < 0.5) signals.correlation = { ...env, agent_name: 'correlation', analysis: { correlation_score: rnd() * 2 - 1 } };
    if (rnd() < 0.1) signals.sentiment = { ...env, agent_name: 'sentiment', analysis: { mood: 'greedy' } };
    return { corrId, instrument, signals, atDeadline: rnd() < 0.2 };
  });
}

function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  return registry.getMetricsAsJSON().then((all) => {
    const m = all.find((x) => x.name === name);
    const values = (m?.values ?? []) as Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
    return values
      .filter((v) => v.metricName === undefined || v.metricName === name || v.metricName === `${name}_count`)
      .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
      .reduce((a, v) => a + v.value, 0);
  });
}

describe('PoolDecider gives the inline decider’s results', () => {
  const engines: Array<[string, Env, RuleSet | undefined]> = [
    ['simple', { ORCHESTRATOR_TYPE: 'simple' }, undefined],
    ['workflow (shipped rules)', { ORCHESTRATOR_TYPE: 'workflow' }, undefined],
    ['workflow (500 generated rules)', { ORCHESTRATOR_TYPE: 'workflow' }, RuleSet.fromDocument(generateRules(500))],
    ['ml (shipped model)', { ORCHESTRATOR_TYPE: 'ml' }, undefined],
  ];

  it.each(engines)('%s: 1,000 correlations in tasks of 64 across 2 threads, same results in the same order', async (_name, env, rules) => {
    const cfg = config({ ...env, DECISION_POOL_THREADS: '2', DECISION_BATCH_SIZE: '64' });
    const engine = createEngine(cfg);
    if (rules !== undefined) (engine as WorkflowEngine).setRules(rules);
    const registry = new Registry();
    const pool = createDecider(cfg, engine, { log: quiet, registry });
    try {
      expect(pool.kind).toBe('pool');
      const batch = inputs(1000, 11);
      const want = await new InlineDecider(engine).decide(batch);
      const got = await pool.decide(batch);
      expect(got).toEqual(want);
      // Every branch is exercised: decisions and cannot-decide results.
      expect(got.some((r) => r.ok && r.decision.action === 'trade')).toBe(true);
      expect(got.some((r) => !r.ok && r.reason === 'risk_missing')).toBe(true);
      expect(await metric(registry, 'orchestrator_engine_batches_total', { mode: 'pool', outcome: 'ok' })).toBe(Math.ceil(1000 / 64));
      expect(await metric(registry, 'orchestrator_engine_batch_seconds', { mode: 'pool' })).toBe(Math.ceil(1000 / 64));
    } finally {
      await pool.close();
    }
  });

  it('createDecider is inline when DECISION_POOL_THREADS=0, and counts inline batches', async () => {
    const cfg = config({ DECISION_POOL_THREADS: '0', DECISION_BATCH_SIZE: '10' });
    const registry = new Registry();
    const decider = createDecider(cfg, createEngine(cfg), { log: quiet, registry });
    expect(decider.kind).toBe('inline');
    const results = await decider.decide(inputs(25));
    expect(results).toHaveLength(25);
    expect(await metric(registry, 'orchestrator_engine_batches_total', { mode: 'inline', outcome: 'ok' })).toBe(3);
    await decider.close();
  });
});

describe('PoolDecider never loses a correlation', () => {
  const cfg = config({ ORCHESTRATOR_TYPE: 'simple' });
  const engine = createEngine(cfg);
  const inline = new InlineDecider(engine);
  let registry: Registry;
  let failedBatches: Array<{ corrIds: string[]; reason: string }>;
  let pool: PoolDecider;

  const make = (taskTimeoutMs = 2_000, batchSize = 8): PoolDecider => {
    registry = new Registry();
    failedBatches = [];
    return new PoolDecider({
      engine: threadEngineSpec(cfg, engine),
      threads: 2,
      batchSize,
      taskTimeoutMs,
      log: quiet,
      metrics: EngineMetrics.for(registry),
      testHooks: true,
      onBatchFailed: (failed, reason) => failedBatches.push({ corrIds: failed.map((i) => i.corrId), reason }),
    });
  };
  const withPoison = (poison: string): EngineInput[] => {
    const batch = inputs(24, 5);
    batch[3] = { ...batch[3]!, corrId: `${poison}-1` };
    return batch;
  };

  afterAll(async () => {
    await pool?.close();
  });

  it.each([
    ['process.exit in the thread', TEST_HOOKS.exit, /^engine_failed: decision thread failed: worker exited with code: 1$/],
    ['an exception thrown by the task', TEST_HOOKS.throw, /^engine_failed: decision thread failed: test hook: thrown for __pool_test_throw__-1$/],
    ['an uncaught exception inside the thread', TEST_HOOKS.uncaught, /^engine_failed: decision thread failed: test hook: uncaught for __pool_test_uncaught__-1$/],
  ])('%s: the batch is retried once, then each of its inputs gets engine_failed; other batches are decided', async (_name, poison, reason) => {
    pool = make();
    const batch = withPoison(poison);
    const results = await pool.decide(batch);
    expect(results).toHaveLength(24);
    // Task 1 (inputs 0–7) held the poison: every input answered, none decided.
    for (const r of results.slice(0, 8)) expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(reason) as unknown });
    // Tasks 2 and 3 are unaffected.
    expect(results.slice(8)).toEqual(await inline.decide(batch.slice(8)));
    expect(failedBatches).toEqual([{ corrIds: batch.slice(0, 8).map((i) => i.corrId), reason: expect.any(String) as unknown }]);
    expect(await metric(registry, 'orchestrator_engine_batches_total', { mode: 'pool', outcome: 'failed' })).toBe(1);
    expect(await metric(registry, 'orchestrator_engine_batches_total', { mode: 'pool', outcome: 'ok' })).toBe(2);
    // The pool replaced its threads and decides the next batch normally.
    const next = inputs(40, 9);
    expect(await pool.decide(next)).toEqual(await inline.decide(next));
    await pool.close();
  });

  it('a thread that crashes once: the retry decides the batch, counted as retried', async () => {
    pool = make();
    const batch = withPoison(TEST_HOOKS.exitOnce);
    expect(await pool.decide(batch)).toEqual(await inline.decide(batch));
    expect(failedBatches).toEqual([]);
    expect(await metric(registry, 'orchestrator_engine_batches_total', { mode: 'pool', outcome: 'retried' })).toBe(1);
    await pool.close();
  });

  it('a task that hangs is aborted at DECISION_TASK_TIMEOUT_MS, its thread replaced, and retried once', async () => {
    pool = make(500);
    const started = Date.now();
    const results = await pool.decide(withPoison(TEST_HOOKS.hang));
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(2 * 500 - 20);
    expect(took).toBeLessThan(5_000);
    for (const r of results.slice(0, 8)) expect(r).toEqual({ ok: false, reason: 'engine_failed: task timed out after 500 ms (thread replaced)' });
    expect(results.slice(8).every((r) => r.ok || r.reason === 'risk_missing')).toBe(true);
    expect(failedBatches).toHaveLength(1);

    const once = withPoison(TEST_HOOKS.hangOnce);
    expect(await pool.decide(once)).toEqual(await inline.decide(once));
    expect(await metric(registry, 'orchestrator_engine_batches_total', { mode: 'pool', outcome: 'retried' })).toBe(1);
    expect(pool.threads).toBe(2);
    await pool.close();
  });

  it('without testHooks the hook corr_ids are ordinary correlations', async () => {
    const plain = new PoolDecider({ engine: threadEngineSpec(cfg, engine), threads: 1, batchSize: 8, taskTimeoutMs: 2_000 });
    const batch = withPoison(TEST_HOOKS.exit);
    expect(await plain.decide(batch)).toEqual(await inline.decide(batch));
    await plain.close();
  });

  it('an engine a thread cannot build: every input gets engine_failed naming why', async () => {
    const broken = new PoolDecider({
      engine: { type: 'ml', requiredAgents: ['momentum', 'risk'], model: { source: 'tampered.json', text: '{"format":"nope"}' } },
      threads: 1,
      batchSize: 8,
      taskTimeoutMs: 2_000,
    });
    const results = await broken.decide(inputs(3));
    expect(results).toHaveLength(3);
    for (const r of results) expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/^engine_failed: cannot build the ml engine in a decision thread: model file tampered.json is not valid/) as unknown });
    await broken.close();
  });

  it('close() is idempotent; a batch after close is answered, not dropped', async () => {
    const p = new PoolDecider({ engine: threadEngineSpec(cfg, engine), threads: 1, batchSize: 8, taskTimeoutMs: 2_000 });
    await Promise.all([p.close(), p.close()]);
    expect(await p.decide(inputs(2))).toEqual([
      { ok: false, reason: 'engine_failed: decision pool is closed' },
      { ok: false, reason: 'engine_failed: decision pool is closed' },
    ]);
  });
});

describe('PoolDecider.reloadRules', () => {
  it('every decision started after reloadRules uses the new rules, on every thread', async () => {
    const cfg = config({ ORCHESTRATOR_TYPE: 'workflow', DECISION_POOL_THREADS: '2', DECISION_BATCH_SIZE: '4' });
    const engine = createEngine(cfg) as WorkflowEngine;
    const pool = createDecider(cfg, engine, { log: quiet, registry: new Registry() });
    const crypto = (i: number): EngineInput => ({
      corrId: `r-${i}`,
      instrument: 'CRYPTO:BTC-USD',
      atDeadline: false,
      signals: {
        momentum: { corr_id: `r-${i}`, agent_name: 'momentum', analysis: { momentum_strength: 0.5, confidence: 0.9, trend_direction: 'up' } },
        risk: { corr_id: `r-${i}`, agent_name: 'risk', analysis: { risk_level: 'high', position_sizing: { recommended_size: 10 } } },
      },
    });
    const batch = Array.from({ length: 40 }, (_, i) => crypto(i));
    try {
      const before = await pool.decide(batch);
      expect(new Set(before.map((r) => (r.ok ? r.rule : r.reason)))).toEqual(new Set(['crypto-high-risk']));

      const next = RuleSet.fromDocument({
        rules: [{ name: 'all-crypto-to-desk', match: { instrument: 'CRYPTO:*' }, required_agents: ['risk'], override: { action: 'no_trade', reason: 'desk_review' }, channels: ['desk'] }],
        default: { required_agents: ['momentum', 'risk'], channels: ['execution'] },
      });
      engine.setRules(next);
      pool.reloadRules(next);
      const after = await pool.decide(batch);
      expect(after).toEqual(await new InlineDecider(engine).decide(batch));
      for (const r of after) expect(r).toMatchObject({ ok: true, rule: 'all-crypto-to-desk', engineVersion: next.version, channels: ['desk'], decision: { action: 'no_trade', reason: 'desk_review' } });
    } finally {
      await pool.close();
    }
  });
});
