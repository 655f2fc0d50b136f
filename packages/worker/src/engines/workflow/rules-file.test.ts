import { once } from 'node:events';
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EnrichedSignal } from '@at-orchestrator/contracts';
import { RulesFile, RulesFileError, WorkflowEngine } from './index.js';

const rulesText = (channel: string, extra = '') => `rules:
  - name: crypto
    match: { instrument: "CRYPTO:*" }
    required_agents: [risk]
    channels: [${channel}]${extra}
default:
  required_agents: [momentum, risk]
  channels: [execution]
`;
const BAD = rulesText('audit', '\n    match_typo: 1');

/** A bounded wait for an fs event: the watcher normally reports within milliseconds. */
const within = () => ({ signal: AbortSignal.timeout(10_000) });

const cryptoInput = {
  corrId: 'c1',
  instrument: 'CRYPTO:BTC-USD',
  atDeadline: false,
  signals: {
    risk: { corr_id: 'c1', agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 1 } } } as EnrichedSignal,
  },
};

describe('RulesFile: reload without restart', () => {
  let dir: string;
  let path: string;
  let file: RulesFile | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rules-file-'));
    path = join(dir, 'rules.yaml');
    writeFileSync(path, rulesText('crypto_specialist'));
  });
  afterEach(() => {
    file?.close();
    file = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const open = () => {
    file = new RulesFile(path, { debounceMs: 20 }).start();
    return file;
  };

  it('a changed file is reloaded and the engine follows it', async () => {
    const rules = open();
    const engine = new WorkflowEngine(rules.current);
    rules.on('reloaded', (e) => engine.setRules(e.rules));
    const first = engine.decide(cryptoInput);
    expect(first.ok && first.channels).toEqual(['crypto_specialist']);

    const reloaded = once(rules, 'reloaded', within());
    writeFileSync(path, rulesText('risk_monitor'));
    const [event] = await reloaded;
    expect(event.previousVersion).toBe(first.ok && first.engineVersion);
    expect(event.rules.version).not.toBe(event.previousVersion);
    const second = engine.decide(cryptoInput);
    expect(second.ok && [second.channels, second.engineVersion]).toEqual([['risk_monitor'], event.rules.version]);
  });

  it('a file replaced by rename (how editors and config tools save) is reloaded', async () => {
    const rules = open();
    const reloaded = once(rules, 'reloaded', within());
    const tmp = join(dir, '.rules.yaml.swp');
    writeFileSync(tmp, rulesText('audit'));
    renameSync(tmp, path);
    await reloaded;
    expect(rules.current.rules[0]?.channels).toEqual(['audit']);

    // The watch survives the replacement: a later plain write is seen too.
    const again = once(rules, 'reloaded', within());
    writeFileSync(path, rulesText('execution'));
    await again;
    expect(rules.current.rules[0]?.channels).toEqual(['execution']);
  });

  it('a bad new file keeps the old rules running and says why; fixing it reloads', async () => {
    const rules = open();
    const engine = new WorkflowEngine(rules.current);
    rules.on('reloaded', (e) => engine.setRules(e.rules));
    const kept = rules.current.version;

    const rejected = once(rules, 'rejected', within());
    writeFileSync(path, BAD);
    const [event] = await rejected;
    expect(event.error).toBeInstanceOf(RulesFileError);
    expect(event.error.message).toContain('rule "crypto" (rules[0]): unknown field match_typo');
    expect(event.keptVersion).toBe(kept);
    expect(rules.current.version).toBe(kept);
    const out = engine.decide(cryptoInput);
    expect(out.ok && out.channels).toEqual(['crypto_specialist']);

    const reloaded = once(rules, 'reloaded', within());
    writeFileSync(path, rulesText('audit'));
    await reloaded;
    const fixed = engine.decide(cryptoInput);
    expect(fixed.ok && fixed.channels).toEqual(['audit']);
  });

  it('a deleted file is reported and the rules stay; its return is reloaded', async () => {
    const rules = open();
    const kept = rules.current.version;
    const rejected = once(rules, 'rejected', within());
    unlinkSync(path);
    const [event] = await rejected;
    expect(event.error.message).toMatch(/cannot be read: .*ENOENT/);
    expect(rules.current.version).toBe(kept);

    const reloaded = once(rules, 'reloaded', within());
    writeFileSync(path, rulesText('audit'));
    await reloaded;
    expect(rules.current.rules[0]?.channels).toEqual(['audit']);
  });

  it('other files in the directory are ignored; reload() on demand reports unchanged', async () => {
    const rules = open();
    let events = 0;
    rules.on('reloaded', () => events++);
    rules.on('rejected', () => events++);
    writeFileSync(join(dir, 'other.yaml'), 'not: [valid');
    expect(await rules.reload()).toEqual({ status: 'unchanged', version: rules.current.version });
    expect(events).toBe(0);
  });

  it('reload() resolves with the outcome, in order', async () => {
    const rules = new RulesFile(path);
    file = rules;
    writeFileSync(path, BAD);
    const bad = rules.reload();
    const outcome = await bad;
    expect(outcome.status).toBe('rejected');
    writeFileSync(path, rulesText('audit'));
    const good = await rules.reload();
    expect(good.status === 'reloaded' && good.rules.rules[0]?.channels).toEqual(['audit']);
  });

  it('a bad file at start throws, naming rule and field', () => {
    writeFileSync(path, BAD);
    expect(() => new RulesFile(path)).toThrow(/rules file .*rules\.yaml is not valid: rule "crypto" \(rules\[0\]\): unknown field match_typo/);
    expect(() => new RulesFile(join(dir, 'missing.yaml'))).toThrow(RulesFileError);
  });

  it('close() is idempotent, stops reloads, and an abort signal closes it', async () => {
    const rules = open();
    rules.close();
    rules.close();
    writeFileSync(path, rulesText('audit'));
    expect(await rules.reload()).toEqual({ status: 'closed' });
    expect(() => rules.start()).toThrow(/after close/);

    const controller = new AbortController();
    const watched = new RulesFile(path, { signal: controller.signal }).start();
    controller.abort();
    expect(await watched.reload()).toEqual({ status: 'closed' });
  });
});
