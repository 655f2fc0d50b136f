import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { NatsServer, RedisServer } from '@at-orchestrator/local-servers';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimpleOrchestrator } from './seed-orchestrator.js';

describe('seed baseline (the Python SimpleOrchestrator, ported)', () => {
  let nats: NatsServer;
  let redisServer: RedisServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let redis: Redis;
  let orchestrator: SimpleOrchestrator;
  const decisions: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    [nats, redisServer] = await Promise.all([NatsServer.start(), RedisServer.start()]);
    orchestrator = new SimpleOrchestrator({
      natsUrl: nats.url,
      redisUrl: redisServer.url,
      stream: 'trading-events',
      durable: 'orchestrator-consumer',
      verbose: false,
      metricsPort: undefined,
    });
    await orchestrator.start();
    nc = await connect({ servers: nats.url });
    js = jetstream(nc);
    redis = new Redis(redisServer.url);
    nc.subscribe('orchestrated.decision', { callback: (_err, m) => void decisions.push(m.json()) });
    await nc.flush();
  });

  afterAll(async () => {
    await orchestrator?.close();
    await nc?.close();
    redis?.disconnect();
    await Promise.all([nats?.dispose(), redisServer?.dispose()]);
  });

  const publish = (agent: string, corrId: string, analysis: object) =>
    js.publish(`signals.enriched.${agent}`, JSON.stringify({ corr_id: corrId, agent_name: agent, instrument: 'EQ:AAPL', analysis }));

  async function decisionFor(corrId: string): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const found = decisions.find((d) => d.corr_id === corrId);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no decision for ${corrId}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('decides once momentum and risk are both in, with the seed JSON, and keeps the signals in Redis for 300 s', async () => {
    await publish('risk', 'c1', { risk_level: 'medium', position_sizing: { recommended_size: 250 } });
    await publish('correlation', 'c1', { correlation_score: 0.4 });
    await new Promise((r) => setTimeout(r, 100));
    expect(decisions.find((d) => d.corr_id === 'c1')).toBeUndefined();
    await publish('momentum', 'c1', { momentum_strength: 0.8, confidence: 0.9, trend_direction: 'bullish' });
    const d = await decisionFor('c1');
    expect(d).toMatchObject({
      corr_id: 'c1',
      orchestrator_version: '1.0.0',
      source_signals: { momentum: 0.8, risk: 'medium' },
      decision: { action: 'trade', direction: 'bullish', size: 250, reason: 'high_confidence_momentum' },
    });
    expect(d.confidence).toBeCloseTo(0.72, 12);
    expect(String(d.orchestrated_at)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    expect(Object.keys(await redis.hgetall('orchestrator:signals:c1')).sort()).toEqual(['correlation', 'momentum', 'risk']);
    const ttl = await redis.ttl('orchestrator:signals:c1');
    expect(ttl).toBeGreaterThan(290);
    expect(ttl).toBeLessThanOrEqual(300);
  });

  it('applies the seed rules: blocked → no_trade, low confidence → monitor', async () => {
    await publish('momentum', 'c2', { momentum_strength: 0.8, confidence: 0.95, trend_direction: 'bearish' });
    await publish('risk', 'c2', { risk_level: 'blocked', position_sizing: { recommended_size: 100 } });
    await publish('momentum', 'c3', { momentum_strength: 0.1, confidence: 0.7, trend_direction: 'neutral' });
    await publish('risk', 'c3', { risk_level: 'low', position_sizing: { recommended_size: 100 } });
    expect((await decisionFor('c2')).decision).toEqual({ action: 'no_trade', reason: 'risk_blocked' });
    expect((await decisionFor('c2')).confidence).toBe(0);
    expect((await decisionFor('c3')).decision).toEqual({ action: 'monitor', reason: 'insufficient_confidence' });
  });

  it('a signal after the decision opens a new entry that is never decided (the seed behaviour soak runs show)', async () => {
    const before = orchestrator.openCorrelations;
    await publish('correlation', 'c2', { correlation_score: 0.1 });
    await new Promise((r) => setTimeout(r, 200));
    expect(decisions.filter((d) => d.corr_id === 'c2')).toHaveLength(1);
    expect(orchestrator.openCorrelations).toBe(before + 1);
  });
});
