import { describe, expect, it } from 'vitest';
import { partitionOf } from './names.js';
import { parseSignal } from './signal.js';

const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

describe('parseSignal', () => {
  it('accepts the seed agents\' signals and keeps unknown fields and agents as sent', () => {
    const m = parseSignal(enc({ corr_id: 'c1', agent_name: 'momentum', analysis: { momentum_strength: 0.5, confidence: 0.9, trend_direction: 'up', extra: [1] }, meta: 'x' }));
    expect(m).toMatchObject({ ok: true, signal: { corr_id: 'c1', meta: 'x', analysis: { extra: [1] } } });
    const other = parseSignal(enc({ corr_id: 'c1', agent_name: 'sentiment', analysis: { anything: { goes: true } } }));
    expect(other.ok).toBe(true);
  });

  it.each([
    ['{oops', 'not_json'],
    ['[1,2]', 'not_json'],
    [JSON.stringify({ agent_name: 'risk', analysis: {} }), 'no_corr_id'],
    [JSON.stringify({ corr_id: 'has space', agent_name: 'risk', analysis: {} }), 'no_corr_id'],
    [JSON.stringify({ corr_id: 'c', agent_name: 'risk', analysis: { risk_level: 'extreme', position_sizing: { recommended_size: 1 } } }), 'schema'],
    [JSON.stringify({ corr_id: 'c', agent_name: 'momentum', analysis: { momentum_strength: 1, confidence: 1.5, trend_direction: 'up' } }), 'schema'],
    [JSON.stringify({ corr_id: 'c', agent_name: 'bad name!', analysis: {} }), 'schema'],
  ])('%s → %s', (body, reason) => {
    const r = parseSignal(enc(body));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe(reason);
  });

  it('refuses an oversized payload before parsing it', () => {
    const r = parseSignal(enc({ corr_id: 'c', agent_name: 'x', analysis: { blob: 'x'.repeat(2000) } }), 1024);
    expect(r).toMatchObject({ ok: false, reason: 'oversized' });
  });

  it('refuses bytes that are not UTF-8', () => {
    expect(parseSignal(new Uint8Array([0xff, 0xfe, 0x7b]))).toMatchObject({ ok: false, reason: 'not_json' });
  });
});

describe('partitionOf', () => {
  it('is FNV-1a of the UTF-8 bytes: stable across versions and languages', () => {
    // FNV-1a 32 of "a" = 0xe40c292c; of "corr-1" computed by the reference algorithm.
    expect(partitionOf('a', 2 ** 31)).toBe(0xe40c292c % 2 ** 31);
    expect(partitionOf('é', 1000)).toBe(partitionOf('\u00e9', 1000));
    expect(partitionOf('é', 2 ** 31)).not.toBe(partitionOf('e', 2 ** 31));
  });

  it('spreads corr_ids evenly over 64 partitions', () => {
    const counts = new Array<number>(64).fill(0);
    for (let i = 0; i < 64_000; i++) counts[partitionOf(`corr-${i}`, 64)]! += 1;
    expect(Math.min(...counts)).toBeGreaterThan(800);
    expect(Math.max(...counts)).toBeLessThan(1200);
  });
});
