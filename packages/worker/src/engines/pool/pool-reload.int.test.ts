import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadConfig, type EnrichedSignal } from '@at-orchestrator/contracts';
import { Registry, createLogger } from '@at-orchestrator/runtime';
import type { EngineInput } from '../engine.js';
import { createDecider, createEngine, watchRules } from '../index.js';

// createDecider + watchRules as the worker uses them: a rules file edited on disk reaches the
// engine and every pool thread; a bad edit is refused, logged with its reason and counted, and the
// rules in force keep deciding. (Needs `pnpm build`: the pool runs the compiled thread.)

const dir = mkdtempSync(join(tmpdir(), 'pool-reload-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines: string[] = [];
const log = createLogger({
  service: 'test',
  env: 'test',
  level: 'info',
  destination: new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
      cb();
    },
  }),
});

function rulesYaml(name: string, channel: string): string {
  return [
    'rules:',
    `  - name: ${name}`,
    '    match: { instrument: "CRYPTO:*" }',
    '    required_agents: [risk]',
    `    channels: [${channel}]`,
    'default:',
    '  required_agents: [momentum, risk]',
    '  channels: [execution]',
    '',
  ].join('\n');
}

/** Writes a file the way config tools do: a new file renamed over the old one. */
function replace(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

const batch: EngineInput[] = Array.from({ length: 32 }, (_, i) => ({
  corrId: `reload-${i}`,
  instrument: 'CRYPTO:BTC-USD',
  atDeadline: false,
  signals: { risk: { corr_id: `reload-${i}`, agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 1 } } } as EnrichedSignal },
}));

async function metric(registry: Registry, outcome: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'orchestrator_rules_reload_total');
  return ((m?.values ?? []) as Array<{ value: number; labels: Record<string, string> }>).filter((v) => v.labels.outcome === outcome).reduce((a, v) => a + v.value, 0);
}

describe('workflow rules reload reaches the decision pool', () => {
  it('a changed file is applied on every thread; a bad one is refused with its reason while the old rules keep deciding', async () => {
    const path = join(dir, 'rules.yaml');
    writeFileSync(path, rulesYaml('first', 'desk_a'));
    const config = loadConfig({
      NATS_URL: 'nats://127.0.0.1:1',
      REDIS_URL: 'redis://127.0.0.1:1',
      ORCHESTRATOR_TYPE: 'workflow',
      RULES_FILE: path,
      RULES_RELOAD_DEBOUNCE_MS: '50',
      DECISION_POOL_THREADS: '2',
      DECISION_BATCH_SIZE: '4',
    });
    const registry = new Registry();
    const engine = createEngine(config, { rulesFile: path });
    const decider = createDecider(config, engine, { log, registry });
    const watch = watchRules(config, engine, decider, { log, registry });
    expect(watch).toBeDefined();
    const rulesUsed = async (): Promise<string[]> => [...new Set((await decider.decide(batch)).map((r) => (r.ok ? `${r.rule}→${r.channels.join(',')}` : r.reason)))];
    try {
      expect(await rulesUsed()).toEqual(['first→desk_a']);

      replace(path, rulesYaml('second', 'desk_b'));
      await vi.waitFor(async () => expect(await metric(registry, 'applied')).toBe(1), { timeout: 10_000 });
      // All 8 tasks of the batch, on both threads, use the new rules.
      expect(await rulesUsed()).toEqual(['second→desk_b']);

      replace(path, rulesYaml('third', 'Not A Channel'));
      await vi.waitFor(async () => expect(await metric(registry, 'rejected')).toBe(1), { timeout: 10_000 });
      const warning = lines.find((l) => l.includes('workflow rules file refused'));
      expect(warning).toMatch(/rule \\"third\\" \(rules\[0\]\), field channels\[0\]/);
      expect(await rulesUsed()).toEqual(['second→desk_b']);

      replace(path, rulesYaml('fourth', 'desk_d'));
      await vi.waitFor(async () => expect(await metric(registry, 'applied')).toBe(2), { timeout: 10_000 });
      expect(await rulesUsed()).toEqual(['fourth→desk_d']);
    } finally {
      await watch?.close();
      await watch?.close();
      await decider.close();
    }
  });

  it('is nothing to watch for the simple and ml engines', () => {
    for (const type of ['simple', 'ml']) {
      const config = loadConfig({ NATS_URL: 'nats://127.0.0.1:1', REDIS_URL: 'redis://127.0.0.1:1', ORCHESTRATOR_TYPE: type });
      const engine = createEngine(config);
      expect(watchRules(config, engine, createDecider(config, engine, { log, registry: new Registry() }), { log, registry: new Registry() })).toBeUndefined();
    }
  });
});
