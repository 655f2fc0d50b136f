import { describe, expect, it } from 'vitest';
import type { EnrichedSignal } from '@at-orchestrator/contracts';
import { SimpleEngine, type DecisionEngine } from '../engines/index.js';
import { FanInBuffer } from './fan-in-buffer.js';

const TIMEOUT_MS = 5_000;

function signal(agent: string, corrId = 'c1', instrument?: string): EnrichedSignal {
  const base = instrument === undefined ? { corr_id: corrId } : { corr_id: corrId, instrument };
  if (agent === 'momentum') {
    return { ...base, agent_name: 'momentum', analysis: { momentum_strength: 0.8, confidence: 0.9, trend_direction: 'bullish' } };
  }
  if (agent === 'risk') return { ...base, agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 100 } } };
  return { ...base, agent_name: agent, analysis: { note: agent } };
}

/** The simple engine as the worker builds it: risk is required. */
const simple = (): SimpleEngine => new SimpleEngine(['risk']);

const ids = (list: Array<{ corrId: string }>): string[] => list.map((c) => c.corrId);

describe('FanInBuffer readiness', () => {
  it('is ready only once MIN agents and the engine’s required agents have reported', () => {
    const buffer = new FanInBuffer(simple(), 2, TIMEOUT_MS);
    const corr = buffer.create('c1', 3, 1_000);
    expect(buffer.isReady(corr)).toBe(false);

    buffer.add(corr, signal('momentum'));
    expect(buffer.isReady(corr)).toBe(false); // 1 < MIN

    buffer.add(corr, signal('news'));
    expect(buffer.isReady(corr)).toBe(false); // 2 agents, but no risk

    buffer.add(corr, signal('risk'));
    expect(buffer.isReady(corr)).toBe(true);
  });

  it('is not ready with the required agent alone when MIN asks for more', () => {
    const buffer = new FanInBuffer(simple(), 2, TIMEOUT_MS);
    const corr = buffer.create('c1', 3, 1_000);
    buffer.add(corr, signal('risk'));
    expect(buffer.isReady(corr)).toBe(false);

    const lenient = new FanInBuffer(simple(), 1, TIMEOUT_MS);
    const alone = lenient.create('c1', 3, 1_000);
    lenient.add(alone, signal('risk'));
    expect(lenient.isReady(alone)).toBe(true);
  });

  it('asks the engine with the correlation’s instrument', () => {
    // An engine whose required agents depend on the instrument, as workflow routing does.
    const byInstrument: DecisionEngine = {
      type: 'workflow',
      requiredAgents: ({ instrument }) => (instrument === 'CRYPTO:BTC-USD' ? ['risk', 'onchain'] : ['risk']),
      decide: () => ({ ok: false, reason: 'unused' }),
    };
    const buffer = new FanInBuffer(byInstrument, 1, TIMEOUT_MS);
    const crypto = buffer.create('c1', 0, 0);
    buffer.add(crypto, signal('risk', 'c1', 'CRYPTO:BTC-USD'));
    expect(buffer.isReady(crypto)).toBe(false);
    buffer.add(crypto, signal('onchain', 'c1'));
    expect(buffer.isReady(crypto)).toBe(true);

    const equity = buffer.create('c2', 0, 0);
    buffer.add(equity, signal('risk', 'c2', 'NYSE:IBM'));
    expect(buffer.isReady(equity)).toBe(true);
  });
});

describe('FanInBuffer.add', () => {
  it('refuses a second signal from the same agent and keeps the first', () => {
    const buffer = new FanInBuffer(simple(), 2, TIMEOUT_MS);
    const corr = buffer.create('c1', 0, 0);
    const first = signal('risk');
    expect(buffer.add(corr, first)).toBe(true);
    expect(buffer.add(corr, { ...signal('risk'), analysis: { risk_level: 'blocked', position_sizing: { recommended_size: 0 } } })).toBe(false);
    expect(corr.agentCount).toBe(1);
    expect(corr.signals.risk).toBe(first);
    // The refused duplicate does not count towards MIN either.
    expect(buffer.isReady(corr)).toBe(false);
  });

  it('takes the instrument from the first signal that has one', () => {
    const buffer = new FanInBuffer(simple(), 1, TIMEOUT_MS);
    const corr = buffer.create('c1', 0, 0);
    buffer.add(corr, signal('momentum'));
    expect(corr.instrument).toBeUndefined();
    buffer.add(corr, signal('risk', 'c1', 'CRYPTO:BTC-USD'));
    buffer.add(corr, signal('news', 'c1', 'CRYPTO:ETH-USD'));
    expect(corr.instrument).toBe('CRYPTO:BTC-USD');
  });
});

describe('FanInBuffer.takeExpired', () => {
  it('returns the correlations whose deadline is at or before now, earliest first, and forgets them', () => {
    const buffer = new FanInBuffer(simple(), 2, TIMEOUT_MS);
    buffer.create('late', 0, 0, 300);
    buffer.create('early', 0, 0, 100);
    buffer.create('middle', 0, 0, 200);
    // The default deadline is first seen + the timeout.
    buffer.create('default', 0, 1_000);

    expect(buffer.takeExpired(99)).toEqual([]);
    expect(ids(buffer.takeExpired(200))).toEqual(['early', 'middle']);
    expect(buffer.get('early')).toBeUndefined();
    expect(buffer.size).toBe(2);
    expect(ids(buffer.takeExpired(5_999))).toEqual(['late']);
    expect(ids(buffer.takeExpired(6_000))).toEqual(['default']);
    expect(buffer.takeExpired(Number.MAX_SAFE_INTEGER)).toEqual([]);
    expect(buffer.size).toBe(0);
  });

  it('skips correlations removed meanwhile, and those re-created with another deadline until their new one', () => {
    const buffer = new FanInBuffer(simple(), 2, TIMEOUT_MS);
    buffer.create('decided', 0, 0, 100);
    buffer.create('kept', 0, 0, 150);
    buffer.create('reopened', 0, 0, 120);
    buffer.remove('decided');
    buffer.remove('reopened');
    const reopened = buffer.create('reopened', 0, 0, 500);
    // Re-created over an open one (loaded again from Redis with its own deadline).
    buffer.create('replaced', 0, 0, 130);
    const replaced = buffer.create('replaced', 0, 0, 400);

    expect(ids(buffer.takeExpired(300))).toEqual(['kept']);
    const rest = buffer.takeExpired(500);
    expect(ids(rest)).toEqual(['replaced', 'reopened']);
    expect(rest[0]).toBe(replaced);
    expect(rest[1]).toBe(reopened);
    expect(buffer.takeExpired(10_000)).toEqual([]);
  });

  it('still returns the right correlations after most of many were removed (the heap is rebuilt)', () => {
    const buffer = new FanInBuffer(simple(), 2, TIMEOUT_MS);
    const kept: string[] = [];
    // Deadlines pushed in descending order so the heap has to order them.
    for (let i = 5_000; i >= 1; i--) buffer.create(`c${i}`, i % 16, 0, 10_000 + i);
    for (let i = 1; i <= 5_000; i++) {
      if (i % 100 === 0) kept.push(`c${i}`);
      else buffer.remove(`c${i}`);
    }
    // Some survivors are re-created with a later deadline before the rebuild.
    buffer.create('c100', 0, 0, 20_000);
    kept.shift();

    expect(buffer.takeExpired(0)).toEqual([]); // nothing due; stale entries far outnumber the open ones
    expect(buffer.size).toBe(50);

    // Correlations opened after the rebuild are ordered with the survivors.
    buffer.create('fresh', 0, 0, 10_150);
    expect(ids(buffer.takeExpired(10_200))).toEqual(['fresh', 'c200']);
    const expected = kept.filter((id) => id !== 'c200');
    expect(ids(buffer.takeExpired(15_100))).toEqual(expected);
    expect(ids(buffer.takeExpired(20_000))).toEqual(['c100']);
    expect(buffer.size).toBe(0);
  });
});
